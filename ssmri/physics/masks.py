"""Cartesian sampling-mask laws by name; ssmri's fixed-count laws live here.

ssmri's own laws (``gaussian``, ``fixed_count_uniform``, ``fixed_count_equispaced``) sample
exactly ``W // R`` columns per draw around an ``int(c W)``-column centre block. fastMRI
0.3.0's laws, whose column count varies and whose centre is ``round(c W)`` columns, are in
``fastmri_masks.py``. Every law reports its exact per-column probability.
"""

import functools
from abc import abstractmethod

import numpy as np
import torch
from torch import Tensor

from ssmri.physics.fastmri_masks import (
    FastMRIEquispacedFractionMaskLaw,
    FastMRIMagicFractionMaskLaw,
    FastMRIRandomMaskLaw,
)
from ssmri.physics.mask_law import CartesianMaskLaw


class FixedCountMaskLaw(CartesianMaskLaw):
    """Base class of the laws that sample exactly ``W // R`` columns, centre block included.

    The centre block is ``min(int(c W), W // R)`` columns from ``W//2 - n_c//2``; subclasses
    choose the ``W // R - n_c`` outer columns.

    Args:
        image_size, acceleration, center_fraction: as :class:`CartesianMaskLaw`.
    """

    def __init__(self, image_size, acceleration: float, center_fraction: float | None = None):
        super().__init__(image_size, acceleration, center_fraction)
        self.num_columns = int(self.width // self.acceleration)
        self.num_center = min(int(self.center_fraction * self.width), self.num_columns)
        start = self.width // 2 - self.num_center // 2
        self.center_columns = torch.arange(start, start + self.num_center)
        outer = torch.ones(self.width, dtype=torch.bool)
        outer[self.center_columns] = False
        self.outer_columns = torch.nonzero(outer).flatten()
        self.num_outer = self.num_columns - self.num_center

    @abstractmethod
    def _draw_outer(self, rng: torch.Generator | None) -> Tensor:
        """Indices into ``self.outer_columns`` of the ``num_outer`` extra columns of one mask."""

    @abstractmethod
    def _outer_probability(self) -> np.ndarray:
        """Exact inclusion probability of each entry of ``self.outer_columns``."""

    def sample_columns(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        columns = torch.zeros(batch_size, self.width, dtype=torch.bool)
        columns[:, self.center_columns] = True
        for row in columns:
            if self.num_outer > 0:
                row[self.outer_columns[self._draw_outer(rng)]] = True
        return columns

    def column_probability(self) -> Tensor:
        probability = torch.zeros(self.width, dtype=torch.float64)
        probability[self.center_columns] = 1.0
        if self.num_outer > 0:
            probability[self.outer_columns] = torch.from_numpy(self._outer_probability())
        return probability


class WeightedRandomMaskLaw(FixedCountMaskLaw):
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
        return torch.exp(-((k - self.width / 2) ** 2) / (2 * sigma**2)) + 1 / (2 * self.acceleration)


class FixedCountUniformMaskLaw(WeightedRandomMaskLaw):
    """Exactly ``W // R - n_c`` outer columns, uniformly at random without replacement.

    Unlike fastMRI's ``RandomMaskFunc`` (``fastmri_random``), whose count varies from draw to
    draw, every mask has the same number of columns.
    """

    def outer_weights(self) -> Tensor:
        return torch.ones(len(self.outer_columns), dtype=torch.float64)


class FixedCountEquispacedMaskLaw(FixedCountMaskLaw):
    """Exactly ``n = W // R - n_c`` outer columns, evenly spaced with a random offset.

    The ``n`` extra columns are entries ``floor(o + i s)``, ``i < n``, of the list of outer
    columns, with spacing ``s = L / n`` and offset ``o ~ U[0, s)``; always exactly ``n``. This
    is not fastMRI's ``EquispacedMaskFractionFunc`` (``fastmri_equispaced_fraction``), which
    spaces columns over the whole width and lets them fall in the centre block.
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


# The classes' names before the fixed-count laws were told apart from fastMRI's.
UniformRandomMaskLaw = FixedCountUniformMaskLaw
EquispacedMaskLaw = FixedCountEquispacedMaskLaw

MASK_LAWS: dict[str, type[CartesianMaskLaw]] = {
    "gaussian": GaussianMaskLaw,
    "fixed_count_uniform": FixedCountUniformMaskLaw,
    "fixed_count_equispaced": FixedCountEquispacedMaskLaw,
    "fastmri_random": FastMRIRandomMaskLaw,
    "fastmri_equispaced_fraction": FastMRIEquispacedFractionMaskLaw,
    "fastmri_magic_fraction": FastMRIMagicFractionMaskLaw,
}
# Names recorded by earlier configs, runs, caches and checkpoints: still accepted, same laws.
OLD_SAMPLING_NAMES = {"uniform": "fixed_count_uniform", "equispaced": "fixed_count_equispaced"}


def make_mask_law(
    sampling: str, image_size, acceleration: float, center_fraction: float | None = None
) -> CartesianMaskLaw:
    """Build a mask law by name (:data:`MASK_LAWS`, or an old name of :data:`OLD_SAMPLING_NAMES`)."""
    law = MASK_LAWS.get(OLD_SAMPLING_NAMES.get(sampling, sampling))
    if law is None:
        raise ValueError(f"unknown sampling pattern {sampling!r}; choose one of {sorted(MASK_LAWS)}")
    return law(image_size, acceleration, center_fraction)
