"""Networks (plain torch): the U-Net denoiser, the unrolled MoDL and the discriminator."""

from ssmri.models.discriminator import SkipConvDiscriminator
from ssmri.models.modl import MoDL, data_consistency
from ssmri.models.unet import UNet

__all__ = ["MoDL", "SkipConvDiscriminator", "UNet", "data_consistency"]
