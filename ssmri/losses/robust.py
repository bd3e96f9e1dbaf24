"""Noise-aware objectives built on SURE: ENSURE, Robust-EI and Robust-MO-EI.

Each reads the noise level ``σ`` from the physics (``physics.noise_std``), never from its own
config, and refuses noiseless physics, where its estimator has nothing to estimate.
"""

import torch
from torch import Tensor, nn

from ssmri.losses.base import LossOutput, ReconstructionLoss
from ssmri.losses.equivariance import EILoss, MOEILoss
from ssmri.physics.acquisition import apply_mask


def noise_level(physics, method: str) -> float:
    """``σ`` of the physics; a clear error where it is 0 (a noise-aware method needs ``σ > 0``)."""
    sigma = float(getattr(physics, "noise_std", 0.0))
    if not sigma > 0:
        raise ValueError(
            f"loss={method} models Gaussian measurement noise and reads its level from "
            f"physics.noise_std, which is {sigma:g}: run it on noisy physics, e.g. "
            "physics.noise_std=0.1 (scenario=noisy)"
        )
    return sigma


def sure_gaussian(
    model,
    physics,
    y: Tensor,
    acq,
    x_hat: Tensor,
    sigma: float,
    tau: float,
    rng: torch.Generator | None,
    weight: Tensor | None = None,
) -> Tensor:
    r"""Per-sample SURE ``(B,)`` for measurements with Gaussian noise of std ``σ``.

    .. math::
        \frac{1}{m}\|W(A\hat x - y)\|^2 - \sigma^2
        + \frac{2\sigma^2}{m\tau} b^\top\big(A f(y + \tau b, A) - A\hat x\big),
        \qquad b \sim \mathcal N(0, I)

    with the divergence of ``y ↦ A f(y, A)`` estimated by one Monte-Carlo probe (Ramani, Blu &
    Unser, IEEE TIP 2008); ``m`` counts every entry of the full-size ``y``, and ``W`` is an
    optional per-column weight ``(W,)`` (ENSURE). The probe ``b`` is drawn at every entry of
    ``y`` (the reference's draw) and only its sampled entries are kept.

    Args:
        y: ``(B, 2, H, W)`` (multi-coil ``(B, C, 2, H, W)``) noisy measurements.
        x_hat: ``(B, 2, H, W)`` ``f(y, A)``.
    """
    probe = torch.randn(y.shape, generator=rng, dtype=y.dtype).to(y.device)
    probe = apply_mask(probe, acq.mask)
    measured = physics.measure(x_hat, acq)
    perturbed = physics.measure(model(y + tau * probe, acq), acq)
    divergence = (probe * (perturbed - measured) / tau).flatten(1).mean(1)
    residual = measured - y if weight is None else weight * (measured - y)
    return residual.pow(2).flatten(1).mean(1) + 2 * sigma**2 * divergence - sigma**2


class ENSURELoss(ReconstructionLoss):
    r"""ENSURE: SURE weighted by the inverse sampling density of the random masks.

    .. math::
        \mathcal{L} = \frac{1}{m}\|P^{-1/2}(A\hat x - y)\|^2 - \sigma^2
        + \frac{2\sigma^2}{m\tau} b^\top\big(A f(y + \tau b, A) - A\hat x\big)

    with ``P`` the per-column sampling probability of the data's mask law (its ``E[M]``), an
    unbiased estimate of the image-domain error over the law of masks. Aggarwal, Pramanik &
    Jacob, "ENSURE: A General Approach for Unsupervised Training of Deep Image Reconstruction
    Algorithms", IEEE TMI 2023; configured as DeepInverse ``loss.mri.ENSURELoss`` (``τ = 0.1 σ``).
    The reference estimates ``P`` from 2000 masks; ours is exact (``estimate_with`` reproduces it).
    In multi-coil the weight acts on every coil's k-space (the coils share the mask).

    Args:
        tau_factor: ``τ = tau_factor · σ``.
        estimate_with: 0 for the exact ``P``, else the number of masks to average.
    """

    requires_noise = True

    def __init__(self, tau_factor: float = 0.1, estimate_with: int = 0):
        super().__init__()
        if tau_factor <= 0:
            raise ValueError(f"tau_factor must be > 0, got {tau_factor}")
        self.tau_factor = float(tau_factor)
        self.estimate_with = int(estimate_with)

    def column_weight(self, physics) -> Tensor:
        """``(W,)`` float64 ``P^{-1/2}`` of each column."""
        law = physics.mask_law
        if self.estimate_with:
            rng = torch.Generator().manual_seed(0)
            p = law.sample_columns(self.estimate_with, rng).double().mean(0)
        else:
            p = law.column_probability()
        return p.clamp_min(1e-12).rsqrt()

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        sigma = noise_level(physics, "ensure")
        x_hat = model(y, acq)
        weight = self.column_weight(physics).to(device=y.device, dtype=y.dtype)
        loss = sure_gaussian(
            model, physics, y, acq, x_hat, sigma, self.tau_factor * sigma, rng, weight
        ).mean()
        return LossOutput(loss, x_hat, {"ensure": loss.detach()})


class _SureConsistency:
    """Mixin: SURE (unbiased for Gaussian noise) in place of measurement consistency."""

    requires_noise = True

    consistency_name = "sure"
    tau: float

    def consistency(self, model, physics, y, acq, x_hat, rng) -> Tensor:
        sigma = noise_level(physics, self.method_name)
        return sure_gaussian(model, physics, y, acq, x_hat, sigma, self.tau, rng).mean()


class RobustEILoss(_SureConsistency, EILoss):
    r"""Robust EI: SURE in place of MC, plus the EI term on noisy virtual measurements.

    .. math::
        \mathcal{L} = \mathrm{SURE}_\sigma(\hat x; y)
        + w\,\mathrm{MSE}\big(f(A T_g \hat x + \epsilon, A), T_g \hat x\big)

    Chen, Tachella & Davies, "Robust Equivariant Imaging: a fully unsupervised framework for
    learning to image from noisy and partial measurements", CVPR 2022. SURE as DeepInverse's
    ``SureGaussianLoss`` (``τ = 0.01``, identity metric); ``σ`` from ``physics.noise_std``.

    Args:
        transform: ``T_g``, e.g. :class:`~ssmri.transforms.image.Rotate`.
        tau: finite-difference step of the divergence probe.
        weight: weight ``w`` of the EI term.
        mc_weight: weight of the SURE term.
    """

    method_name = "robust_ei"

    def __init__(self, transform: nn.Module, tau: float = 0.01, weight: float = 1.0, mc_weight: float = 1.0):
        super().__init__(transform, weight=weight, mc_weight=mc_weight)
        self.tau = float(tau)


class RobustMOEILoss(_SureConsistency, MOEILoss):
    r"""Robust MO-EI: SURE in place of MC, plus the MO-EI term.

    .. math::
        \mathcal{L} = \mathrm{SURE}_\sigma(\hat x; y)
        + w\,\mathrm{MSE}\big(f(A_g T_g \hat x + \epsilon, A_g), T_g \hat x\big)

    Wang & Davies, "Benchmarking Self-Supervised Methods for Accelerated MRI Reconstruction"
    (SSIBench), 2025; SURE as in :class:`RobustEILoss`.

    Args:
        transform: ``T_g``.
        per_sample_masks: a fresh mask per sample, or one per batch (reference).
        tau: finite-difference step of the divergence probe.
        weight: weight ``w`` of the MO-EI term.
        mc_weight: weight of the SURE term.
    """

    method_name = "robust_mo_ei"

    def __init__(
        self,
        transform: nn.Module,
        per_sample_masks: bool = True,
        tau: float = 0.01,
        weight: float = 1.0,
        mc_weight: float = 1.0,
    ):
        super().__init__(transform, per_sample_masks=per_sample_masks, weight=weight, mc_weight=mc_weight)
        self.tau = float(tau)


__all__ = ["ENSURELoss", "RobustEILoss", "RobustMOEILoss", "noise_level", "sure_gaussian"]
