"""Training objectives: one interface, one file per method family (plain torch).

Every loss config names its class as ``ssmri.losses.<Class>``.
"""

from ssmri.losses.adversarial import UAIRLoss, UnsupervisedAdversarialLoss
from ssmri.losses.augmentation import VORTEXLoss
from ssmri.losses.base import AdversarialLoss, LossOutput, ReconstructionLoss, mse
from ssmri.losses.consistency import AdjointMCLoss, MCLoss, SupervisedLoss, measurement_consistency
from ssmri.losses.equivariance import EILoss, MOEILoss, MOILoss
from ssmri.losses.splitting import Noise2InverseLoss, SSDULoss, WeightedSSDULoss

__all__ = [
    "AdjointMCLoss",
    "AdversarialLoss",
    "EILoss",
    "LossOutput",
    "MCLoss",
    "MOEILoss",
    "MOILoss",
    "Noise2InverseLoss",
    "ReconstructionLoss",
    "SSDULoss",
    "SupervisedLoss",
    "UAIRLoss",
    "UnsupervisedAdversarialLoss",
    "VORTEXLoss",
    "WeightedSSDULoss",
    "measurement_consistency",
    "mse",
]
