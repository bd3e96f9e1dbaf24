"""What every Cartesian mask law offers: fresh column masks from an rng and their exact probability.

The laws themselves are in ``masks.py`` (ssmri's fixed-count laws) and ``fastmri_masks.py``
(fastMRI 0.3.0's laws); :func:`ssmri.physics.masks.make_mask_law` builds one by name.
"""

from abc import ABC, abstractmethod

import torch
from torch import Tensor


def check_image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = (int(s) for s in image_size)
    if height < 2 or width < 2:
        raise ValueError(f"image_size must be at least 2x2, got {image_size}")
    return height, width


class CartesianMaskLaw(ABC):
    """Base class of the laws of ``(B, 1, H, W)`` masks that acquire whole columns (along W).

    A subclass draws ``(B, W)`` column masks (:meth:`sample_columns`, one fresh draw per sample
    from a ``torch.Generator``) and knows the exact probability that each column is acquired
    (:meth:`column_probability`), which Weighted-SSDU, MOI and ENSURE need; it sets
    ``center_columns``, the always-acquired block.

    Args:
        image_size: ``(H, W)`` or an int for square images.
        acceleration: ``R``, ``1 <= R <= W``; what it means for the column count is the law's.
        center_fraction: fraction ``c`` of the columns in the always-sampled centre block;
            ``None`` means 0.08 for ``R < 8`` and 0.04 otherwise (fastMRI's pairs).
    """

    center_columns: Tensor

    def __init__(self, image_size, acceleration: float, center_fraction: float | None = None):
        self.height, self.width = check_image_size(image_size)
        acceleration = float(acceleration)
        if not 1 <= acceleration <= self.width:
            raise ValueError(
                f"acceleration must lie in [1, W={self.width}] (W/R columns are sampled), "
                f"got {acceleration}; set physics.acceleration to e.g. 4"
            )
        if center_fraction is None:
            center_fraction = 0.08 if acceleration < 8 else 0.04
        if not 0 <= center_fraction <= 1:
            raise ValueError(f"center_fraction must lie in [0, 1], got {center_fraction}")
        self.acceleration = acceleration
        self.center_fraction = float(center_fraction)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.height, self.width

    @abstractmethod
    def sample_columns(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, W)`` boolean column masks, a fresh draw per sample."""

    @abstractmethod
    def column_probability(self) -> Tensor:
        """``(W,)`` float64 exact probability that each column is sampled in one draw."""

    def sample(self, batch_size: int, rng: torch.Generator | None = None) -> Tensor:
        """``(B, 1, H, W)`` float 0/1 masks, constant along H."""
        columns = self.sample_columns(batch_size, rng).float()
        return columns[:, None, None, :].expand(batch_size, 1, self.height, self.width).clone()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, "
            f"acceleration={self.acceleration:g}, center_fraction={self.center_fraction:g})"
        )
