"""MoDL: an unrolled network alternating a learned denoiser and exact data consistency."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmri.physics.fft import fft2c, ifft2c


def data_consistency(z: Tensor, y: Tensor, mask: Tensor, lam: Tensor) -> Tensor:
    r"""Closed-form data-consistency step for single-coil Cartesian MRI.

    .. math::
        \arg\min_x \|M F x - y\|^2 + \lambda \|x - z\|^2
        = F^H\left[\frac{M y + \lambda F z}{M + \lambda}\right]

    exact for any mask (including split masks ``M₁ ⊙ M``) because ``FᴴMF`` is diagonal in
    k-space. Computed in float32 outside autocast.

    Args:
        z: ``(B, 2, H, W)`` the denoiser's output.
        y: ``(B, 2, H, W)`` measurements (zero off the mask).
        mask: ``(B, 1, H, W)`` sampling mask of ``y``.
        lam: positive scalar ``λ``.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        lam = lam.float()
        kspace = (mask * y.float() + lam * fft2c(z.float())) / (mask + lam)
        return ifft2c(kspace)


class MoDL(nn.Module):
    r"""Model-based deep learning (Aggarwal et al., 2019) for single-coil MRI.

    .. math::
        x_0 = A^H y,\quad z_k = D(x_{k-1}),\quad x_k = \arg\min_x \|Ax-y\|^2 + \lambda_k\|x-z_k\|^2

    One denoiser ``D`` is shared by all ``num_iter`` iterations; each iteration has its own
    learnable ``λ_k = softplus(ρ_k) > 0``. ``forward(y, mask)`` is ``f(y, A)``: the operator
    enters only through its mask, so every loss can call the network with any mask it likes.

    Args:
        denoiser: image-to-image network on ``(B, 2, H, W)``.
        num_iter: number of unrolled iterations ``K``.
        dc_first: apply data consistency before the denoiser in each iteration, as the
            reference MoDL of DeepInverse 0.5 does (its output is then the denoiser's and not
            data consistent). Default ``False`` is the paper's denoiser-then-DC order.
        lambda_init: initial value of every ``λ_k``.
        channels_last: run the denoiser in NHWC memory format (its weights and inputs), which
            oneDNN on CPUs and tensor cores on GPUs convolve faster; results are unchanged.
        compile: compile the real-valued denoiser with ``torch.compile`` (in place, so
            checkpoints stay interchangeable); the complex FFTs and data consistency stay eager.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        num_iter: int = 3,
        dc_first: bool = False,
        lambda_init: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        if num_iter < 1:
            raise ValueError(f"num_iter must be >= 1, got {num_iter}")
        if lambda_init <= 0:
            raise ValueError(f"lambda_init must be > 0, got {lambda_init}")
        self.denoiser = denoiser
        self.num_iter = num_iter
        self.dc_first = dc_first
        # Inverse softplus, so that softplus(rho) == lambda_init.
        rho = torch.log(torch.expm1(torch.tensor(float(lambda_init))))
        self.rho = nn.Parameter(rho.repeat(num_iter))
        self.channels_last = channels_last
        if channels_last:
            self.denoiser.to(memory_format=torch.channels_last)
        if compile:
            self.denoiser.compile()

    @property
    def lambdas(self) -> Tensor:
        return F.softplus(self.rho)

    def denoise(self, x: Tensor) -> Tensor:
        """``D(x)`` in the configured memory format."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.denoiser(x)

    def forward(self, y: Tensor, mask: Tensor) -> Tensor:
        x = ifft2c(mask * y)
        lambdas = self.lambdas
        for k in range(self.num_iter):
            if self.dc_first:
                x = self.denoise(data_consistency(x, y, mask, lambdas[k]))
            else:
                x = data_consistency(self.denoise(x), y, mask, lambdas[k])
        return x
