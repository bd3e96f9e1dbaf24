"""The residual U-Net denoiser shared by every MoDL iteration."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn_relu(in_channels: int, out_channels: int, batch_norm: bool = True) -> list[nn.Module]:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
    norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return [conv, *norm, nn.ReLU(inplace=True)]


class _DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        super().__init__(
            *_conv_bn_relu(in_channels, out_channels, batch_norm),
            *_conv_bn_relu(out_channels, out_channels, batch_norm),
        )


class _Up(nn.Sequential):
    """Nearest-neighbour x2 upsampling followed by a 3x3 conv, batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        upsample = nn.Upsample(scale_factor=2, mode="nearest")
        super().__init__(upsample, *_conv_bn_relu(in_channels, out_channels, batch_norm))


class UNet(nn.Module):
    r"""Residual U-Net: :math:`D(x) = x + U(x)`.

    Each scale has two 3x3 conv + batch-norm + ReLU stages; 2x2 max-pooling goes down, nearest
    upsampling and a 3x3 conv go up, skips are concatenated and a 1x1 conv maps to the output.
    With 2 channels, 3 scales and 64 base features (64/128/256) it has 2,070,082 parameters,
    the denoiser of the benchmark's MoDL (Wang & Davies, 2025). Inputs whose size is not a
    multiple of ``2**(scales-1)`` are edge-padded (replicate, as the reference) and cropped back.

    Args:
        in_channels: input channels (2 for a complex image).
        out_channels: output channels; must equal ``in_channels`` when ``residual``.
        scales: number of resolutions.
        base_features: features at the finest scale, doubled at each coarser one.
        residual: add the input to the output.
        zero_init_output: start the output convolution at zero, so that the untrained
            residual network is the identity (and MoDL around it the zero-filled
            reconstruction). ``False`` keeps PyTorch's default initialisation, as the reference.
        batch_norm: batch norm after each conv (SSIBench's MoDL has none: ``UNet(2, 2,
            scales=4, batch_norm=False)``).
    """

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 2,
        scales: int = 3,
        base_features: int = 64,
        residual: bool = True,
        zero_init_output: bool = False,
        batch_norm: bool = True,
    ):
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        if residual and in_channels != out_channels:
            raise ValueError("a residual U-Net needs in_channels == out_channels")
        features = [base_features * 2**s for s in range(scales)]
        self.scales = scales
        self.residual = residual
        self.down = nn.ModuleList(
            _DoubleConv(c_in, c_out, batch_norm) for c_in, c_out in zip([in_channels, *features], features)
        )
        self.up = nn.ModuleList(
            _Up(features[s + 1], features[s], batch_norm) for s in reversed(range(scales - 1))
        )
        self.merge = nn.ModuleList(
            _DoubleConv(2 * features[s], features[s], batch_norm) for s in reversed(range(scales - 1))
        )
        self.head = nn.Conv2d(features[0], out_channels, kernel_size=1)
        if zero_init_output:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        multiple = 2 ** (self.scales - 1)
        pad_h, pad_w = -height % multiple, -width % multiple
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

        skips = []
        features = padded
        for level, block in enumerate(self.down):
            if level > 0:
                features = F.max_pool2d(features, kernel_size=2)
            features = block(features)
            skips.append(features)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            features = merge(torch.cat((skip, up(features)), dim=1))
        out = self.head(features)[..., :height, :width]
        return x + out if self.residual else out
