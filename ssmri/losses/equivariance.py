"""Equivariant imaging and multiple operators: learn the null space from virtual operators.

All four objectives add measurement consistency ``MSE(A x̂, y)`` (weight ``mc_weight``; in
multi-coil the image-domain ``MSE(Aᴴ A x̂, Aᴴ y)`` as in the benchmark) to a
term that asks the network to reconstruct its own output seen through another operator:
``A T_g`` (EI), ``A_g`` (MOI) or ``A_g T_g`` (MO-EI). Gradients flow through ``x̂`` and the
second pass, as in the reference (DeepInverse ``EILoss``, ``MOILoss``, ``MOEILoss``).
"""

import torch
from torch import Tensor, nn

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse
from ssmri.losses.consistency import measurement_consistency


def fresh_masks(physics, like: Tensor, per_sample: bool, rng: torch.Generator | None) -> Tensor:
    """``(B, 1, H, W)`` masks from the data's own mask law: one per sample, or one per batch."""
    count = len(like) if per_sample else 1
    masks = physics.sample_mask(count, rng).to(device=like.device, dtype=like.dtype)
    return masks.expand(len(like), *masks.shape[1:])


class _VirtualOperatorLoss(ReconstructionLoss):
    """``MC + w MSE(f(A' T x̂, A'), T x̂)`` with ``T`` a transform (or identity) and ``A'`` a mask."""

    term_name = "virtual"
    consistency_name = "mc"

    def __init__(
        self,
        transform: nn.Module | None,
        new_operator: bool,
        per_sample_masks: bool,
        weight: float,
        mc_weight: float,
    ):
        super().__init__()
        self.transform = transform
        self.new_operator = new_operator
        self.per_sample_masks = per_sample_masks
        self.weight = float(weight)
        self.mc_weight = float(mc_weight)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat = model(y, acq)
        mc = self.consistency(model, physics, y, acq, x_hat, rng)
        target = self.transform(x_hat, rng=rng) if self.transform is not None else x_hat
        # A new operator is a new mask on the same samples: each keeps its coil maps.
        operator = (
            acq.with_mask(fresh_masks(physics, acq.mask, self.per_sample_masks, rng))
            if self.new_operator
            else acq
        )
        # physics.simulate adds the acquisition's noise, as the reference's physics(x) does.
        reconstruction = model(physics.simulate(target, operator, rng), operator)
        term = mse(reconstruction, target)
        loss = self.mc_weight * mc + self.weight * term
        return LossOutput(loss, x_hat, {self.consistency_name: mc.detach(), self.term_name: term.detach()})

    def consistency(self, model, physics, y, acq, x_hat, rng) -> Tensor:
        """The term that fits the measurements: MC here; SURE in the robust variants."""
        return measurement_consistency(physics, x_hat, y, acq)


class EILoss(_VirtualOperatorLoss):
    r"""Equivariant imaging: MC plus equivariance of the reconstruction under ``T_g``.

    .. math::
        \mathcal{L} = \mathrm{MSE}(A\hat x, y) + w\,\mathrm{MSE}\big(f(A T_g \hat x, A), T_g \hat x\big),
        \qquad \hat x = f(y, A)

    Chen, Tachella & Davies, "Equivariant Imaging: Learning Beyond the Range Space", ICCV 2021;
    for MRI: "Robust Equivariant Imaging", CVPR 2022. With a
    :class:`~ssmri.transforms.image.Diffeomorphism` this is Diffeo-EI (Wang & Davies, 2024).

    Args:
        transform: ``T_g``, e.g. :class:`~ssmri.transforms.image.Rotate`.
        weight: weight ``w`` of the equivariance term.
        mc_weight: weight of the measurement-consistency term.
    """

    term_name = "ei"

    def __init__(self, transform: nn.Module, weight: float = 1.0, mc_weight: float = 1.0):
        super().__init__(
            transform, new_operator=False, per_sample_masks=False, weight=weight, mc_weight=mc_weight
        )


class MOILoss(_VirtualOperatorLoss):
    r"""Multi-operator imaging: MC plus consistency across a fresh sampling mask ``A_g``.

    .. math::
        \mathcal{L} = \mathrm{MSE}(A\hat x, y) + w\,\mathrm{MSE}\big(f(A_g \hat x, A_g), \hat x\big)

    ``A_g`` has a new mask from the data's own mask law. Tachella, Chen & Davies,
    "Unsupervised Learning From Incomplete Measurements for Inverse Problems", NeurIPS 2022.

    Args:
        per_sample_masks: a fresh mask per sample (default), or one for the whole batch as
            the reference draws.
        weight: weight ``w`` of the multi-operator term.
        mc_weight: weight of the measurement-consistency term.
    """

    term_name = "moi"

    def __init__(self, per_sample_masks: bool = True, weight: float = 1.0, mc_weight: float = 1.0):
        super().__init__(
            None, new_operator=True, per_sample_masks=per_sample_masks, weight=weight, mc_weight=mc_weight
        )


class MOEILoss(_VirtualOperatorLoss):
    r"""Multi-operator equivariant imaging: both a new mask and a transform.

    .. math::
        \mathcal{L} = \mathrm{MSE}(A\hat x, y) + w\,\mathrm{MSE}\big(f(A_g T_g \hat x, A_g), T_g \hat x\big)

    Wang & Davies, "Benchmarking Self-Supervised Methods for Accelerated MRI Reconstruction", 2025.

    Args:
        transform: ``T_g``.
        per_sample_masks: a fresh mask per sample (default) or one per batch (reference).
        weight: weight ``w`` of the MO-EI term.
        mc_weight: weight of the measurement-consistency term.
    """

    term_name = "moei"

    def __init__(
        self, transform: nn.Module, per_sample_masks: bool = True, weight: float = 1.0, mc_weight: float = 1.0
    ):
        super().__init__(
            transform,
            new_operator=True,
            per_sample_masks=per_sample_masks,
            weight=weight,
            mc_weight=mc_weight,
        )


__all__ = ["EILoss", "MOEILoss", "MOILoss", "fresh_masks"]
