"""Plain objectives: the supervised oracle and measurement consistency (k-space and image domain)."""

from torch import Tensor

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse


class SupervisedLoss(ReconstructionLoss):
    r"""Supervised oracle :math:`\mathrm{MSE}(f(y, A), x)`; the upper bound, reads ground truth."""

    needs_ground_truth = True

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        if x is None:
            raise ValueError(
                "loss=sup needs ground truth, but the batch has none; the training set's "
                "ground truth is only served when the loss declares needs_ground_truth"
            )
        x_hat = model(y, acq)
        loss = mse(x_hat, x)
        return LossOutput(loss, x_hat, {"sup": loss.detach()})


class MCLoss(ReconstructionLoss):
    r"""Measurement consistency :math:`\mathrm{MSE}(A f(y, A), y)`.

    The naive self-supervised baseline: MoDL's data-consistency step already fits ``y``, so
    this loss cannot learn the null space and ends near the zero-filled reconstruction. In
    multi-coil it is the image-domain form of :class:`AdjointMCLoss`, as in the benchmark.
    """

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat = model(y, acq)
        loss = measurement_consistency(physics, x_hat, y, acq)
        return LossOutput(loss, x_hat, {"mc": loss.detach()})


class AdjointMCLoss(ReconstructionLoss):
    r"""Measurement consistency in the image domain, :math:`\mathrm{MSE}(A^H A f(y, A), A^H y)`.

    The mean of :math:`|A^H(A\hat x - y)|^2` over image entries: SSIBench's ``AdjointMCLoss``,
    the consistency term of every "+ MC" method in multi-coil (Wang & Davies, 2025). In
    single-coil :math:`A^H = F^H M` is an isometry on masked k-space, and this equals
    :class:`MCLoss`.
    """

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat = model(y, acq)
        loss = adjoint_consistency(physics, x_hat, y, acq)
        return LossOutput(loss, x_hat, {"mc": loss.detach()})


def adjoint_consistency(physics, x_hat: Tensor, y: Tensor, acq) -> Tensor:
    """``MSE(Aᴴ A x̂, Aᴴ y)``."""
    return mse(physics.backproject(physics.measure(x_hat, acq), acq), physics.backproject(y, acq))


def measurement_consistency(physics, x_hat: Tensor, y: Tensor, acq) -> Tensor:
    """The term every "+ MC" method adds: ``MSE(A x̂, y)``, or in multi-coil ``MSE(Aᴴ A x̂, Aᴴ y)``.

    The benchmark swaps ``MCLoss`` for ``AdjointMCLoss`` whenever the physics is multi-coil
    (SSIBench ``train.py``); multi-coil acquisitions are those that carry coil maps.
    """
    if acq.maps is not None:
        return adjoint_consistency(physics, x_hat, y, acq)
    return mse(physics.measure(x_hat, acq), y)


__all__ = [
    "AdjointMCLoss",
    "MCLoss",
    "SupervisedLoss",
    "adjoint_consistency",
    "measurement_consistency",
]
