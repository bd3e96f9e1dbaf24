"""Training objectives: one interface, one file per method family (plain torch).

Every loss config names its class as ``ssmri.losses.<Class>``.
"""

from ssmri.losses.adversarial import UAIRLoss, UnsupervisedAdversarialLoss
from ssmri.losses.augmentation import VORTEXLoss
from ssmri.losses.base import AdversarialLoss, LossOutput, ReconstructionLoss, mse
from ssmri.losses.consistency import AdjointMCLoss, MCLoss, SupervisedLoss, measurement_consistency
from ssmri.losses.equivariance import EILoss, MOEILoss, MOILoss
from ssmri.losses.noisy_splitting import Noise2ReconSSDULoss, RobustSSDULoss
from ssmri.losses.recorrupted import DDSSLLoss
from ssmri.losses.robust import ENSURELoss, RobustEILoss, RobustMOEILoss
from ssmri.losses.split_consistency import MOCSSDULoss, SSDUConsistencyLoss
from ssmri.losses.splitting import Noise2InverseLoss, SSDULoss, WeightedSSDULoss

__all__ = [
    "AdjointMCLoss",
    "AdversarialLoss",
    "DDSSLLoss",
    "ENSURELoss",
    "EILoss",
    "LossOutput",
    "MCLoss",
    "MOCSSDULoss",
    "MOEILoss",
    "MOILoss",
    "Noise2InverseLoss",
    "Noise2ReconSSDULoss",
    "ReconstructionLoss",
    "RobustEILoss",
    "RobustMOEILoss",
    "RobustSSDULoss",
    "SSDUConsistencyLoss",
    "SSDULoss",
    "SupervisedLoss",
    "UAIRLoss",
    "UnsupervisedAdversarialLoss",
    "VORTEXLoss",
    "WeightedSSDULoss",
    "measurement_consistency",
    "mse",
]
