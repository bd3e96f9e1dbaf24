"""Measurement splitting: divide each acquired mask ``M`` into ``M₁`` (input) and ``M₂ = M - M₁``.

Splitters act on the acquired points of each sample's own mask; ``split(mask, rng)``
returns ``M₁`` ``(B, 1, H, W)``, one fresh split per sample.
"""

import math

import torch
from torch import Tensor

from ssmri.physics.masks import CartesianMaskLaw, make_mask_law


def _check_ratio(split_ratio: float) -> float:
    if not 0 < split_ratio < 1:
        raise ValueError(f"split_ratio must lie in (0, 1), got {split_ratio}")
    return float(split_ratio)


class BernoulliSplitter:
    r"""Uniform point-wise split: ``M₁`` keeps ``⌊ρ |M|⌋`` acquired points chosen uniformly.

    SSIBench's splitting (DeepInverse ``BernoulliSplittingMaskGenerator``, pixel-wise). Every
    splitter draws the held-out points: ``M₂`` takes ``⌈(1 - ρ) |M|⌉`` acquired points outside
    the protected set, without replacement and with probability ∝ :meth:`weights`, and
    ``M₁ = M - M₂``.

    Args:
        split_ratio: ``ρ = |M₁| / |M|`` (0.6).
    """

    def __init__(self, split_ratio: float = 0.6):
        self.split_ratio = _check_ratio(split_ratio)

    def weights(self, height: int, width: int) -> Tensor:
        """``(H, W)`` relative probability of each point to be held out."""
        return torch.ones(height, width, dtype=torch.float64)

    def protected(self, height: int, width: int) -> Tensor:
        """``(H, W)`` points that are never held out."""
        return torch.zeros(height, width, dtype=torch.bool)

    def held_out_count(self, acquired: int) -> int:
        """``⌈(1 - ρ) |M|⌉``; the tolerance stops e.g. ``(1 - 0.7)·10 = 3.0000000000000004`` rounding up."""
        return math.ceil((1 - self.split_ratio) * acquired - 1e-9)

    def split(self, mask: Tensor, rng: torch.Generator | None = None) -> Tensor:
        height, width = mask.shape[-2:]
        weights, protected = self.weights(height, width).flatten(), self.protected(height, width).flatten()
        input_masks = (mask.detach().cpu().reshape(len(mask), -1) > 0).float()
        for row in input_masks:
            acquired = row > 0
            candidates = torch.nonzero(acquired & ~protected).flatten()
            count = self.held_out_count(int(acquired.sum()))
            if count > 0 and len(candidates) > 0:
                chosen = torch.multinomial(
                    weights[candidates], min(count, len(candidates)), False, generator=rng
                )
                row[candidates[chosen]] = 0.0
        return input_masks.reshape(mask.shape).to(device=mask.device, dtype=mask.dtype)


class GaussianSplitter(BernoulliSplitter):
    r"""2-D Gaussian-weighted point split that never removes the central block (tutorial).

    The ``⌈(1 - ρ) |M|⌉`` held-out points ``M₂`` are drawn without replacement from the
    acquired points outside a protected centre block, with probability
    ∝ :math:`\exp(-\tfrac{(k_h - \lfloor H/2 \rfloor)^2}{2 (H/s)^2}
    - \tfrac{(k_w - \lfloor W/2 \rfloor)^2}{2 (W/s)^2})`, so held-out points crowd the centre
    of k-space; ``M₁ = M - M₂`` keeps the block (SSDU's loss-mask selection, Yaman et al. 2020;
    DeepInverse ``GaussianSplittingMaskGenerator``, ``std_scale = 4``, centre 8x8).

    Args:
        split_ratio: ``ρ`` (0.6).
        std_scale: ``s``; the Gaussian's standard deviations are ``H/s`` and ``W/s``.
        center_block: ``(h, w)`` size of the protected centre block.
    """

    def __init__(self, split_ratio: float = 0.6, std_scale: float = 4.0, center_block=(8, 8)):
        super().__init__(split_ratio)
        self.std_scale = float(std_scale)
        self.center_block = tuple(int(c) for c in center_block)

    def weights(self, height: int, width: int) -> Tensor:
        rows = torch.arange(height, dtype=torch.float64) - height // 2
        columns = torch.arange(width, dtype=torch.float64) - width // 2
        sigma_h, sigma_w = height / self.std_scale, width / self.std_scale
        return torch.exp(-(rows[:, None] ** 2) / (2 * sigma_h**2) - columns[None] ** 2 / (2 * sigma_w**2))

    def protected(self, height: int, width: int) -> Tensor:
        block = torch.zeros(height, width, dtype=torch.bool)
        h, w = self.center_block
        block[
            height // 2 - h // 2 : height // 2 - h // 2 + h, width // 2 - w // 2 : width // 2 - w // 2 + w
        ] = True
        return block


class MultiplicativeSplitter:
    r"""``M₁ = M̃ ⊙ M`` with ``M̃`` a fresh mask from a second Cartesian mask law (Weighted-SSDU).

    Millard & Chiew, "A theoretical framework for self-supervised MR image reconstruction using
    sub-sampling via variable density Noisier2Noise", IEEE TCI 2023 (DeepInverse
    ``MultiplicativeSplittingMaskGenerator``).

    Args:
        sampling: pattern of ``M̃`` (``gaussian``).
        acceleration: its acceleration (2 in the tutorial).
        center_fraction: its centre fraction (``None``: the default rule).
    """

    def __init__(
        self, sampling: str = "gaussian", acceleration: float = 2, center_fraction: float | None = None
    ):
        self.sampling, self.acceleration, self.center_fraction = sampling, acceleration, center_fraction
        self._laws: dict[tuple[int, int], CartesianMaskLaw] = {}

    def law_for(self, height: int, width: int) -> CartesianMaskLaw:
        """The ``M̃`` mask law at this image size (built once per size)."""
        key = (height, width)
        if key not in self._laws:
            self._laws[key] = make_mask_law(self.sampling, key, self.acceleration, self.center_fraction)
        return self._laws[key]

    def split(self, mask: Tensor, rng: torch.Generator | None = None) -> Tensor:
        second = self.law_for(*mask.shape[-2:]).sample(len(mask), rng)
        return second.to(device=mask.device, dtype=mask.dtype) * mask


__all__ = ["BernoulliSplitter", "GaussianSplitter", "MultiplicativeSplitter"]
