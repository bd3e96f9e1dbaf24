"""Plain objectives: the supervised oracle and measurement consistency."""

from torch import Tensor

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse


class SupervisedLoss(ReconstructionLoss):
    r"""Supervised oracle :math:`\mathrm{MSE}(f(y, A), x)`; the upper bound, reads ground truth."""

    needs_ground_truth = True

    def forward(self, model, physics, y, mask, x=None, rng=None) -> LossOutput:
        if x is None:
            raise ValueError(
                "loss=sup needs ground truth, but the batch has none; the training set's "
                "ground truth is only served when the loss declares needs_ground_truth"
            )
        x_hat = model(y, mask)
        loss = mse(x_hat, x)
        return LossOutput(loss, x_hat, {"sup": loss.detach()})


class MCLoss(ReconstructionLoss):
    r"""Measurement consistency :math:`\mathrm{MSE}(A f(y, A), y)`.

    The naive self-supervised baseline: MoDL's data-consistency step already fits ``y``, so
    this loss cannot learn the null space and ends near the zero-filled reconstruction.
    """

    def forward(self, model, physics, y, mask, x=None, rng=None) -> LossOutput:
        x_hat = model(y, mask)
        loss = measurement_consistency(physics, x_hat, y, mask)
        return LossOutput(loss, x_hat, {"mc": loss.detach()})


def measurement_consistency(physics, x_hat: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """``MSE(A x̂, y)``, the term every "+ MC" method adds."""
    return mse(physics.A(x_hat, mask), y)


__all__ = ["MCLoss", "SupervisedLoss", "measurement_consistency"]
