"""Physics-driven k-space augmentations ``T_i`` for VORTEX: additive noise and phase error.

Each augmentation is a module ``forward(y, mask, rng=None)`` on measured k-space
``(B, 2, H, W)``, or multi-coil ``(B, C, 2, H, W)`` (zero off the mask), that returns augmented
k-space supported on the same mask.
Random numbers are drawn on the CPU from ``rng`` and moved to the data's device.
"""

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ssmri.physics.acquisition import apply_mask


class KspaceNoise(nn.Module):
    r"""Additive complex Gaussian noise at the sampled entries only.

    .. math::
        T y = y + M \odot \sigma \epsilon, \qquad \epsilon \sim \mathcal{N}(0, I)

    with :math:`\sigma` the standard deviation of each real component (the convention of
    :class:`~ssmri.physics.operator.SingleCoilMRI`). Desai et al., "VORTEX: Physics-Driven Data
    Augmentations Using Consistency Training for Robust Accelerated MRI Reconstruction", MIDL 2022;
    the reference (DeepInverse ``RandomNoise``, σ = 0.1) masks by ``y != 0``, which is the
    sampling mask for measured data.

    Args:
        sigma: noise standard deviation, ``>= 0``.
    """

    def __init__(self, sigma: float = 0.1):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    def forward(self, y: Tensor, mask: Tensor, rng: torch.Generator | None = None) -> Tensor:
        """``y``: ``(B, 2, H, W)`` or ``(B, C, 2, H, W)`` k-space; ``mask``: ``(B, 1, H, W)``."""
        noise = torch.randn(y.shape, generator=rng).to(device=y.device, dtype=y.dtype)
        return y + apply_mask(self.sigma * noise, mask)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"


class RandomPhaseError(nn.Module):
    r"""Random phase error: even and odd k-space columns get two random phases.

    .. math::
        T y_k = e^{-i \phi_k} y_k,\qquad \phi_k = \begin{cases} \pi \alpha s_e & k \text{ even} \\
        \pi \alpha s_o & k \text{ odd} \end{cases},\qquad s_e, s_o \sim U(-1, 1)

    with ``k`` the column (phase-encode, W) index and :math:`\alpha` = ``scale``. A true complex
    rotation: it preserves every k-space magnitude. Desai et al., VORTEX, MIDL 2022; SSIBench
    uses ``scale = 0.1`` (DeepInverse ``RandomPhaseError``).

    Args:
        scale: :math:`\alpha`, phases lie in :math:`[-\pi\alpha, \pi\alpha]`; ``>= 0``.
        per_sample: draw ``(s_e, s_o)`` per sample; ``False`` (the reference) shares one pair
            across the batch.
        reference_multiplication: reproduce DeepInverse 0.5, which multiplies the real channel
            by :math:`\cos\phi` and the imaginary channel by :math:`-\sin\phi` separately. That
            is not a rotation (it nearly erases the imaginary part for small phases); off by
            default.
    """

    def __init__(self, scale: float = 0.1, per_sample: bool = False, reference_multiplication: bool = False):
        super().__init__()
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.scale = float(scale)
        self.per_sample = per_sample
        self.reference_multiplication = reference_multiplication

    def sample_phases(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 2)`` phases ``(φ_even, φ_odd)``, uniform in ``[-πα, πα]``."""
        uniform = torch.rand(batch_size if self.per_sample else 1, 2, generator=rng)
        phases = 2 * math.pi * self.scale * uniform - math.pi * self.scale
        return phases.expand(batch_size, 2)

    def apply(self, y: Tensor, phases: Tensor) -> Tensor:
        """Deterministic part: ``y`` ``(B, [C,] 2, H, W)``, ``phases`` ``(B, 2)`` (even, odd);
        every coil of a sample gets the same phases."""
        width = y.shape[-1]
        odd = torch.arange(width) % 2
        phi = phases[:, odd].to(device=y.device, dtype=y.dtype)  # (B, W)
        phi = phi.reshape(len(y), *([1] * (y.dim() - 2)), width)  # (B, [1,] 1, 1, W)
        cos, sin = torch.cos(phi), torch.sin(phi)
        real, imag = y[..., 0:1, :, :], y[..., 1:2, :, :]
        if self.reference_multiplication:
            return torch.cat((real * cos, imag * -sin), dim=-3)
        # (a + ib) e^{-iφ} = (a cosφ + b sinφ) + i (b cosφ - a sinφ)
        return torch.cat((real * cos + imag * sin, imag * cos - real * sin), dim=-3)

    def forward(self, y: Tensor, mask: Tensor, rng: torch.Generator | None = None) -> Tensor:
        """``y``: ``(B, 2, H, W)`` k-space; ``mask`` is unused (the support is preserved)."""
        return self.apply(y, self.sample_phases(y.shape[0], rng))

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale:g}, per_sample={self.per_sample}, "
            f"reference_multiplication={self.reference_multiplication}"
        )


class KspaceCompose(nn.Module):
    r"""Apply k-space augmentations in order: :math:`T = T_n \circ \dots \circ T_1`.

    The default is SSIBench's VORTEX augmentation: phase error (scale 0.1), then noise (σ = 0.1),
    the order in which DeepInverse chains ``RandomPhaseError(0.1) * RandomNoise()``. With the
    true complex rotation the order does not change the law (isotropic complex noise is
    rotation invariant); with ``reference_multiplication`` it does.

    Args:
        augmentations: modules ``forward(y, mask, rng)``; ``None`` for the default.
    """

    def __init__(self, augmentations: Iterable[nn.Module] | None = None):
        super().__init__()
        if augmentations is None:
            augmentations = [RandomPhaseError(0.1), KspaceNoise(0.1)]
        self.augmentations = nn.ModuleList(list(augmentations))

    def forward(self, y: Tensor, mask: Tensor, rng: torch.Generator | None = None) -> Tensor:
        """``y``: ``(B, 2, H, W)`` k-space; ``mask``: ``(B, 1, H, W)``."""
        for augmentation in self.augmentations:
            y = augmentation(y, mask, rng)
        return y


__all__ = ["KspaceCompose", "KspaceNoise", "RandomPhaseError"]
