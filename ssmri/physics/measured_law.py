"""The mask law of acquired scans, estimated from their own masks (no law was simulated).

Losses that draw fresh masks (MOI, MO-EI, MoC-SSDU) and Weighted-SSDU's probabilities need the
acquisition's law. For prospectively undersampled data it is unknown; its empirical estimate
is the set of masks the data were acquired with: a draw picks one of them uniformly, so each
column's probability is exactly the fraction of masks that sample it.
"""

import hashlib

import torch
from torch import Tensor


class MeasuredMaskLaw:
    """Draws one of the data's own ``(N, W)`` column masks; the same interface as
    :class:`~ssmri.physics.masks.CartesianMaskLaw`.

    Args:
        columns: ``(N, W)`` 0/1 acquired columns (e.g. every training slice's mask).
        height: ``H`` of the masks :meth:`sample` returns.
    """

    def __init__(self, columns: Tensor, height: int):
        columns = torch.as_tensor(columns).bool()
        if columns.dim() != 2 or len(columns) == 0 or not columns.any(dim=1).all():
            raise ValueError(
                f"the estimated mask law needs (N >= 1, W) masks that each sample a column, got "
                f"{tuple(columns.shape)}"
            )
        self.columns = columns
        self.height, self.width = int(height), columns.shape[1]
        counts = columns.sum(dim=1).double()
        self.num_columns = int(counts.mean().round())
        self.acceleration = float(self.width / counts.mean())
        always = columns.all(dim=0)
        centre, first, last = self.width // 2, self.width // 2, self.width // 2
        if always[centre]:
            while first > 0 and always[first - 1]:
                first -= 1
            while last + 1 < self.width and always[last + 1]:
                last += 1
            self.center_columns = torch.arange(first, last + 1)
        else:
            self.center_columns = torch.zeros(0, dtype=torch.long)
        self.num_center = len(self.center_columns)
        self.center_fraction = self.num_center / self.width
        self.distinct = len(torch.unique(columns, dim=0))
        self._digest = hashlib.sha256(columns.to(torch.uint8).numpy().tobytes()).hexdigest()[:12]

    @property
    def image_size(self) -> tuple[int, int]:
        return self.height, self.width

    def sample_columns(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, W)`` boolean column masks, each one of the data's masks drawn uniformly."""
        picks = torch.randint(len(self.columns), (batch_size,), generator=rng)
        return self.columns[picks].clone()

    def sample(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 1, H, W)`` float 0/1 masks, constant along H."""
        columns = self.sample_columns(batch_size, rng).float()
        return columns[:, None, None, :].expand(batch_size, 1, self.height, self.width).clone()

    def column_probability(self) -> Tensor:
        """``(W,)`` float64 fraction of the data's masks that sample each column."""
        return self.columns.double().mean(dim=0)

    def __repr__(self) -> str:
        return (
            f"MeasuredMaskLaw({len(self.columns)} masks, {self.distinct} distinct, W={self.width}, "
            f"R={self.acceleration:.3g}, centre {self.num_center}, {self._digest})"
        )


__all__ = ["MeasuredMaskLaw"]
