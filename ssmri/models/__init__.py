"""Networks (plain torch): the U-Net denoiser and the unrolled MoDL."""

from ssmri.models.modl import MoDL, data_consistency
from ssmri.models.unet import UNet

__all__ = ["MoDL", "UNet", "data_consistency"]
