"""Centred orthonormal 2-D Fourier transforms on real tensors that hold complex images.

A complex image is a real tensor ``(..., 2, H, W)``: channel 0 real, channel 1 imaginary.
The transforms always run in float32 or wider outside autocast: torch's CUDA FFT rejects
bf16/fp16 and data consistency must not lose precision under mixed-precision training; float64
stays float64 (gradient checks, reference comparisons).
"""

import torch
from torch import Tensor

_SPATIAL = (-2, -1)


def full_precision(x: Tensor) -> Tensor:
    """``x`` in float32 when it is held in fewer bits (bf16, fp16); float32 and float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def to_complex(x: Tensor) -> Tensor:
    """``(..., 2, H, W)`` real/imaginary channels -> ``(..., H, W)`` complex."""
    if x.shape[-3] != 2:
        raise ValueError(
            f"expected a complex image with 2 channels (real, imaginary) at dim -3, "
            f"got shape {tuple(x.shape)}"
        )
    return torch.complex(full_precision(x[..., 0, :, :]), full_precision(x[..., 1, :, :]))


def to_channels(z: Tensor) -> Tensor:
    """``(..., H, W)`` complex -> ``(..., 2, H, W)`` real/imaginary channels."""
    return torch.stack((z.real, z.imag), dim=-3)


def magnitude(x: Tensor) -> Tensor:
    """Magnitude ``|x|`` of ``(..., 2, H, W)`` -> ``(..., 1, H, W)``."""
    return full_precision(x).pow(2).sum(dim=-3, keepdim=True).sqrt()


def fft2c(x: Tensor) -> Tensor:
    r"""Centred orthonormal FFT: :math:`F x = \mathrm{fftshift}(\mathrm{fft2}(\mathrm{ifftshift}(x)))`."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        z = torch.fft.ifftshift(to_complex(x), dim=_SPATIAL)
        z = torch.fft.fftshift(torch.fft.fft2(z, norm="ortho"), dim=_SPATIAL)
        return to_channels(z)


def ifft2c(k: Tensor) -> Tensor:
    r"""Centred orthonormal inverse FFT, :math:`F^{-1} = F^H`."""
    with torch.autocast(device_type=k.device.type, enabled=False):
        z = torch.fft.ifftshift(to_complex(k), dim=_SPATIAL)
        z = torch.fft.fftshift(torch.fft.ifft2(z, norm="ortho"), dim=_SPATIAL)
        return to_channels(z)
