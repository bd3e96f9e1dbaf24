"""Cartesian sampling-mask laws: which phase-encode columns (along W) are acquired.

Every law samples exactly ``W // R`` columns per draw, always including a centre block,
and can report the exact per-column inclusion probability (Weighted-SSDU needs it).
"""

import functools
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor


def _check_image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = (int(s) for s in image_size)
    if height < 2 or width < 2:
        raise ValueError(f"image_size must be at least 2x2, got {image_size}")
    return height, width


class CartesianMaskLaw(ABC):
    """Base class: the centre-block rule shared by every Cartesian pattern.

    Args:
        image_size: ``(H, W)`` or an int for square images.
        acceleration: ``R``; exactly ``W // R`` columns are sampled, ``1 <= R <= W``.
        center_fraction: fraction ``c`` of always-sampled centre columns; ``None`` means
            0.08 for ``R < 8`` and 0.04 otherwise. The block is ``int(c W)`` columns, clipped
            to ``W // R`` so that the total stays exact.
    """

    def __init__(self, image_size, acceleration: float, center_fraction: float | None = None):
        self.height, self.width = _check_image_size(image_size)
        acceleration = float(acceleration)
        if not 1 <= acceleration <= self.width:
            raise ValueError(
                f"acceleration must lie in [1, W={self.width}] (W//R columns are sampled), "
                f"got {acceleration}; set physics.acceleration to e.g. 4"
            )
        if center_fraction is None:
            center_fraction = 0.08 if acceleration < 8 else 0.04
        if not 0 <= center_fraction <= 1:
            raise ValueError(f"center_fraction must lie in [0, 1], got {center_fraction}")
        self.acceleration = acceleration
        self.center_fraction = float(center_fraction)
        self.num_columns = int(self.width // acceleration)
        self.num_center = min(int(center_fraction * self.width), self.num_columns)
        start = self.width // 2 - self.num_center // 2
        self.center_columns = torch.arange(start, start + self.num_center)
        outer = torch.ones(self.width, dtype=torch.bool)
        outer[self.center_columns] = False
        self.outer_columns = torch.nonzero(outer).flatten()
        self.num_outer = self.num_columns - self.num_center

    @property
    def image_size(self) -> tuple[int, int]:
        return self.height, self.width

    @abstractmethod
    def _draw_outer(self, rng: torch.Generator | None) -> Tensor:
        """Indices into ``self.outer_columns`` of the ``num_outer`` extra columns of one mask."""

    @abstractmethod
    def _outer_probability(self) -> np.ndarray:
        """Exact inclusion probability of each entry of ``self.outer_columns``."""

    def sample_columns(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, W)`` boolean column masks, a fresh draw per sample."""
        columns = torch.zeros(batch_size, self.width, dtype=torch.bool)
        columns[:, self.center_columns] = True
        for row in columns:
            if self.num_outer > 0:
                row[self.outer_columns[self._draw_outer(rng)]] = True
        return columns

    def sample(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 1, H, W)`` float 0/1 masks, constant along H."""
        columns = self.sample_columns(batch_size, rng).float()
        return columns[:, None, None, :].expand(batch_size, 1, self.height, self.width).clone()

    def column_probability(self) -> Tensor:
        """``(W,)`` float64 exact probability that each column is sampled in one draw."""
        probability = torch.zeros(self.width, dtype=torch.float64)
        probability[self.center_columns] = 1.0
        if self.num_outer > 0:
            probability[self.outer_columns] = torch.from_numpy(self._outer_probability())
        return probability

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, "
            f"acceleration={self.acceleration:g}, center_fraction={self.center_fraction:g})"
        )


class WeightedRandomMaskLaw(CartesianMaskLaw):
    """Outer columns drawn without replacement with probability proportional to a weight.

    Drawing without replacement proportionally to ``w`` (``torch.multinomial``) is successive
    sampling, the same law as an exponential race: column ``j`` rings at ``T_j ~ Exp(w_j)`` and
    the first ``n`` to ring are kept. Its inclusion probability is therefore
    ``P_i = ∫ w_i e^{-w_i t} Pr[#{j != i : T_j < t} < n] dt``, which we integrate numerically.
    """

    @abstractmethod
    def outer_weights(self) -> Tensor:
        """``(len(outer_columns),)`` positive float64 weights."""

    def _draw_outer(self, rng):
        return torch.multinomial(self.outer_weights(), self.num_outer, False, generator=rng)

    def _outer_probability(self) -> np.ndarray:
        weights = self.outer_weights().numpy()
        return _successive_sampling_inclusion(tuple(weights.tolist()), self.num_outer)


@functools.lru_cache(maxsize=32)
def _successive_sampling_inclusion(weights: tuple, num_draws: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    count = len(weights)
    if num_draws >= count:
        return np.ones(count)
    if np.allclose(weights, weights[0]):
        return np.full(count, num_draws / count)
    weights = weights / weights.sum()
    # Integrate over t in [0, inf) with t = -log(1 - u) / w_min mapped from Gauss-Legendre
    # nodes on u in (0, 1); 400 nodes reach about 1e-9 on the patterns used here.
    nodes, node_weights = np.polynomial.legendre.leggauss(400)
    u = 0.5 * (nodes + 1.0)
    scale = weights.min()
    t = -np.log1p(-u) / scale
    dt = 0.5 * node_weights / ((1.0 - u) * scale)
    rang = 1.0 - np.exp(-np.outer(t, weights))  # (Q, count): Pr[T_j < t]
    probability = np.empty(count)
    for i in range(count):
        # Poisson-binomial law of how many other columns rang before t, truncated at n.
        law = np.zeros((len(t), num_draws))
        law[:, 0] = 1.0
        for j in range(count):
            if j == i:
                continue
            p = rang[:, j : j + 1]
            law[:, 1:] = law[:, 1:] * (1 - p) + law[:, :-1] * p
            law[:, :1] = law[:, :1] * (1 - p)
        density = weights[i] * np.exp(-weights[i] * t)
        probability[i] = np.sum(dt * density * law.sum(axis=1))
    return np.clip(probability, 0.0, 1.0)


class GaussianMaskLaw(WeightedRandomMaskLaw):
    """Gaussian variable density: weight ``exp(-(k - W/2)^2 / (2 (W/10)^2)) + 1/(2R)``.

    The default pattern of the self-supervised MRI benchmark (Wang & Davies, 2025).
    """

    def outer_weights(self) -> Tensor:
        k = self.outer_columns.double()
        sigma = self.width / 10
        return torch.exp(-((k - self.width / 2) ** 2) / (2 * sigma**2)) + 1 / (
            2 * self.acceleration
        )


class UniformRandomMaskLaw(WeightedRandomMaskLaw):
    """Outer columns uniformly at random without replacement (fastMRI ``RandomMaskFunc``)."""

    def outer_weights(self) -> Tensor:
        return torch.ones(len(self.outer_columns), dtype=torch.float64)


class EquispacedMaskLaw(CartesianMaskLaw):
    """Outer columns evenly spaced, with a random offset (fastMRI ``EquispacedMaskFunc``).

    The ``n`` extra columns are entries ``floor(o + i s)``, ``i < n``, of the list of outer
    columns, with spacing ``s = L / n`` and offset ``o ~ U[0, s)``; always exactly ``n``.
    """

    def _spacing(self) -> float:
        return len(self.outer_columns) / self.num_outer

    def _draw_outer(self, rng):
        spacing = self._spacing()
        offset = torch.rand((), generator=rng, dtype=torch.float64).item() * spacing
        index = torch.floor(offset + spacing * torch.arange(self.num_outer, dtype=torch.float64))
        return index.long().clamp_(max=len(self.outer_columns) - 1)

    def _outer_probability(self) -> np.ndarray:
        spacing = self._spacing()
        probability = np.zeros(len(self.outer_columns))
        for j in range(len(probability)):
            for i in range(self.num_outer):
                low, high = max(j - i * spacing, 0.0), min(j + 1 - i * spacing, spacing)
                probability[j] += max(high - low, 0.0) / spacing
        return np.clip(probability, 0.0, 1.0)


MASK_GENERATORS = {
    "gaussian": GaussianMaskLaw,
    "uniform": UniformRandomMaskLaw,
    "equispaced": EquispacedMaskLaw,
}


def make_mask_law(
    sampling: str, image_size, acceleration: float, center_fraction: float | None = None
) -> CartesianMaskLaw:
    """Build a mask law by name: ``gaussian`` (default), ``uniform`` or ``equispaced``."""
    if sampling not in MASK_GENERATORS:
        raise ValueError(
            f"unknown sampling pattern {sampling!r}; choose one of {sorted(MASK_GENERATORS)}"
        )
    return MASK_GENERATORS[sampling](image_size, acceleration, center_fraction)

