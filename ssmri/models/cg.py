"""Conjugate gradients for the Hermitian positive-definite systems of data consistency."""

from collections.abc import Callable

import torch
from torch import Tensor


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Real inner product per sample ``Re⟨a, b⟩``, shape ``(B, 1, ..., 1)``."""
    return (a * b).flatten(1).sum(dim=1).reshape(-1, *([1] * (a.dim() - 1)))


def conjugate_gradient(
    operator: Callable[[Tensor], Tensor],
    rhs: Tensor,
    x0: Tensor,
    iterations: int,
    tolerance: float = 0.0,
) -> Tensor:
    r"""Solve :math:`H x = b` for a Hermitian positive-definite :math:`H`, per sample of a batch.

    Complex images in real/imaginary channels: for Hermitian :math:`H` the real inner product
    :math:`\mathrm{Re}\langle a, b\rangle` of the channel tensors gives the same iterates as
    complex CG. At most ``iterations`` steps; a sample stops moving once its residual norm falls
    below ``tolerance`` times the norm of its ``b`` (its step is then zero, so a batch keeps one
    fixed graph). Plain tensor operations only, so the solve is differentiable by unrolling.

    Args:
        operator: ``x -> H x`` on ``(B, ...)`` tensors.
        rhs: ``b``, ``(B, ...)``.
        x0: starting point, shaped as ``b``.
        iterations: number of CG steps (fixed).
        tolerance: relative residual at which a sample stops.
    """
    x = x0
    residual = rhs - operator(x)
    direction = residual
    rho = _dot(residual, residual)
    threshold = (tolerance**2) * _dot(rhs, rhs)
    for _ in range(iterations):
        active = (rho > threshold).to(rho.dtype)
        h_direction = operator(direction)
        curvature = _dot(direction, h_direction)
        alpha = active * rho / torch.where(curvature > 0, curvature, torch.ones_like(curvature))
        x = x + alpha * direction
        residual = residual - alpha * h_direction
        rho_next = _dot(residual, residual)
        beta = active * rho_next / torch.where(rho > 0, rho, torch.ones_like(rho))
        direction = residual + beta * direction
        rho = rho_next
    return x


__all__ = ["conjugate_gradient"]
