"""Recorrupted-to-Recorrupted with noise equivariance: DDSSL for noisy measurements.

``σ`` comes from ``physics.noise_std`` (never from the loss's config); noiseless physics is refused.
"""

import math

import torch
from torch import Tensor

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse
from ssmri.losses.noisy_splitting import masked_noise
from ssmri.losses.robust import noise_level


class DDSSLLoss(ReconstructionLoss):
    r"""DDSSL: Recorrupted-to-Recorrupted in k-space plus equivariance to image-domain noise.

    .. math::
        y_1 = y + \sigma\sqrt{\tfrac{\alpha}{1-\alpha}}\, M\omega,\quad
        y_2 = \tfrac{1}{\alpha}\big(y - (1-\alpha) y_1\big),\quad \hat x = f(y_1, A)

    .. math::
        \mathcal{L} = \mathrm{MSE}(A\hat x, y_2)
        + w\,\mathrm{MSE}\big(f(A(\hat x + \sigma n) + \sigma\sqrt{\tfrac{\alpha}{1-\alpha}}\,M\omega', A),
        \hat x + \sigma n\big)

    with ``ω, ω', n ~ N(0, I)``. The second pass is recorrupted too, because SSIBench's list
    ``[R2RLoss, EILoss(RandomNoise, apply_noise=False)]`` runs every pass through the R2R
    wrapper (``recorrupt_second_pass=False`` drops it). Inference averages ``num_samples``
    recorrupted reconstructions ``f(y_1^{(i)}, A)`` (R2R's rule, 5 in the reference). Pang et al.,
    "Recorrupted-to-Recorrupted: Unsupervised Deep Learning for Image Denoising", CVPR 2021
    (GR2R: Monroy et al., 2025); noise equivariance: Chen, Tachella & Davies, Robust EI, CVPR 2022;
    the combination as in SSIBench (Wang & Davies, 2025).

    Args:
        alpha: R2R's split of the noise, in (0, 1).
        weight: ``w``, weight of the noise-equivariance term.
        recorrupt_second_pass: recorrupt the equivariance pass's input (the reference).
        num_samples: recorruptions averaged at inference.
    """

    requires_noise = True

    random_inference = True

    def __init__(
        self,
        alpha: float = 0.5,
        weight: float = 1.0,
        recorrupt_second_pass: bool = True,
        num_samples: int = 5,
    ):
        super().__init__()
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.alpha = float(alpha)
        self.weight = float(weight)
        self.recorrupt_second_pass = recorrupt_second_pass
        self.num_samples = int(num_samples)

    def recorrupt(self, y: Tensor, acq, sigma: float, rng) -> Tensor:
        """``y + σ √(α/(1-α)) M ω``."""
        return y + masked_noise(y, acq.mask, sigma * math.sqrt(self.alpha / (1 - self.alpha)), rng)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        sigma = noise_level(physics, "ddssl")
        y1 = self.recorrupt(y, acq, sigma, rng)
        x_hat = model(y1, acq)
        y2 = (y - (1 - self.alpha) * y1) / self.alpha
        r2r = mse(physics.measure(x_hat, acq), y2)
        noise = torch.randn(x_hat.shape, generator=rng, dtype=x_hat.dtype).to(x_hat.device)
        target = x_hat + sigma * noise
        virtual = physics.measure(target, acq)
        if self.recorrupt_second_pass:
            virtual = self.recorrupt(virtual, acq, sigma, rng)
        equivariance = mse(model(virtual, acq), target)
        loss = r2r + self.weight * equivariance
        return LossOutput(loss, x_hat, {"r2r": r2r.detach(), "ei": equivariance.detach()})

    def reconstruct(self, model, physics, y, acq, rng=None) -> Tensor:
        """The mean of ``num_samples`` recorrupted reconstructions; ``rng``: one, or one per image."""
        sigma = noise_level(physics, "ddssl")
        rngs = rng if isinstance(rng, (list, tuple)) else [rng] * len(y)
        if len(rngs) != len(y):
            raise ValueError(f"got {len(rngs)} rngs for {len(y)} images")
        images = []
        for index, image_rng in enumerate(rngs):
            image_y, image_acq = y[index : index + 1], acq[index]
            draws = [self.recorrupt(image_y, image_acq, sigma, image_rng) for _ in range(self.num_samples)]
            inputs = torch.cat(draws)
            images.append(model(inputs, image_acq.repeat_interleave(self.num_samples)).mean(0, keepdim=True))
        return torch.cat(images)


__all__ = ["DDSSLLoss"]
