"""Random image transforms ``T_g`` for equivariant imaging: rotations, shifts, diffeomorphisms.

Every transform acts on complex images ``(B, C, H, W)`` (the same map on every channel) and
separates the random draw from its application, so that a loss can apply the same ``T_g``
twice: ``params = t.sample_params(B, rng)``, ``t.apply(x, params)``; ``t(x, rng)``
does both. Random numbers come from the CPU ``rng`` and move to the data's device.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _identity_grid(batch: int, height: int, width: int, device, dtype) -> Tensor:
    """``(B, H, W, 2)`` sampling grid of the identity map in ``grid_sample`` coordinates."""
    theta = torch.eye(2, 3, device=device, dtype=dtype).expand(batch, 2, 3)
    return F.affine_grid(theta, [batch, 1, height, width], align_corners=False)


class Rotate(nn.Module):
    r"""Random rotation about the image centre, zero fill, same image size.

    .. math:: (T_\theta x)(u) = x(R_{-\theta} u)

    Angles are drawn uniformly from ``{0, m, 2m, ...} ∩ [0, degrees)`` (``m = multiples``);
    the reference (DeepInverse ``Rotate``) uses integer degrees in [0, 360), nearest
    interpolation and one angle per batch. Multiples of 90 are applied exactly by index
    permutation (``torch.rot90``) on square images.

    Args:
        degrees: upper end of the angle range (exclusive).
        multiples: angle step in degrees (1: integers; 90: exact quarter turns).
        interpolation: ``nearest`` (reference) or ``bilinear``.
        per_sample: one angle per sample instead of one per batch.
    """

    def __init__(
        self,
        degrees: float = 360,
        multiples: float = 1,
        interpolation: str = "nearest",
        per_sample: bool = False,
    ):
        super().__init__()
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        if multiples <= 0 or degrees <= 0:
            raise ValueError(f"degrees and multiples must be > 0, got {degrees} and {multiples}")
        self.angles = torch.arange(0, degrees, multiples, dtype=torch.float64)
        self.interpolation = interpolation
        self.per_sample = per_sample

    def sample_params(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B,)`` angles in degrees, counter-clockwise."""
        count = batch_size if self.per_sample else 1
        index = torch.randint(len(self.angles), (count,), generator=rng)
        return self.angles[index].expand(batch_size).clone()

    def apply(self, x: Tensor, angles: Tensor) -> Tensor:
        if x.shape[-1] == x.shape[-2] and bool(torch.all(angles % 90 == 0)):
            quarter_turns = (angles // 90).long() % 4
            if bool((quarter_turns == quarter_turns[0]).all()):
                return torch.rot90(x, int(quarter_turns[0]), dims=(-2, -1))
            return torch.stack(
                [torch.rot90(image, int(k), dims=(-2, -1)) for image, k in zip(x, quarter_turns)]
            )
        # cos/sin in float64, then float32: nearest-neighbour ties (e.g. at 225°) then break
        # exactly as in the reference (torchvision builds its matrix in double precision).
        radians = torch.deg2rad(angles.to(torch.float64))
        cos = torch.cos(radians).to(device=x.device, dtype=torch.float32)
        sin = torch.sin(radians).to(device=x.device, dtype=torch.float32)
        height, width = x.shape[-2:]
        # grid_sample works in normalised coordinates; correct for non-square aspect ratios.
        aspect = height / width
        theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=torch.float32)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * aspect
        theta[:, 1, 0], theta[:, 1, 1] = sin / aspect, cos
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(
            x.float(), grid, mode=self.interpolation, padding_mode="zeros", align_corners=False
        ).to(x.dtype)

    def forward(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        return self.apply(x, self.sample_params(len(x), rng))


class Shift(nn.Module):
    r"""Random circular shift by whole pixels: :math:`(T_s x)(u) = x(u - s)`, exact and invertible.

    Args:
        max_fraction: shifts are uniform integers in ``[-f H, f H]`` (and likewise along W).
        per_sample: one shift per sample instead of one per batch.
    """

    def __init__(self, max_fraction: float = 1.0, per_sample: bool = False):
        super().__init__()
        if not 0 <= max_fraction <= 1:
            raise ValueError(f"max_fraction must lie in [0, 1], got {max_fraction}")
        self.max_fraction = max_fraction
        self.per_sample = per_sample
        self._size: tuple[int, int] | None = None

    def sample_params(
        self, batch_size: int, rng: torch.Generator | None = None, size: tuple[int, int] = (1, 1)
    ) -> Tensor:
        """``(B, 2)`` integer shifts along (H, W)."""
        count = batch_size if self.per_sample else 1
        limits = torch.tensor([int(self.max_fraction * s) for s in size])
        shifts = (torch.rand(count, 2, generator=rng) * (2 * limits + 1)).floor().long() - limits
        return shifts.expand(batch_size, 2).clone()

    def apply(self, x: Tensor, shifts: Tensor) -> Tensor:
        return torch.stack(
            [torch.roll(image, (int(s[0]), int(s[1])), dims=(-2, -1)) for image, s in zip(x, shifts)]
        )

    def forward(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        return self.apply(x, self.sample_params(len(x), rng, tuple(x.shape[-2:])))


class Diffeomorphism(nn.Module):
    r"""Random smooth diffeomorphism with zero boundary displacement.

    .. math::
        v(u) = \sum_{k,l=1}^{K} a_{kl}\, \sin\!\big(\tfrac{k\pi(u_1+1)}{2}\big)
        \sin\!\big(\tfrac{l\pi(u_2+1)}{2}\big), \quad a_{kl} \sim \mathcal N(0, s^2/(kl)),
        \qquad \phi = \exp(v)

    a stationary velocity field of low frequencies (zero on the image border), integrated by
    scaling and squaring into a diffeomorphism ``φ``; ``T x = x ∘ φ`` (bilinear, zero fill).
    The inverse is ``exp(-v)``. Strength ``s`` is the velocity's scale in normalised
    coordinates ([-1, 1] across the image); ``s = 0`` is the identity. Replaces the reference's
    CPAB transformations (an external package) in Diffeo-EI (Wang & Davies, 2024).

    Args:
        strength: scale ``s`` of the velocity field.
        frequencies: number ``K`` of sine modes per axis.
        squarings: scaling-and-squaring steps (the field is divided by ``2**squarings``).
        interpolation: ``bilinear`` or ``nearest`` sampling of the image.
    """

    def __init__(
        self,
        strength: float = 0.03,
        frequencies: int = 3,
        squarings: int = 6,
        interpolation: str = "bilinear",
    ):
        super().__init__()
        if strength < 0 or frequencies < 1 or squarings < 0:
            raise ValueError(
                f"need strength >= 0, frequencies >= 1, squarings >= 0; got "
                f"{strength}, {frequencies}, {squarings}"
            )
        self.strength, self.frequencies, self.squarings = strength, frequencies, squarings
        self.interpolation = interpolation

    def sample_params(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 2, K, K)`` sine-mode coefficients of the velocity field."""
        k = torch.arange(1, self.frequencies + 1, dtype=torch.float32)
        decay = 1 / torch.sqrt(k[:, None] * k[None, :])
        return (
            self.strength
            * decay
            * torch.randn(batch_size, 2, self.frequencies, self.frequencies, generator=rng)
        )

    def velocity_at(self, coefficients: Tensor, points: Tensor) -> Tensor:
        """``(B, ..., 2)`` velocity at ``points`` ``(..., 2)`` given as (x along W, y along H)."""
        k = torch.arange(1, self.frequencies + 1, device=coefficients.device, dtype=torch.float32)
        along_w = torch.sin(k * math.pi * (points[..., :1] + 1) / 2)  # (..., K)
        along_h = torch.sin(k * math.pi * (points[..., 1:] + 1) / 2)  # (..., K)
        return torch.einsum("bckl,...k,...l->b...c", coefficients.to(torch.float32), along_h, along_w)

    def velocity(self, coefficients: Tensor, height: int, width: int) -> Tensor:
        """``(B, H, W, 2)`` velocity on the pixel grid, in ``grid_sample`` coordinates."""
        grid = _identity_grid(1, height, width, coefficients.device, torch.float32)[0]
        return self.velocity_at(coefficients, grid)

    def displacement(self, coefficients: Tensor, height: int, width: int) -> Tensor:
        """``(B, H, W, 2)`` displacement of ``φ = exp(v)`` by scaling and squaring."""
        displacement = self.velocity(coefficients, height, width) / 2**self.squarings
        identity = _identity_grid(len(coefficients), height, width, coefficients.device, torch.float32)
        for _ in range(self.squarings):
            displacement = displacement + compose(displacement, identity + displacement)
        return displacement

    def apply(self, x: Tensor, coefficients: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        coefficients = coefficients.to(x.device)
        identity = _identity_grid(len(x), height, width, x.device, torch.float32)
        grid = identity + self.displacement(coefficients, height, width)
        return F.grid_sample(
            x.float(), grid, mode=self.interpolation, padding_mode="zeros", align_corners=False
        ).to(x.dtype)

    def forward(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        return self.apply(x, self.sample_params(len(x), rng))


def compose(field: Tensor, grid: Tensor) -> Tensor:
    """Sample a ``(B, H, W, 2)`` field at the points ``grid`` (bilinear, border values)."""
    sampled = F.grid_sample(
        field.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled.permute(0, 2, 3, 1)


__all__ = ["Diffeomorphism", "Rotate", "Shift", "compose"]
