"""MoDL: an unrolled network alternating a learned denoiser and exact data consistency."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.profiler import record_function

from ssmri.models.cg import conjugate_gradient
from ssmri.physics.acquisition import Acquisition
from ssmri.physics.fft import fft2c, full_precision, ifft2c
from ssmri.physics.multicoil import multicoil_adjoint, multicoil_forward


def prefers_channels_last() -> bool:
    """Whether the U-Net *trains* faster in NHWC (``channels_last``) than in NCHW here.

    NHWC where a GPU is visible (tensor cores) and on CPUs whose torch kernels use AVX-512, where
    oneDNN's NHWC convolutions are the faster ones; NCHW on CPUs with AVX2 at most, where
    oneDNN's NHWC backward pass is slow. Inference runs in NHWC everywhere, as without a backward
    pass NHWC is the faster one on AVX2 too (timings in docs/benchmark.md). Decided when the model
    is built (an AVX2-only GPU node running on its CPU gets NHWC: set ``model.channels_last=false``
    there).
    """
    if torch.cuda.is_available():
        return True
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def data_consistency(z: Tensor, y: Tensor, mask: Tensor, lam: Tensor) -> Tensor:
    r"""Closed-form data-consistency step for single-coil Cartesian MRI.

    .. math::
        \arg\min_x \|M F x - y\|^2 + \lambda \|x - z\|^2
        = F^H\left[\frac{M y + \lambda F z}{M + \lambda}\right]

    exact for any mask (including split masks ``M₁ ⊙ M``) because ``FᴴMF`` is diagonal in
    k-space. Computed in float32 (or float64) outside autocast.

    Args:
        z: ``(B, 2, H, W)`` the denoiser's output.
        y: ``(B, 2, H, W)`` measurements (zero off the mask).
        mask: ``(B, 1, H, W)`` sampling mask of ``y``.
        lam: positive scalar ``λ``.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        lam = full_precision(lam)
        kspace = (mask * full_precision(y) + lam * fft2c(z)) / (mask + lam)
        return ifft2c(kspace)


def multicoil_data_consistency(
    z: Tensor, y: Tensor, acq: Acquisition, lam: Tensor, iterations: int, tolerance: float
) -> Tensor:
    r"""Data consistency for multi-coil MRI by conjugate gradients.

    .. math::
        rg\min_x \|A x - y\|^2 + \lambda \|x - z\|^2:\qquad (A^H A + \lambda I)\, x = A^H y + \lambda z

    :math:`A^H A = \sum_c S_c^H F^H M F S_c` is not diagonal in any basis we can invert cheaply,
    so the system is solved by ``iterations`` CG steps from ``z`` (float32 outside autocast,
    differentiable by unrolling).

    Args:
        z: ``(B, 2, H, W)`` the denoiser's output.
        y: ``(B, C, 2, H, W)`` measurements.
        acq: their mask ``(B, 1, H, W)`` and coil maps ``(B, C, 2, H, W)``.
        lam: positive scalar ``λ``.
        iterations, tolerance: of :func:`~ssmri.models.cg.conjugate_gradient`.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        lam, z = full_precision(lam), full_precision(z)
        mask, maps = full_precision(acq.mask), full_precision(acq.maps)

        def normal(x: Tensor) -> Tensor:
            return multicoil_adjoint(multicoil_forward(x, mask, maps), mask, maps) + lam * x

        rhs = multicoil_adjoint(full_precision(y), mask, maps) + lam * z
        return conjugate_gradient(normal, rhs, z, iterations, tolerance)


class MoDL(nn.Module):
    r"""Model-based deep learning (Aggarwal et al., 2019) for single- and multi-coil MRI.

    .. math::
        x_0 = A^H y,\quad z_k = D(x_{k-1}),\quad x_k = \arg\min_x \|Ax-y\|^2 + \lambda_k\|x-z_k\|^2

    One denoiser ``D`` is shared by all ``num_iter`` iterations; each iteration has its own
    learnable ``λ_k = softplus(ρ_k) > 0``. ``forward(y, acq)`` is ``f(y, A)``: the operator
    enters only through the acquisition (mask and, in multi-coil, coil maps), so every loss can
    call the network with any mask it likes. Single-coil data consistency is the closed form
    (:func:`data_consistency`); an acquisition with coil maps is solved by conjugate gradients
    (:func:`multicoil_data_consistency`).

    Args:
        denoiser: image-to-image network on ``(B, 2, H, W)``.
        num_iter: number of unrolled iterations ``K``.
        dc_first: apply data consistency before the denoiser in each iteration, as the
            reference MoDL of DeepInverse 0.5 does (its output is then the denoiser's and not
            data consistent). Default ``False`` is the paper's denoiser-then-DC order.
        lambda_init: initial value of every ``λ_k``.
        channels_last: run the denoiser in NHWC memory format (its weights and inputs);
            results are unchanged, only speed. ``None``: the faster one by machine and mode,
            :func:`prefers_channels_last` in training mode and NHWC in evaluation mode (the
            weights change format at the first call in the other mode).
        compile: compile the real-valued denoiser with ``torch.compile`` (in place, so
            checkpoints stay interchangeable); the complex FFTs and data consistency stay eager.
        cg_iterations: conjugate-gradient steps of multi-coil data consistency.
        cg_tolerance: relative residual at which CG stops early (0: always ``cg_iterations``).
    """

    def __init__(
        self,
        denoiser: nn.Module,
        num_iter: int = 3,
        dc_first: bool = False,
        lambda_init: float = 1.0,
        channels_last: bool | None = False,
        compile: bool = False,
        cg_iterations: int = 10,
        cg_tolerance: float = 1e-6,
    ):
        super().__init__()
        if num_iter < 1:
            raise ValueError(f"num_iter must be >= 1, got {num_iter}")
        if lambda_init <= 0:
            raise ValueError(f"lambda_init must be > 0, got {lambda_init}")
        if cg_iterations < 1 or cg_tolerance < 0:
            raise ValueError(
                f"model.cg_iterations must be >= 1 and model.cg_tolerance >= 0, "
                f"got {cg_iterations} and {cg_tolerance}"
            )
        self.cg_iterations = int(cg_iterations)
        self.cg_tolerance = float(cg_tolerance)
        self.denoiser = denoiser
        self.num_iter = num_iter
        self.dc_first = dc_first
        # Inverse softplus, so that softplus(rho) == lambda_init.
        rho = torch.log(torch.expm1(torch.tensor(float(lambda_init))))
        self.rho = nn.Parameter(rho.repeat(num_iter))
        if channels_last is None:  # by machine in training, NHWC for inference
            self.channels_last, self.inference_channels_last = prefers_channels_last(), True
        else:
            self.channels_last = self.inference_channels_last = bool(channels_last)
        self._denoiser_nhwc = False
        self._use_layout(self.channels_last)
        if compile:
            self.denoiser.compile()

    @property
    def lambdas(self) -> Tensor:
        return F.softplus(self.rho)

    def _use_layout(self, nhwc: bool) -> None:
        """The denoiser's weights in NHWC or NCHW; the same parameters, their data reordered."""
        if nhwc != self._denoiser_nhwc:
            self.denoiser.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
            self._denoiser_nhwc = nhwc

    def denoise(self, x: Tensor) -> Tensor:
        """``D(x)`` in the memory format of the current mode.

        The mode is read here, at the call, rather than in :meth:`train`: Lightning restores
        modes after validation by setting ``module.training``, which never calls ``train()``.
        """
        self._use_layout(self.channels_last if self.training else self.inference_channels_last)
        if self._denoiser_nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with record_function("ssmri::unet"):  # a profiler scope, for the benchmark's time split
            return self.denoiser(x)

    def data_consistency(self, z: Tensor, y: Tensor, acq: Acquisition, lam: Tensor) -> Tensor:
        """``argmin_x ‖A x - y‖² + λ ‖x - z‖²`` for the acquisition's operator."""
        if acq.maps is None:
            return data_consistency(z, y, acq.mask, lam)
        with record_function("ssmri::cg"):
            return multicoil_data_consistency(z, y, acq, lam, self.cg_iterations, self.cg_tolerance)

    def forward(self, y: Tensor, acq: Acquisition) -> Tensor:
        if acq.maps is None:
            x = ifft2c(acq.mask * y)
        else:
            x = multicoil_adjoint(y, acq.mask, acq.maps)
        lambdas = self.lambdas
        for k in range(self.num_iter):
            if self.dc_first:
                x = self.denoise(self.data_consistency(x, y, acq, lambdas[k]))
            else:
                x = self.data_consistency(self.denoise(x), y, acq, lambdas[k])
        return x
