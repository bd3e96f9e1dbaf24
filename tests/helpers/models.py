"""The networks tests train: small enough for a few dozen CPU steps in a second."""

import torch

from ssmri.models import MoDL, UNet


def tiny_model(seed: int = 0, **options) -> MoDL:
    """MoDL with an 8-feature, 2-scale U-Net and 2 iterations; weights seeded by ``seed``."""
    torch.manual_seed(seed)
    return MoDL(UNet(base_features=8, scales=2), num_iter=2, **options)
