"""Raw scans read from vendor or vendor-neutral files (ISMRMRD, Siemens twix): acquired, no target.

A format only has to turn one file into a :class:`RawVolume` (its lines placed in k-space,
its mask, its readout length without oversampling); :class:`ScanFiles` does the rest on the
source/cache design: the split by file, the slices, the maps from the acquired centre.
"""

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssmri.data.acquired import prepare_acquired
from ssmri.data.fastmri import VolumeFiles, by_volume, existing
from ssmri.data.fastmri_multicoil import espirit_settings
from ssmri.data.sources import DataSource, MeasuredSlices, check_image_size
from ssmri.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class RawVolume:
    """One file's slices, lines in place, readout along ``H`` and phase encoding along ``W``.

    Attributes:
        kspace: ``(S, C, H, W)`` complex64, repeated lines averaged, zero off ``mask``;
            ``H`` still holds the readout oversampling.
        mask: ``(S, W)`` bool, the lines acquired in each slice.
        rows: readout length without oversampling (``H`` over the oversampling factor).
        voxel_size: ``(readout, phase, slice)`` mm at the full matrix ``rows x W``, or None.
        calibration_lines: lines flagged as parallel-imaging calibration (logged).
    """

    kspace: np.ndarray
    mask: np.ndarray
    rows: int
    voxel_size: tuple[float, float, float] | None = None
    calibration_lines: int = 0


class ScanFiles(VolumeFiles, DataSource):
    """Acquired scans of one format from a file or a folder, split by file; no target.

    Subclasses set ``suffixes`` and ``source`` and implement :meth:`read_volume`.

    Args:
        root: one file, or a folder of them (sorted by name; the first ``train_fraction`` of
            the files train, the rest test).
        image_size: side of the central k-space block kept (at most the readout without
            oversampling and the number of phase-encoding lines).
        calib_width: ESPIRiT's calibration width, cut to the fully sampled central block.
        threshold, crop: ESPIRiT's thresholds (:func:`~ssmri.data.fastmri_multicoil.espirit_maps`).
        train_fraction, max_test, num_val: as for fastMRI folders.
        split: ``files`` (train, val and test on different files), or ``scan`` for scan-specific
            training: every split is every slice, so one scan (one file, even one slice) can be
            trained on; val and test then score the method's own objective on the training data.
    """

    acquired = True
    ground_truth = False
    suffixes: tuple[str, ...] = ()
    source = ""

    def __init__(
        self,
        root: str,
        image_size: int = 128,
        calib_width: int = 24,
        threshold: float = 0.02,
        crop: float = 0.95,
        train_fraction: float = 0.8,
        max_test: int | None = 50,
        num_val: int = 0,
        split: str = "files",
    ):
        self.root = existing(root, f"{self.source} file or folder", "data.images.root")
        self.files = (
            [self.root]
            if self.root.is_file()
            else sorted(path for path in self.root.iterdir() if path.suffix.lower() in self.suffixes)
        )
        if not self.files:
            raise FileNotFoundError(
                f"no {'/'.join(self.suffixes)} files in {self.root}; "
                f"point data.images.root at {self.source} scans"
            )
        self.image_size = check_image_size(image_size, smallest=8, largest=1024)
        # calib_width may exceed a scan's acquired block: it is cut to the block, per slice (logged).
        self.calib_width, self.threshold, self.crop = espirit_settings(calib_width, threshold, crop)
        self.set_split(train_fraction, max_test, num_val, split)
        self._forget()

    def _forget(self) -> None:
        self._counts: dict[int, int] = {}
        self._voxels: dict[int, tuple | None] = {}
        self._last: tuple[int, RawVolume] | None = None  # one parsed file kept: memory stays bounded

    @abstractmethod
    def read_volume(self, path: Path) -> RawVolume:
        """Parse one file; raise :class:`~ssmri.errors.DataError` naming it and the key."""

    def describe(self) -> dict:
        return {
            **self.split_description(),
            "source": self.source,
            "root": str(self.root),
            "files": [f.name for f in self.files],
            "bytes": sum(f.stat().st_size for f in self.files),
            "image_size": self.image_size,
            "calib_width": self.calib_width,
            "threshold": self.threshold,
            "crop": self.crop,
            "train_fraction": self.train_fraction,
            "max_test": self.max_test,
            "num_val": self.num_val,
        }

    def volume(self, number: int) -> RawVolume:
        """The parsed file ``number`` (the last one read is kept)."""
        if self._last is None or self._last[0] != number:
            path = self.files[number]
            raw = self.read_volume(path)
            rows, width = raw.rows, raw.kspace.shape[-1]
            if rows < self.image_size or width < self.image_size:
                raise DataError(
                    f"{path}: {rows} readout points x {width} lines is smaller than "
                    f"data.image_size={self.image_size}; lower data.image_size"
                )
            if raw.calibration_lines:
                log.info(
                    "%s: %d parallel-imaging calibration lines kept in k-space", path, raw.calibration_lines
                )
            self._counts[number] = len(raw.kspace)
            self._voxels[number] = (raw.voxel_size, rows, width)
            self._last = (number, raw)
        return self._last[1]

    def slices_per_file(self) -> list[int]:
        return [
            self._counts[v] if v in self._counts else len(self.volume(v).kspace)
            for v in range(len(self.files))
        ]

    def voxel_size(self, volume: int) -> tuple[float, float, float] | None:
        if volume not in self._voxels:
            self.volume(volume)
        full, raw_rows, raw_width = self._voxels[volume]
        if full is None:
            return None
        # The central k-space block keeps the field of view: the pixels grow by matrix / image_size.
        return (full[0] * raw_rows / self.image_size, full[1] * raw_width / self.image_size, full[2])

    def load(self, keys: Sequence) -> MeasuredSlices:
        parts = []
        for volume, numbers in by_volume(keys):
            raw = self.volume(volume)
            for number in numbers:
                parts.append(
                    prepare_acquired(
                        torch.from_numpy(raw.kspace[number]),
                        torch.from_numpy(raw.mask[number]),
                        self.image_size,
                        raw.rows,
                        self.calib_width,
                        self.threshold,
                        self.crop,
                        f"{self.files[volume]} slice {number}",
                    )
                )
        kspace, maps, masks, scale = (torch.stack(column) for column in zip(*parts))
        return MeasuredSlices(kspace, maps, None, masks, scale)


def place_lines(
    slices: int,
    coils: int,
    samples: int,
    width: int,
    lines: list[tuple[int, int, np.ndarray]],
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``(slice, column, data (C, samples))`` lines -> ``(S, C, samples, W)`` k-space (repeats
    averaged) and the ``(S, W)`` mask of columns acquired."""
    total = np.zeros((slices, coils, samples, width), dtype=np.complex128)
    count = np.zeros((slices, width), dtype=np.int64)
    for number, column, data in lines:
        if not (0 <= number < slices and 0 <= column < width):
            raise DataError(
                f"{where}: a line lands at slice {number}, column {column}, outside the "
                f"{slices} x {width} encoding the header declares"
            )
        if data.shape != (coils, samples):
            raise DataError(f"{where}: a line holds {data.shape} samples, expected {(coils, samples)}")
        total[number, :, :, column] += data
        count[number, column] += 1
    mask = count > 0
    kspace = (total / np.maximum(count, 1)[:, None, None, :]).astype(np.complex64)
    return kspace, mask


__all__ = ["RawVolume", "ScanFiles", "place_lines"]
