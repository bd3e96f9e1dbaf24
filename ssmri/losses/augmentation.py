"""Augmentation consistency (VORTEX): the reconstruction must not change under k-space augmentations."""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse
from ssmri.losses.consistency import measurement_consistency
from ssmri.transforms.kspace import KspaceCompose


class VORTEXLoss(ReconstructionLoss):
    r"""VORTEX: measurement consistency plus consistency under physics-driven augmentations.

    .. math::
        \mathcal{L} = w_{mc}\,\mathrm{MSE}(A\hat x, y)
        + w\,\mathrm{MSE}\big(f(A\,T_e A^H T_i(y), A),\; T_e\,\mathrm{sg}[\hat x]\big),
        \qquad \hat x = f(y, A)

    with :math:`T_i` k-space augmentations (default: random phase error, then noise at the
    sampled entries) and :math:`T_e` an optional image transform (identity by default; then
    the augmented input is :math:`T_i(y)` itself). As in the reference, :math:`T_i` acts first,
    then :math:`T_e` on the zero-filled image, and the same :math:`T_e` maps the target. Desai
    et al., "VORTEX: Physics-Driven Data Augmentations Using Consistency Training for Robust
    Accelerated MRI Reconstruction", MIDL 2022; SSIBench (Wang & Davies, 2025).

    The reference cannot be followed exactly for :math:`T_e`: it feeds the network the
    un-transformed data with the composed operator :math:`A T_e^{-1}`, which a mask-only
    network ``f(y, mask)`` cannot take. We re-measure the transformed image with the same mask
    instead (the VORTEX paper's construction); for integer shifts the two inputs coincide.

    In multi-coil the k-space augmentations act on every coil's k-space alike (one phase error
    per sample, independent noise per coil) and MC is the image-domain form, as in the benchmark.

    Args:
        augmentation: k-space augmentation ``T_i``, a module ``forward(y, mask, rng)``;
            ``None`` for :class:`~ssmri.transforms.kspace.KspaceCompose`'s default.
        image_transform: optional ``T_e``, a callable ``forward(x, rng=None)`` on
            ``(B, C, H, W)`` that acts identically on every channel (geometric transforms do);
            it is applied once to the input and target stacked along channels, so both get
            the same random draw.
        weight: weight ``w`` of the augmentation term.
        mc_weight: weight of the measurement-consistency term (0 to drop it).
        detach_target: stop the gradient through the target ``x̂`` (the paper and reference).
    """

    def __init__(
        self,
        augmentation: nn.Module | None = None,
        image_transform: Callable[..., Tensor] | None = None,
        weight: float = 1.0,
        mc_weight: float = 1.0,
        detach_target: bool = True,
    ):
        super().__init__()
        self.augmentation = augmentation if augmentation is not None else KspaceCompose()
        self.image_transform = image_transform
        self.weight = float(weight)
        self.mc_weight = float(mc_weight)
        self.detach_target = detach_target

    def augment(
        self, physics, y: Tensor, acq, target: Tensor, rng: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Augmented measurements (shaped as ``y``) and the matching target ``(B, 2, H, W)``."""
        y_aug = self.augmentation(y, acq.mask, rng)
        if self.image_transform is None:
            return y_aug, target
        stacked = torch.cat((physics.backproject(y_aug, acq), target), dim=1)
        stacked = self.image_transform(stacked, rng=rng)
        image_aug, target = stacked.split(target.shape[1], dim=1)
        return physics.measure(image_aug, acq), target

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat = model(y, acq)
        mc = measurement_consistency(physics, x_hat, y, acq)
        target = x_hat.detach() if self.detach_target else x_hat
        y_aug, target = self.augment(physics, y, acq, target, rng)
        vortex = mse(model(y_aug, acq), target)
        loss = self.mc_weight * mc + self.weight * vortex
        return LossOutput(loss, x_hat, {"mc": mc.detach(), "vortex": vortex.detach()})


__all__ = ["VORTEXLoss"]
