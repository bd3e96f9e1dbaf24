"""Training objectives: one interface, one file per method family (plain torch)."""

from ssmri.losses.adversarial import UAIRLoss, UnsupervisedAdversarialLoss
from ssmri.losses.augmentation import VORTEXLoss
from ssmri.losses.base import AdversarialLoss, LossOutput, ReconstructionLoss, mse
from ssmri.losses.consistency import MCLoss, SupervisedLoss, measurement_consistency

__all__ = [
    "AdversarialLoss",
    "LossOutput",
    "MCLoss",
    "ReconstructionLoss",
    "SupervisedLoss",
    "UAIRLoss",
    "UnsupervisedAdversarialLoss",
    "VORTEXLoss",
    "measurement_consistency",
    "mse",
]
