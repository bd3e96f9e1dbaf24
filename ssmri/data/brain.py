"""Real anatomy without a download: 2-D slices of the MNI152 T1 template shipped in nilearn's wheel.

The NIfTI file is package data of ``nilearn`` (``nilearn/datasets/data``); we locate it without
importing nilearn (which would import scikit-learn) and read it with nibabel.
"""

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ssmri.data.sources import (
    SPLITS,
    ImageSource,
    MissingSample,
    check_image_size,
    magnitude_to_complex,
)

TEMPLATE_NAME = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
ORIENTATIONS = {"sagittal": 0, "coronal": 1, "axial": 2}


def template_path() -> Path:
    """Where the installed nilearn wheel keeps the MNI152 T1 template."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "data=brain reads the MNI152 template shipped with the nilearn wheel, but nilearn is "
            "not installed; run `pip install nilearn` (or `make setup`) or pass data.images.path"
        )
    return Path(spec.origin).parent / "datasets" / "data" / TEMPLATE_NAME


def guarded_block_split(indices: list[int], blocks: dict[str, int], guard: int) -> dict[str, list]:
    """Assign consecutive slice indices to splits in repeating blocks separated by guard gaps.

    The cycle is ``train block, guard, val block, guard, test block, guard``; guard slices are
    dropped, so no val/test slice lies within ``guard`` slices of a training slice.
    """
    pattern: list[str | None] = []
    for split in SPLITS:
        pattern += [split] * blocks[split] + [None] * guard
    assignment: dict[str, list] = {split: [] for split in SPLITS}
    for position, index in enumerate(indices):
        split = pattern[position % len(pattern)]
        if split is not None:
            assignment[split].append(index)
    return assignment


class BrainTemplateSlices(ImageSource):
    """Axial, coronal and sagittal slices of the MNI152 T1 template (197x233x189, 1 mm).

    Slices with less than ``min_brain_fraction`` of their pixels inside the head are skipped.
    Each slice is zero-padded to a square, resized to ``image_size`` (area-averaging when
    shrinking) and normalised per slice to max 1; the imaginary part is zero. Splits come in
    blocks along each orientation with ``guard`` dropped slices between a training block and
    a val/test block, so no val or test slice lies within ``guard`` slices of a training slice
    of the same orientation.

    Args:
        image_size: side of the square slices, at most 256.
        orientations: any of ``sagittal``, ``coronal``, ``axial``.
        guard: slices dropped between splits.
        blocks: slices per block of each split in the repeating cycle.
        min_brain_fraction: minimum fraction of head pixels for a slice to be used.
        path: a NIfTI volume to use instead of the packaged template.
    """

    def __init__(
        self,
        image_size: int = 64,
        orientations=("axial", "coronal", "sagittal"),
        guard: int = 5,
        blocks: dict | None = None,
        min_brain_fraction: float = 0.15,
        path: str | None = None,
    ):
        self.image_size = check_image_size(image_size, smallest=8, largest=256)
        unknown = set(orientations) - set(ORIENTATIONS)
        if unknown or not orientations:
            raise ValueError(
                f"unknown orientations {sorted(unknown) or '[]'}; choose from {list(ORIENTATIONS)}"
            )
        self.orientations = tuple(orientations)
        if guard < 0:
            raise ValueError(f"guard must be >= 0 slices, got {guard}")
        self.guard = int(guard)
        self.blocks = dict(blocks or {"train": 24, "val": 3, "test": 4})
        if set(self.blocks) != set(SPLITS) or min(self.blocks.values()) < 1:
            raise ValueError(f"blocks needs a positive size for each of {SPLITS}, got {blocks}")
        self.min_brain_fraction = float(min_brain_fraction)
        self.path = Path(path).expanduser() if path is not None else template_path()
        if not self.path.is_file():
            raise FileNotFoundError(
                f"brain volume {str(self.path)!r} does not exist; pass an existing NIfTI file as "
                f"data.images.path, or leave it unset to use the template shipped with nilearn"
            )
        self._slices: dict[str, list[tuple[str, int]]] | None = None
        self._volume: np.ndarray | None = None

    def describe(self) -> dict:
        return {
            "source": "brain",
            "file": self.path.name,
            "file_bytes": self.path.stat().st_size,
            "image_size": self.image_size,
            "orientations": list(self.orientations),
            "guard": self.guard,
            "blocks": self.blocks,
            "min_brain_fraction": self.min_brain_fraction,
        }

    def volume(self) -> np.ndarray:
        if self._volume is None:
            import nibabel

            try:
                data = np.asarray(nibabel.load(str(self.path)).dataobj, dtype=np.float32)
            except Exception as error:
                raise ValueError(f"cannot read {self.path} as a NIfTI volume: {error}") from error
            if data.ndim != 3:
                raise ValueError(f"{self.path} holds a {data.ndim}-D array; expected a 3-D volume")
            self._volume = data
        return self._volume

    def slice_index(self) -> dict[str, list[tuple[str, int]]]:
        """``split -> [(orientation, slice number), ...]``."""
        if self._slices is None:
            volume = self.volume()
            head = volume > 0.05 * volume.max()
            assignment: dict[str, list] = {split: [] for split in SPLITS}
            for orientation in self.orientations:
                axis = ORIENTATIONS[orientation]
                fraction = head.mean(axis=tuple(a for a in range(3) if a != axis))
                kept = [int(i) for i in np.nonzero(fraction >= self.min_brain_fraction)[0]]
                for split, indices in guarded_block_split(kept, self.blocks, self.guard).items():
                    assignment[split] += [(orientation, i) for i in indices]
            self._slices = assignment
        return self._slices

    def keys(self, split: str, count: int | None) -> list[tuple[str, int]]:
        """``(orientation, slice number)`` of the split's slices."""
        self._check_split(split)
        chosen = self.slice_index()[split]
        if count is not None:
            if count > len(chosen):
                raise ValueError(
                    f"data.num_{split}={count} but the brain template has only {len(chosen)} "
                    f"{split} slices with these settings; lower data.num_{split}"
                )
            # Spread the subset over the whole split rather than taking its first slices.
            picks = np.linspace(0, len(chosen) - 1, count).round().astype(int)
            chosen = [chosen[i] for i in picks]
        return chosen

    def load(self, keys) -> Tensor:
        return magnitude_to_complex(torch.stack([self._slice(*key) for key in keys]))

    def sample_ids(self, split: str, count: int | None) -> list[dict]:
        self._check_split(split)
        chosen = self.slice_index()[split]
        if count is not None:
            chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, count).round().astype(int)]
        # The template is one volume; each orientation's slices are the natural volume.
        return [{"file": self.path.name, "orientation": o, "slice": n, "volume": o} for o, n in chosen]

    def images_for(self, ids: list[dict]) -> Tensor:
        for sample in ids:
            orientation, number = sample.get("orientation"), sample.get("slice")
            if sample.get("file", self.path.name) != self.path.name:
                raise MissingSample(sample, f"this source reads {self.path.name}")
            if orientation not in ORIENTATIONS:
                raise MissingSample(sample, f"orientation must be one of {list(ORIENTATIONS)}")
            size = self.volume().shape[ORIENTATIONS[orientation]]
            if not isinstance(number, int) or not 0 <= number < size:
                raise MissingSample(sample, f"{orientation} slices are numbered 0..{size - 1}")
        return magnitude_to_complex(torch.stack([self._slice(s["orientation"], s["slice"]) for s in ids]))

    def _slice(self, orientation: str, number: int) -> Tensor:
        image = torch.from_numpy(np.take(self.volume(), number, axis=ORIENTATIONS[orientation]))
        image = torch.rot90(image, 1)  # radiological display: superior/anterior up
        height, width = image.shape
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        image = F.pad(image, (left, side - width - left, top, side - height - top))
        mode = "area" if self.image_size < side else "bilinear"
        image = F.interpolate(image[None, None], size=(self.image_size,) * 2, mode=mode)
        return image[0, 0].clamp_min(0)
