"""Splitting methods for noisy measurements: Robust-SSDU and Noise2Recon-SSDU.

Both start from Weighted-SSDU and read ``σ`` from ``physics.noise_std`` (never from their own
config); both refuse noiseless physics.
"""

import torch
from torch import Tensor

from ssmri.losses.base import LossOutput, mse
from ssmri.losses.robust import noise_level
from ssmri.losses.splitting import WeightedSSDULoss
from ssmri.physics.acquisition import apply_mask
from ssmri.transforms.split_masks import MultiplicativeSplitter


def masked_noise(like: Tensor, mask: Tensor, sigma, rng: torch.Generator | None) -> Tensor:
    """``σ M ⊙ ε`` shaped as the k-space ``like``, drawn on the CPU (the same on any device)."""
    noise = torch.randn(like.shape, generator=rng, dtype=like.dtype).to(like.device)
    return apply_mask(sigma * noise, mask)


class RobustSSDULoss(WeightedSSDULoss):
    r"""Robust-SSDU: Weighted-SSDU on a noisier input plus a Noisier2Noise term on the input entries.

    .. math::
        \mathcal{L} = \mathrm{MSE}(w \odot M_2 A \hat x_1, w \odot M_2 y)
        + \mathrm{MSE}\big(c\, M_1 A \hat x_1, c\, M_1 y\big),
        \quad \hat x_1 = f(M_1 (y + \alpha\sigma\epsilon), M_1 A),\quad c = 1 + \alpha^{-2}

    with ``w`` Weighted-SSDU's column weights, ``M₁ = M̃ ⊙ M`` and ``σ`` from the physics.
    Millard & Chiew, "Clean self-supervised MRI reconstruction from noisy, sub-sampled
    training data with Robust SSDU", 2024 (Eqs. 34-35); as DeepInverse
    ``loss.mri.RobustSplittingLoss``. Inference: ``f(y, A)``.

    Args:
        splitter: the multiplicative split (Gaussian, R = 2, no centre in the benchmark).
        alpha: the noisier-noise factor ``α``.
        clip, estimate_with: as :class:`~ssmri.losses.WeightedSSDULoss`.
    """

    requires_noise = True

    def __init__(
        self,
        splitter: MultiplicativeSplitter | None = None,
        alpha: float = 0.75,
        clip: float = 1 - 1e-9,
        estimate_with: int = 0,
    ):
        super().__init__(splitter, clip=clip, estimate_with=estimate_with)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        sigma = noise_level(physics, "robust_ssdu")
        input_mask, held_out = self.split(y, acq.mask, rng)
        noisier = apply_mask(y, input_mask) + masked_noise(y, input_mask, self.alpha * sigma, rng)
        x_hat = model(noisier, acq.with_mask(input_mask))
        weighted = self.held_out_error(physics, x_hat, y, acq.with_mask(held_out))
        scale = 1 + 1 / self.alpha**2
        input_split = acq.with_mask(input_mask)
        noisier2noise = mse(scale * physics.measure(x_hat, input_split), scale * apply_mask(y, input_mask))
        loss = weighted + noisier2noise
        return LossOutput(loss, x_hat, {"ssdu": weighted.detach(), "n2n": noisier2noise.detach()})


class Noise2ReconSSDULoss(WeightedSSDULoss):
    r"""Noise2Recon-SSDU: Weighted-SSDU plus consistency of reconstructions under added noise.

    .. math::
        \mathcal{L} = \mathrm{MSE}(w \odot M_2 A \hat x_1, w \odot M_2 y)
        + \lambda\,\mathrm{MSE}\big(f(M_1' (y + \sigma' M\epsilon), M_1' A), \hat x_1\big),
        \qquad \sigma' \sim U(\sigma_{lo}\sigma, \sigma_{hi}\sigma)

    one ``σ'`` per batch, ``σ`` from the physics, gradients through both passes. SSIBench
    combines ``WeightedSplittingLoss`` with ``AugmentConsistencyLoss(RandomNoise, no_grad=False)``
    inside SSDU's input splitting, so the augmented pass gets a fresh split ``M₁'`` too
    (``split_augmented=False`` feeds it whole). Desai et al., "Noise2Recon: Enabling SNR-robust
    MRI reconstruction with semi-supervised and self-supervised learning", MRM 2023.
    Inference: ``f(y, A)``.

    Args:
        splitter: the multiplicative split (Gaussian, R = 2, no centre in the benchmark).
        noise_range: ``(σ_lo, σ_hi)``, the added noise's range in units of ``σ``.
        split_augmented: split the augmented input too (the reference).
        weight: ``λ``, weight of the consistency term.
        clip, estimate_with: as :class:`~ssmri.losses.WeightedSSDULoss`.
    """

    requires_noise = True

    def __init__(
        self,
        splitter: MultiplicativeSplitter | None = None,
        noise_range=(0.5, 2.0),
        split_augmented: bool = True,
        weight: float = 1.0,
        clip: float = 1 - 1e-9,
        estimate_with: int = 0,
    ):
        super().__init__(splitter, clip=clip, estimate_with=estimate_with)
        low, high = (float(v) for v in noise_range)
        if not 0 <= low <= high:
            raise ValueError(f"noise_range must be (low, high) with 0 <= low <= high, got {noise_range}")
        self.noise_range = (low, high)
        self.split_augmented = split_augmented
        self.weight = float(weight)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        sigma = noise_level(physics, "noise2recon_ssdu")
        input_mask, held_out = self.split(y, acq.mask, rng)
        x_hat = model(apply_mask(y, input_mask), acq.with_mask(input_mask))
        weighted = self.held_out_error(physics, x_hat, y, acq.with_mask(held_out))
        low, high = self.noise_range
        level = sigma * (low + (high - low) * float(torch.rand(1, generator=rng)))
        y_aug = y + masked_noise(y, acq.mask, level, rng)
        if self.split_augmented:
            aug_mask = self.splitter.split(acq.mask, rng)
            reconstruction = model(apply_mask(y_aug, aug_mask), acq.with_mask(aug_mask))
        else:
            reconstruction = model(y_aug, acq)
        consistency = mse(reconstruction, x_hat)
        loss = weighted + self.weight * consistency
        return LossOutput(loss, x_hat, {"ssdu": weighted.detach(), "augment": consistency.detach()})


__all__ = ["Noise2ReconSSDULoss", "RobustSSDULoss", "masked_noise"]
