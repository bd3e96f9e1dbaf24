"""Splitting with a consistency term: SSDU-Consistency and multi-operator-consistency SSDU.

Both are SSIBench's own compositions (``utils/splitting_consistency.py``, ``utils/moc.py``);
their consistency terms compare k-space, as the benchmark's do in multi-coil too (it swaps
only the explicit "+ MC" terms for the image-domain form).
"""

from torch import Tensor

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse
from ssmri.losses.equivariance import fresh_masks
from ssmri.losses.splitting import SSDULoss
from ssmri.physics.acquisition import apply_mask
from ssmri.transforms.split_masks import BernoulliSplitter


def split_reconstruction(model, splitter, y: Tensor, acq, rng) -> tuple[Tensor, Tensor]:
    """``(f(M₁ y, M₁ A), M₁)`` with ``M₁`` a fresh split of the acquisition's mask."""
    input_mask = splitter.split(acq.mask, rng)
    return model(apply_mask(y, input_mask), acq.with_mask(input_mask)), input_mask


class SSDUConsistencyLoss(ReconstructionLoss):
    r"""SSDU-Consistency: two split reconstructions that agree off the mask and fit ``y`` on it.

    .. math::
        \mathcal{L} = \mathrm{MSE}\big((1-M) F \hat x_1, (1-M) F \hat x_2\big)
        + \mathrm{MSE}(A \hat x_1, y) + \mathrm{MSE}(A \hat x_2, y),
        \qquad \hat x_k = f(M_k y, M_k A)

    with ``M₁, M₂`` two independent splits of the measurement mask ``M`` and ``(1-M) F`` the
    operator with the complementary mask (each sample keeps its coil maps). Hu et al.,
    "Self-supervised learning for MRI reconstruction with a parallel network training
    framework", MICCAI 2021 (shared weights, as SSIBench). Inference: ``f(y, A)``.

    Args:
        splitter: draws each ``M_k`` from ``M`` (the benchmark: Bernoulli, ratio 0.6).
        consistency_weight: weight of the unmeasured-k-space agreement term.
    """

    def __init__(self, splitter=None, consistency_weight: float = 1.0):
        super().__init__()
        self.splitter = splitter if splitter is not None else BernoulliSplitter(0.6)
        self.consistency_weight = float(consistency_weight)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat1, _ = split_reconstruction(model, self.splitter, y, acq, rng)
        x_hat2, _ = split_reconstruction(model, self.splitter, y, acq, rng)
        unmeasured = acq.with_mask(1 - acq.mask)
        agreement = mse(physics.measure(x_hat1, unmeasured), physics.measure(x_hat2, unmeasured))
        fit = mse(physics.measure(x_hat1, acq), y) + mse(physics.measure(x_hat2, acq), y)
        loss = self.consistency_weight * agreement + fit
        return LossOutput(loss, x_hat1, {"consistency": agreement.detach(), "mc": fit.detach()})


class MOCSSDULoss(SSDULoss):
    r"""MOC-SSDU: SSDU plus multi-operator consistency measured in the data's own k-space.

    .. math::
        \mathcal{L} = \frac{\mathrm{MSE}(M_2 A \hat x_1, M_2 y)}{\mathrm{mean}(M_2)}
        + w\,\mathrm{MSE}\big(A f(\tilde M_1 A_g \hat x_1, \tilde M_1 A_g), y\big),
        \qquad \hat x_1 = f(M_1 y, M_1 A)

    with ``A_g`` a fresh mask from the data's mask law (noisy as the data: ``A_g x̂₁ + ε``) and
    ``M̃₁`` a split of that mask: SSIBench wraps the network in SSDU's input splitting, so
    every pass of the list ``[MOConsistencyLoss, SplittingLoss]`` sees split inputs
    (``split_second_pass=False`` feeds ``A_g x̂₁`` whole). The consistency term is CC-SSDU's
    (Zhang et al., "Cycle-consistent self-supervised learning for improved highly-accelerated
    MRI reconstruction", ISBI 2024), as SSIBench ``utils/moc.py``. Inference: ``f(y, A)``.

    Args:
        splitter: draws ``M₁`` (the benchmark: Bernoulli, ratio 0.6).
        per_sample_masks: a fresh ``A_g`` per sample, or one per batch (the reference).
        split_second_pass: split the input of the second pass too (the reference).
        weight: weight ``w`` of the consistency term.
    """

    def __init__(
        self,
        splitter=None,
        per_sample_masks: bool = True,
        split_second_pass: bool = True,
        weight: float = 1.0,
    ):
        super().__init__(splitter if splitter is not None else BernoulliSplitter(0.6))
        self.per_sample_masks = per_sample_masks
        self.split_second_pass = split_second_pass
        self.weight = float(weight)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat, input_mask = split_reconstruction(model, self.splitter, y, acq, rng)
        ssdu = self.held_out_error(physics, x_hat, y, acq.with_mask(acq.mask - input_mask))
        operator = acq.with_mask(fresh_masks(physics, acq.mask, self.per_sample_masks, rng))
        y_virtual = physics.simulate(x_hat, operator, rng)
        if self.split_second_pass:
            x_cycle, _ = split_reconstruction(model, self.splitter, y_virtual, operator, rng)
        else:
            x_cycle = model(y_virtual, operator)
        consistency = mse(physics.measure(x_cycle, acq), y)
        loss = ssdu + self.weight * consistency
        return LossOutput(loss, x_hat, {"ssdu": ssdu.detach(), "moc": consistency.detach()})


__all__ = ["MOCSSDULoss", "SSDUConsistencyLoss", "split_reconstruction"]
