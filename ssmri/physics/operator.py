"""Single-coil Cartesian MRI acquisition: ``A x = M ⊙ F x`` with the mask passed explicitly."""

import torch
from torch import Tensor, nn

from ssmri.physics.acquisition import Acquisition, apply_mask
from ssmri.physics.fft import fft2c, ifft2c
from ssmri.physics.masks import CartesianMaskLaw, make_mask_law


class SingleCoilMRI(nn.Module):
    r"""Single-coil Cartesian MRI: forward operator, adjoint, noise and the mask law.

    .. math::
        A x = M \odot F x, \qquad A^H y = F^H (M \odot y), \qquad y = A x + M \odot \epsilon

    with :math:`F` the centred orthonormal FFT and :math:`\epsilon` complex Gaussian noise of
    standard deviation ``noise_std`` per real component. Measurements are stored full size
    ``(B, 2, H, W)`` with zeros off the mask. The operator holds no mask: every call takes one,
    so each sample of a batch has its own. ``A``/``A_adjoint`` take the mask (and ``maps``, which
    single-coil data never has); the methods that take an
    :class:`~ssmri.physics.acquisition.Acquisition` (``measure``, ``backproject``,
    ``zero_filled``, ``simulate``) are the same calls for single- and multi-coil physics.

    Args:
        image_size: ``(H, W)`` or an int.
        acceleration: undersampling factor ``R`` (``W / R`` columns; exactly ``W // R`` in the
            fixed-count laws, on average in ``fastmri_random``).
        sampling: mask law by name (:data:`ssmri.physics.masks.MASK_LAWS`): ``gaussian``
            (default), ``fixed_count_uniform``, ``fixed_count_equispaced`` or fastMRI's
            ``fastmri_random``, ``fastmri_equispaced_fraction``, ``fastmri_magic_fraction``.
        center_fraction: always-sampled centre fraction; ``None`` for the default rule.
        noise_std: standard deviation of the measurement noise (0 for noiseless).
        single_operator: every sample of every split is acquired with one fixed mask, drawn
            once from the mask law with ``operator_seed`` (SSIBench's single-operator
            scenario); :meth:`sample_mask` still draws from the law, for MOI-type losses.
        operator_seed: seed of that fixed mask.
    """

    def __init__(
        self,
        image_size,
        acceleration: float = 4,
        sampling: str = "gaussian",
        center_fraction: float | None = None,
        noise_std: float = 0.0,
        single_operator: bool = False,
        operator_seed: int = 0,
    ):
        super().__init__()
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.mask_law: CartesianMaskLaw = make_mask_law(sampling, image_size, acceleration, center_fraction)
        self.sampling = sampling
        self.noise_std = float(noise_std)
        self.single_operator = bool(single_operator)
        self.operator_seed = int(operator_seed)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.mask_law.image_size

    @property
    def acceleration(self) -> float:
        return self.mask_law.acceleration

    def A(self, x: Tensor, mask: Tensor, maps: Tensor | None = None) -> Tensor:
        """Forward operator: image ``(B, 2, H, W)`` -> masked k-space ``(B, 2, H, W)``."""
        self._check_maps(maps)
        return mask * fft2c(x)

    def A_adjoint(self, y: Tensor, mask: Tensor, maps: Tensor | None = None) -> Tensor:
        """Adjoint: masked k-space -> image; on measurements, the zero-filled reconstruction."""
        self._check_maps(maps)
        return ifft2c(mask * y)

    def _check_maps(self, maps: Tensor | None) -> None:
        if maps is not None:
            raise ValueError(
                "single-coil physics got coil sensitivity maps; for multi-coil data use "
                "physics=multicoil (ssmri.physics.MultiCoilMRI)"
            )

    def measure(self, x: Tensor, acq: Acquisition) -> Tensor:
        """``A x`` with the operator of ``acq``."""
        return self.A(x, acq.mask, acq.maps)

    def backproject(self, y: Tensor, acq: Acquisition) -> Tensor:
        """``Aᴴ y`` with the operator of ``acq``."""
        return self.A_adjoint(y, acq.mask, acq.maps)

    def zero_filled(self, y: Tensor, acq: Acquisition) -> Tensor:
        """The "no learning" reconstruction ``Aᴴ y``."""
        return self.backproject(y, acq)

    def simulate(self, x: Tensor, acq: Acquisition, rng: torch.Generator | None = None) -> Tensor:
        """Noisy measurements ``A x + M ⊙ ε``."""
        kspace = self.measure(x, acq)
        if self.noise_std > 0:
            # Drawn on the CPU from the CPU rng, then moved: the same numbers on any device.
            noise = torch.randn(kspace.shape, generator=rng, dtype=kspace.dtype).to(kspace.device)
            kspace = kspace + apply_mask(self.noise_std * noise, acq.mask)
        return kspace

    def sample_mask(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 1, H, W)`` fresh masks from this acquisition's mask law."""
        return self.mask_law.sample(batch_size, rng)

    def acquisition_masks(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 1, H, W)`` masks the data are acquired with: fresh per sample, or the one fixed
        mask of ``single_operator`` (then ``rng`` is not used)."""
        if not self.single_operator:
            return self.sample_mask(batch_size, rng)
        fixed = self.mask_law.sample(1, torch.Generator().manual_seed(self.operator_seed))
        return fixed.expand(batch_size, *fixed.shape[1:]).clone()

    def extra_repr(self) -> str:
        single = f", single_operator (seed {self.operator_seed})" if self.single_operator else ""
        return f"{self.mask_law!r}, noise_std={self.noise_std:g}{single}"
