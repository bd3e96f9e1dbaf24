"""What every data source gives the k-space cache: ground truth per split, a few slices at a time.

A source lists the keys of a split's slices (:meth:`DataSource.keys`, cheap: no pixels) and
loads any run of them (:meth:`DataSource.load`). The cache builder walks the keys in chunks,
so memory is bounded by the chunk, not by the data set.

- An :class:`ImageSource` loads ground-truth images ``(N, 2, H, W)``; the physics simulates
  their measurements.
- A measured source (raw k-space) loads :class:`MeasuredSlices`. Retrospective: fully
  sampled k-space, coil maps and the target; the physics draws the masks. Acquired
  (prospectively undersampled scans: fastMRI's test layout, ISMRMRD, Siemens twix): the
  k-space as acquired with its own mask, maps from the acquired centre, and no target.

A source says which with two flags read before any pixel: :attr:`DataSource.ground_truth`
(it serves a target) and :attr:`DataSource.acquired` (its slices carry their own masks).
Prediction walks every slice of every volume, no split: :meth:`DataSource.volumes`,
:meth:`DataSource.volume_keys` and :meth:`DataSource.voxel_size`.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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


def take(chosen: list, count: int | None, split: str, what: str) -> list:
    """The first ``count`` of ``chosen`` (all if None), refusing more than there are."""
    if count is None:
        return chosen
    if count > len(chosen):
        raise ValueError(
            f"data.num_{split}={count} but {what} give only {len(chosen)} {split} slices; "
            f"lower data.num_{split}"
        )
    return chosen[:count]


@dataclass
class MeasuredSlices:
    """Slices of measured k-space: what a measured source gives instead of images.

    Attributes:
        kspace: ``(N, C, 2, H, W)`` k-space of each coil (``(N, 2, H, W)`` single-coil): fully
            sampled (retrospective), or as acquired, zero off ``mask``.
        maps: ``(N, C, 2, H, W)`` coil sensitivity maps (ESPIRiT on the acquired centre), or
            ``None`` for single-coil data.
        target: ``(N, 2, H, W)`` the coil-combined image ``Sᴴ Fᴴ kspace``; ``None`` where no
            fully sampled reference exists (acquired data).
        mask: ``(N, W)`` uint8 0/1 columns each slice was acquired with; ``None`` for fully
            sampled k-space, whose masks the physics draws.
        scale: ``(N,)`` the factor each slice's k-space was divided by (to undo it on a
            reconstruction), or ``None``.
    """

    kspace: Tensor
    maps: Tensor | None
    target: Tensor | None = None
    mask: Tensor | None = None
    scale: Tensor | None = None

    def __post_init__(self):
        count, width = len(self.kspace), self.kspace.shape[-1]
        if self.target is not None and len(self.target) != count:
            raise ValueError(f"MeasuredSlices: {len(self.target)} targets for {count} slices of k-space")
        if self.mask is not None and tuple(self.mask.shape) != (count, width):
            raise ValueError(
                f"MeasuredSlices: mask {tuple(self.mask.shape)} does not match k-space "
                f"{tuple(self.kspace.shape)}; expected ({count}, {width})"
            )

    @property
    def has_target(self) -> bool:
        return self.target is not None

    @property
    def acquired(self) -> bool:
        """The k-space is as acquired (zero off ``mask``), not fully sampled."""
        return self.mask is not None

    def __len__(self) -> int:
        return len(self.kspace)


class DataSource(ABC):
    """A data set with fixed train/val/test splits, read a run of slices at a time.

    To add one, implement :meth:`keys` (which slices a split holds, in order, without reading
    pixels), :meth:`load` (the slices of a run of keys) and :meth:`describe` (everything the
    data depend on, for the cache key).
    """

    image_size: int
    #: The source serves a ground-truth target; ``False`` for acquired data, where no metric
    #: against a reference can be computed (a property where it depends on the files).
    ground_truth: bool = True
    #: The slices carry the masks they were acquired with (:attr:`MeasuredSlices.mask`); the
    #: physics then draws none.
    acquired: bool = False

    @abstractmethod
    def keys(self, split: str, count: int | None) -> list:
        """The keys of ``count`` slices of ``split`` (all if None), in cache order."""

    @abstractmethod
    def load(self, keys: Sequence) -> Tensor | MeasuredSlices:
        """The slices of ``keys``: images ``(N, 2, H, W)`` or :class:`MeasuredSlices`."""

    @abstractmethod
    def describe(self) -> dict:
        """Everything that determines the data, for the cache key (JSON-serialisable)."""

    def chunks(self, split: str, count: int | None, chunk_size: int) -> Iterator[Tensor | MeasuredSlices]:
        """The slices of ``split`` in runs of at most ``chunk_size``; memory stays bounded."""
        if chunk_size < 1:
            raise ValueError(f"data.chunk_size must be >= 1, got {chunk_size}")
        keys = self.keys(split, count)
        for start in range(0, len(keys), chunk_size):
            yield self.load(keys[start : start + chunk_size])

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

    # -- prediction: every slice of every volume, no split ----------------------------------
    def volumes(self) -> list[str]:
        """The name of every volume (file) the source reads, in order, whatever its split."""
        raise NotImplementedError(f"{type(self).__name__} has no volumes to predict")

    def volume_keys(self, volume: int) -> list:
        """The keys of every slice of volume number ``volume``, in slice order, for :meth:`load`."""
        raise NotImplementedError(f"{type(self).__name__} has no volumes to predict")

    def voxel_size(self, volume: int) -> tuple[float, float, float] | None:
        """``(H, W, slice)`` voxel size in mm of the served slices, where the file says it."""
        return None

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


class ImageSource(DataSource):
    """A data set of complex ground-truth images ``(2, H, W)``; the physics simulates k-space."""

    def images(self, split: str, count: int | None) -> Tensor:
        """All ``(N, 2, H, W)`` float32 images of ``split`` at once (small sets, tests)."""
        return self.load(self.keys(split, count))
