"""fastMRI 0.3.0's column-mask laws (``fastmri.data.subsample``), equal in distribution to its own.

Each law takes one centre fraction and one acceleration (fastMRI can also pick one pair per
call from lists) and draws from a ``torch.Generator`` rather than NumPy's ``RandomState``:
the same seed gives other masks than fastMRI's, with the same probabilities. Counts are
rounded with Python's ``round`` (half to even), as fastMRI does, so the centre block is
``round(c W)`` columns (26 at W = 320, R = 4), not ssmri's fixed-count ``int(c W)`` (25).
"""

import math
from abc import abstractmethod

import torch
from torch import Tensor

from ssmri.physics.mask_law import CartesianMaskLaw


def fastmri_center_columns(width: int, num_center: int) -> Tensor:
    """fastMRI's centre block: ``num_center`` columns from ``(W - n_c + 1) // 2``."""
    start = (width - num_center + 1) // 2
    return torch.arange(start, start + num_center)


class FastMRIRandomMaskLaw(CartesianMaskLaw):
    r"""fastMRI ``RandomMaskFunc``: the centre block, and every other column by a coin flip.

    The centre is :math:`n_c = \mathrm{round}(c W)` columns; each other column is acquired
    independently with probability

    .. math::
        p = \frac{W / R - n_c}{W - n_c} \quad (\text{clipped to } [0, 1]),

    so a mask has :math:`n_c + \mathrm{Binomial}(W - n_c, p)` columns: ``W / R`` on average,
    with standard deviation 6.6 at W = 320, R = 4 (the count is not fixed).

    Args:
        image_size, acceleration, center_fraction: as :class:`CartesianMaskLaw`.
    """

    def __init__(self, image_size, acceleration: float, center_fraction: float | None = None):
        super().__init__(image_size, acceleration, center_fraction)
        self.num_center = round(self.width * self.center_fraction)
        self.center_columns = fastmri_center_columns(self.width, self.num_center)
        num_outer = self.width - self.num_center
        wanted = self.width / self.acceleration - self.num_center
        self.outer_probability = min(max(wanted / num_outer, 0.0), 1.0) if num_outer else 0.0

    def sample_columns(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        uniform = torch.rand(batch_size, self.width, generator=rng, dtype=torch.float64)
        columns = uniform < self.outer_probability
        columns[:, self.center_columns] = True
        return columns

    def column_probability(self) -> Tensor:
        probability = torch.full((self.width,), self.outer_probability, dtype=torch.float64)
        probability[self.center_columns] = 1.0
        return probability


class OffsetMaskLaw(CartesianMaskLaw):
    """Base class of the laws that pick one of a few fixed masks, all equally likely.

    fastMRI's equispaced laws draw one offset uniformly from ``{0, ..., K - 1}``; a mask is
    a function of its offset. A subclass sets ``masks_by_offset``, ``(K, W)`` boolean, in its
    constructor; sampling indexes it and the exact column probability is its mean.
    """

    masks_by_offset: Tensor

    @abstractmethod
    def offset_columns(self, offset: int) -> Tensor:
        """Indices of the columns this offset's pattern acquires (some may lie in the centre block)."""

    def _tabulate(self, num_offsets: int) -> Tensor:
        masks = torch.zeros(num_offsets, self.width, dtype=torch.bool)
        masks[:, self.center_columns] = True
        for offset, mask in enumerate(masks):
            mask[self.offset_columns(offset)] = True
        return masks

    def sample_columns(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        offsets = torch.randint(len(self.masks_by_offset), (batch_size,), generator=rng)
        return self.masks_by_offset[offsets]

    def column_probability(self) -> Tensor:
        return self.masks_by_offset.double().mean(0)


class FastMRIEquispacedFractionMaskLaw(OffsetMaskLaw):
    r"""fastMRI ``EquispacedMaskFractionFunc``: columns ``round(o + i a)`` and the centre block.

    With :math:`n_c = \mathrm{round}(c W)` centre columns, the spacing

    .. math::
        a = \frac{R (n_c - W)}{n_c R - W}

    makes about ``W / R`` columns in all; the offset ``o`` is uniform in
    ``{0, ..., round(a) - 1}``, and columns ``round(o + i a)`` (half to even) for every ``i``
    with ``o + i a < W - 1`` are acquired, some of them inside the centre block (so the count
    varies a little with ``o``).

    Args:
        image_size, acceleration, center_fraction: as :class:`CartesianMaskLaw`;
            ``round(c W)`` must be below ``W / R``.
    """

    def __init__(self, image_size, acceleration: float, center_fraction: float | None = None):
        super().__init__(image_size, acceleration, center_fraction)
        width, acceleration = self.width, self.acceleration
        self.num_center = round(width * self.center_fraction)
        if self.num_center * acceleration >= width:
            raise ValueError(
                f"fastmri_equispaced_fraction needs fewer than W/R = {width / acceleration:g} centre "
                f"columns, got round(center_fraction * W) = {self.num_center} (W={width}); lower "
                f"physics.center_fraction or physics.acceleration"
            )
        self.center_columns = fastmri_center_columns(width, self.num_center)
        self.spacing = (acceleration * (self.num_center - width)) / (self.num_center * acceleration - width)
        self.masks_by_offset = self._tabulate(round(self.spacing))

    def offset_columns(self, offset: int) -> Tensor:
        # NumPy's arange(o, W - 1, a) in float64: ceil((W - 1 - o) / a) values o + i d with
        # d = (o + a) - o; the same arithmetic, so that a tie rounds the same way as fastMRI's.
        count = max(math.ceil((self.width - 1 - offset) / self.spacing), 0)
        step = (offset + self.spacing) - offset
        return torch.round(offset + step * torch.arange(count, dtype=torch.float64)).long()


class FastMRIMagicFractionMaskLaw(OffsetMaskLaw):
    r"""fastMRI ``MagicMaskFractionFunc``: equispaced columns offset between the two half-planes.

    Offset sampling (A. Defazio, "Offset Sampling Improves Deep Learning based Accelerated MRI
    Reconstructions by Exploiting Symmetry", arXiv:1912.01101, 2019): the negative frequencies
    are sampled on a grid shifted from the positive ones', so that conjugate symmetry brings
    what a plain equispaced mask would acquire twice. With ``n = round(W / R)`` target
    columns, a centre of ``n_c = round(c W)`` columns clamped to ``[1, n]``, the spacing
    ``a = round(W / (n - n_c))`` and an offset ``o`` uniform in ``{0, ..., a - 1}``, the
    frequencies ``k = o⁺ + i a`` (``0 <= k < ceil(W / 2)``) and ``k = -(1 + o⁻ + i a)``
    (``k >= -floor(W / 2)``) are acquired, with ``(o⁺, o⁻) = (o + 1, o + 2)`` for even ``o`` and
    ``(o + 2, o - 1)`` for odd ``o``; frequency ``k`` is column ``W // 2 + k``.

    Args:
        image_size, acceleration, center_fraction: as :class:`CartesianMaskLaw`; the centre
            must leave columns to place (``n_c < n``).
    """

    def __init__(self, image_size, acceleration: float, center_fraction: float | None = None):
        super().__init__(image_size, acceleration, center_fraction)
        width = self.width
        target = round(width / self.acceleration)
        self.num_center = max(min(round(width * self.center_fraction), target), 1)
        if target <= self.num_center:
            raise ValueError(
                f"fastmri_magic_fraction has no columns left outside its {self.num_center}-column "
                f"centre: round(W/R) = {target} (W={width}, R={self.acceleration:g}); lower "
                f"physics.acceleration or physics.center_fraction"
            )
        self.center_columns = fastmri_center_columns(width, self.num_center)
        self.spacing = round(width / (target - self.num_center))
        self.masks_by_offset = self._tabulate(self.spacing)

    def offset_columns(self, offset: int) -> Tensor:
        # Even and odd offsets shift the two half-planes differently (fastMRI's MagicMaskFunc).
        if offset % 2 == 0:
            positive_start, negative_start = offset + 1, offset + 2
        else:
            positive_start, negative_start = offset + 2, offset - 1
        # A start past the end selects nothing, as a NumPy slice does (torch.arange would raise).
        positive = torch.arange(positive_start, max(positive_start, (self.width + 1) // 2), self.spacing)
        negative = torch.arange(negative_start, max(negative_start, self.width // 2), self.spacing)
        return torch.cat([self.width // 2 + positive, self.width // 2 - 1 - negative])
