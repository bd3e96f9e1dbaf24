"""What every image source gives the k-space cache: complex ground-truth images per split."""

from abc import ABC, abstractmethod

import torch
from torch import Tensor

SPLITS = ("train", "val", "test")


class MissingSample(ValueError):
    """A sample named in a splits file that the image source does not have."""

    def __init__(self, sample: dict, why: str):
        super().__init__(
            f"sample {sample} does not exist in this data source ({why}); data.splits_file must "
            f"come from a run on the same data source (same files, same template)"
        )


def check_image_size(image_size, smallest: int = 8, largest: int | None = None) -> int:
    """Validate a square image size where it enters; returns it as an int."""
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ValueError(f"data.image_size must be an integer, got {image_size!r}")
    if image_size < smallest or (largest is not None and image_size > largest):
        upper = f", {largest}]" if largest is not None else ", inf)"
        raise ValueError(
            f"data.image_size={image_size} is outside what this data set can give "
            f"[{smallest}{upper}; choose a size in that range, e.g. data.image_size=64"
        )
    return image_size


def normalise_magnitude(images: Tensor) -> Tensor:
    """Scale each ``(N, 2, H, W)`` complex image so that its largest magnitude is 1."""
    peak = images.pow(2).sum(dim=1).sqrt().amax(dim=(-2, -1)).clamp_min(1e-12)
    return images / peak[:, None, None, None]


def magnitude_to_complex(slices: Tensor) -> Tensor:
    """``(N, H, W)`` magnitudes -> ``(N, 2, H, W)`` complex with zero imaginary part, max 1."""
    images = torch.stack((slices.float(), torch.zeros_like(slices, dtype=torch.float32)), dim=1)
    return normalise_magnitude(images)


class ImageSource(ABC):
    """A data set of complex images ``(2, H, W)`` with fixed train/val/test splits."""

    image_size: int

    @abstractmethod
    def images(self, split: str, count: int | None) -> Tensor:
        """``(N, 2, H, W)`` float32 images of ``split``; ``count`` of them, or all if None."""

    @abstractmethod
    def describe(self) -> dict:
        """Everything that determines the images, for the cache key (JSON-serialisable)."""

    def sample_ids(self, split: str, count: int | None) -> list[dict]:
        """The identity of each image ``images(split, count)`` returns, in the same order.

        Each is a small JSON-able dict (file and slice, orientation and slice, seed and index)
        with a ``volume`` key: the group a slice belongs to (metrics.convention=fastmri).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot name its samples")

    def images_for(self, ids: list[dict]) -> Tensor:
        """``(N, 2, H, W)`` the images named by ``ids`` (from :meth:`sample_ids`, e.g. a
        ``splits.json``); raises :class:`MissingSample` for one this source does not have."""
        raise NotImplementedError(f"{type(self).__name__} cannot load samples by name")

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
