"""Multi-coil Cartesian MRI: ``A x = M ⊙ F(S_c x)`` per coil, with coil sensitivity maps ``S``.

Coil maps are ``(B, C, 2, H, W)`` real/imaginary channels; multi-coil k-space is
``(B, C, 2, H, W)``; the mask ``(B, 1, H, W)`` is shared by the coils.
"""

import math

import torch
from torch import Tensor

from ssmri.physics.acquisition import apply_mask
from ssmri.physics.fft import fft2c, ifft2c, to_channels, to_complex
from ssmri.physics.operator import SingleCoilMRI


def coil_images(x: Tensor, maps: Tensor) -> Tensor:
    """``S_c x``: image ``(B, 2, H, W)`` -> coil images ``(B, C, 2, H, W)``, in float32."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return to_channels(to_complex(x).unsqueeze(1) * to_complex(maps))


def combine_coils(images: Tensor, maps: Tensor) -> Tensor:
    """``Σ_c conj(S_c) x_c``: coil images ``(B, C, 2, H, W)`` -> image ``(B, 2, H, W)``."""
    with torch.autocast(device_type=images.device.type, enabled=False):
        return to_channels((to_complex(maps).conj() * to_complex(images)).sum(dim=1))


def multicoil_forward(x: Tensor, mask: Tensor, maps: Tensor) -> Tensor:
    """``A x = M ⊙ F(S_c x)``: image ``(B, 2, H, W)`` -> k-space ``(B, C, 2, H, W)``."""
    return apply_mask(fft2c(coil_images(x, maps)), mask)


def multicoil_adjoint(y: Tensor, mask: Tensor, maps: Tensor) -> Tensor:
    """``Aᴴ y = Σ_c conj(S_c) Fᴴ(M ⊙ y_c)``: k-space ``(B, C, 2, H, W)`` -> image ``(B, 2, H, W)``."""
    return combine_coils(ifft2c(apply_mask(y, mask)), maps)


def birdcage_maps(coils: int, image_size, radius: float = 1.5) -> Tensor:
    r"""Simulated birdcage coil sensitivities ``(C, 2, H, W)``, normalised so ``Σ_c |S_c|² = 1``.

    Coil ``c`` sits at angle :math:`\theta_c = 2\pi c / C` on a circle of radius ``radius``
    (in units of the half field of view) around the image centre; its sensitivity at the
    normalised position :math:`(u, v) \in [-1, 1)^2` (``u`` along W, ``v`` along H) is

    .. math::
        S_c = \frac{e^{i(\operatorname{atan2}(u - r\cos\theta_c,\; -(v - r\sin\theta_c)) - \theta_c)}}
        {\sqrt{(u - r\cos\theta_c)^2 + (v - r\sin\theta_c)^2}}

    then divided by the root sum of squares over coils, so that every pixel has
    :math:`\sum_c |S_c|^2 = 1` and, with a full mask, :math:`A^H A = I`. The formula of sigpy's
    ``mri.birdcage_maps`` for 2-D shapes, which DeepInverse uses for ``MultiCoilMRI(coil_maps=C)``.

    Args:
        coils: ``C >= 1``.
        image_size: ``(H, W)`` or an int.
        radius: relative radius of the birdcage (1.5).
    """
    if coils < 1:
        raise ValueError(f"physics.coils must be >= 1, got {coils}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    angle = torch.arange(coils, dtype=torch.float64)[:, None, None] * (2 * math.pi / coils)
    rows = torch.arange(height, dtype=torch.float64)[None, :, None]
    columns = torch.arange(width, dtype=torch.float64)[None, None, :]
    u = (columns - width / 2) / (width / 2) - radius * torch.cos(angle)
    v = (rows - height / 2) / (height / 2) - radius * torch.sin(angle)
    sensitivity = torch.polar(1 / torch.sqrt(u**2 + v**2), torch.atan2(u, -v) - angle)
    sensitivity = sensitivity / sensitivity.abs().pow(2).sum(dim=0).sqrt()
    return to_channels(sensitivity).float()


class MultiCoilMRI(SingleCoilMRI):
    r"""Multi-coil Cartesian MRI with a mask shared by the coils.

    .. math::
        (A x)_c = M \odot F (S_c x), \qquad A^H y = \sum_c \overline{S_c}\, F^H (M \odot y_c),
        \qquad y = A x + M \odot \epsilon

    with :math:`F` the centred orthonormal FFT and complex Gaussian noise of standard deviation
    ``noise_std`` per real component at the sampled entries of every coil. Each call takes the
    mask and the coil maps, ``(B, C, 2, H, W)``, of its samples (they travel in an
    :class:`~ssmri.physics.acquisition.Acquisition`). For image-domain data sets the maps are
    simulated birdcage maps (:func:`birdcage_maps`, ``Σ_c |S_c|² = 1``), as in the benchmark;
    raw multi-coil data brings its own.

    Args:
        image_size, acceleration, sampling, center_fraction, noise_std: as
            :class:`~ssmri.physics.operator.SingleCoilMRI`.
        coils: number of simulated coils ``C`` (4, the benchmark's).
    """

    def __init__(
        self,
        image_size,
        acceleration: float = 4,
        sampling: str = "gaussian",
        center_fraction: float | None = None,
        noise_std: float = 0.0,
        coils: int = 4,
    ):
        super().__init__(image_size, acceleration, sampling, center_fraction, noise_std)
        if coils < 1:
            raise ValueError(f"physics.coils must be >= 1, got {coils}")
        self.coils = int(coils)

    def _check_maps(self, maps: Tensor | None) -> None:
        if maps is None:
            raise ValueError(
                "multi-coil physics needs coil sensitivity maps, but the batch has none; "
                "use physics=multicoil with a data module that simulates or loads maps, or a "
                "single-coil physics (physics=gaussian)"
            )

    def A(self, x: Tensor, mask: Tensor, maps: Tensor | None = None) -> Tensor:
        """Forward operator: image ``(B, 2, H, W)`` -> masked k-space ``(B, C, 2, H, W)``."""
        self._check_maps(maps)
        return multicoil_forward(x, mask, maps)

    def A_adjoint(self, y: Tensor, mask: Tensor, maps: Tensor | None = None) -> Tensor:
        """Adjoint: masked k-space ``(B, C, 2, H, W)`` -> image ``(B, 2, H, W)``."""
        self._check_maps(maps)
        return multicoil_adjoint(y, mask, maps)

    def sensitivity_maps(self, batch_size: int) -> Tensor:
        """``(B, C, 2, H, W)`` simulated birdcage maps, the same for every sample."""
        maps = birdcage_maps(self.coils, self.image_size)
        return maps.expand(batch_size, *maps.shape).clone()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, coils={self.coils}"


__all__ = ["MultiCoilMRI", "birdcage_maps", "multicoil_adjoint", "multicoil_forward"]
