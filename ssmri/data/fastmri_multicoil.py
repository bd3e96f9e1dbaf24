"""Raw fastMRI multi-coil volumes: the measured coil k-space, its ESPIRiT maps and the combined image.

Files hold ``kspace`` ``(slices, coils, H, W)`` complex64 with ``H`` the readout, acquired with
2x oversampling (fastMRI's layout; ``reconstruction_rss`` and attributes are not used: the
target is recomputed at our resolution from the same k-space). Per slice:

1. readout oversampling removed in image space: inverse FFT along ``H``, keep the central
   ``H // 2`` rows, FFT back (as fastMRI's own reconstructions do);
2. the central ``image_size x image_size`` block of k-space is kept: a physical low-pass at
   the full field of view, never an image resize of coil data;
3. coil sensitivity maps ``S`` by ESPIRiT (Uecker et al., MRM 2014) from the fully sampled
   centre, with sigpy's ``EspiritCalib``;
4. target ``x = Sᴴ Fᴴ y``, the coil-combined complex image; k-space and target are scaled
   together so that the target's largest magnitude is 1.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ssmri.data.fastmri import FastMRIFolder, by_volume, existing, open_h5, volume_files
from ssmri.data.sources import DataSource, MeasuredSlices, check_image_size
from ssmri.errors import DataError
from ssmri.physics.fft import ifft2c, to_channels, to_complex


def centred_fft_1d(z: torch.Tensor, dim: int, inverse: bool = False) -> torch.Tensor:
    """Centred orthonormal (inverse) FFT of complex ``z`` along ``dim``."""
    transform = torch.fft.ifft if inverse else torch.fft.fft
    z = torch.fft.ifftshift(z, dim=dim)
    return torch.fft.fftshift(transform(z, dim=dim, norm="ortho"), dim=dim)


def remove_readout_oversampling(kspace: torch.Tensor) -> torch.Tensor:
    """``(..., H, W)`` complex k-space with 2x readout (H) oversampling -> ``(..., H // 2, W)``."""
    height = kspace.shape[-2]
    lines = centred_fft_1d(kspace, dim=-2, inverse=True)
    top = (height - height // 2) // 2
    return centred_fft_1d(lines[..., top : top + height // 2, :], dim=-2)


def central_crop(array: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` block of the last two dimensions."""
    height, width = array.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return array[..., top : top + size, left : left + size]


def espirit_maps(kspace: torch.Tensor, calib_width: int, threshold: float, crop: float) -> torch.Tensor:
    """ESPIRiT sensitivity maps ``(C, H, W)`` complex of fully sampled ``(C, H, W)`` k-space.

    sigpy's ``EspiritCalib`` (Uecker et al., "ESPIRiT - an eigenvalue approach to autocalibrating
    parallel MRI", MRM 71(3), 2014): the maps are the eigenvectors of eigenvalue ~1 of the
    calibration operator built from the central ``calib_width`` lines; pixels whose eigenvalue
    falls below ``crop`` (outside the object) get zero maps, elsewhere ``Σ_c |S_c|² = 1``.
    """
    try:
        from sigpy.mri.app import EspiritCalib
    except ImportError as error:  # a dependency of ssmri; only a broken install lacks it
        raise ImportError(
            "data=fastmri_multicoil estimates coil maps with sigpy's ESPIRiT; `pip install sigpy`"
        ) from error
    data = kspace.numpy().astype(np.complex64)
    maps = EspiritCalib(data, calib_width=calib_width, thresh=threshold, crop=crop, show_pbar=False).run()
    return torch.from_numpy(np.asarray(maps, dtype=np.complex64))


def check_coil_kspace(kspace: np.ndarray, where: str) -> None:
    """Refuse a slice's coil k-space that ESPIRiT cannot calibrate on: NaN/Inf values (its SVD
    fails) or no signal at all (maps and target would be 0/0), naming the file and slice."""
    finite = np.isfinite(kspace)
    if not finite.all():
        raise DataError(
            f"{where}: 'kspace' holds {int((~finite).sum())} NaN/Inf values; the file is damaged. "
            f"Remove it from data.images.root or replace it with an intact copy"
        )
    if not np.any(kspace):
        raise DataError(
            f"{where}: 'kspace' is all zero (no signal to estimate coil maps or a target from); "
            f"remove the file from data.images.root"
        )


def espirit_settings(calib_width: int, threshold: float, crop: float) -> tuple[int, float, float]:
    """``data.images.calib_width``, ``threshold`` and ``crop`` of ESPIRiT, validated where they enter."""
    if calib_width < 2:
        raise ValueError(f"data.images.calib_width={calib_width} must be >= 2")
    if not 0 < threshold < 1 or not 0 <= crop < 1:
        raise ValueError(
            f"data.images.threshold must lie in (0, 1) and data.images.crop in [0, 1), "
            f"got {threshold} and {crop}"
        )
    return int(calib_width), float(threshold), float(crop)


class FastMRIMultiCoilFiles(FastMRIFolder, DataSource):
    """Raw fastMRI multi-coil volumes (``*.h5``) from a user folder, split by volume.

    Serves :class:`MeasuredSlices`: the physics only draws the retrospective masks. The coil
    count comes from the files (all volumes must share it).

    Args:
        root: folder of ``.h5`` files (sorted by name; the first ``train_fraction`` of the
            volumes train, the rest test, so no volume is in two splits).
        image_size: side of the central k-space block kept (at most ``H // 2`` and ``W``).
        calib_width: fully sampled central lines ESPIRiT calibrates on (sigpy's default, 24).
        threshold: ESPIRiT's singular-value threshold of the calibration matrix (0.02).
        crop: ESPIRiT's eigenvalue threshold below which maps are zero (0.95).
        train_fraction, max_test, num_val: as in :func:`ssmri.data.fastmri.protocol_split`.
        split: ``files`` (volumes never straddle splits) or ``scan`` (scan-specific training on
            acquired volumes: every split is every slice).
    """

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
        self.root = existing(root, "fastMRI folder", "data.images.root")
        self.files = volume_files(self.root)
        self.image_size = check_image_size(image_size, smallest=8, largest=1024)
        if calib_width > self.image_size:  # retrospective files calibrate inside the kept square
            raise ValueError(
                f"data.images.calib_width={calib_width} must lie in [2, data.image_size={image_size}]"
            )
        self.calib_width, self.threshold, self.crop = espirit_settings(calib_width, threshold, crop)
        self.set_split(train_fraction, max_test, num_val, split)
        self._forget()

    def _forget(self) -> None:
        self._shapes: list[tuple[int, ...]] | None = None
        self._acquired_files: dict[Path, bool] = {}

    def describe(self) -> dict:
        return {
            "source": "fastmri_multicoil",
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
            **self.split_description(),
        }

    def shapes(self) -> list[tuple[int, ...]]:
        """``kspace`` shape of every volume, validated (reads no pixels)."""
        if self._shapes is None:
            self._shapes = [self._shape(path) for path in self.files]
            coils = {shape[1] for shape in self._shapes}
            if len(coils) > 1:
                raise ValueError(
                    f"the volumes in {self.root} have different coil counts {sorted(coils)}; "
                    f"keep volumes of one coil count in data.images.root"
                )
        return self._shapes

    def _shape(self, path: Path) -> tuple[int, ...]:
        with open_h5(path) as file:
            if "kspace" not in file:
                raise ValueError(f"{path}: no 'kspace' dataset (has {sorted(file)}); not a fastMRI file")
            kspace = file["kspace"]
            shape, dtype = tuple(kspace.shape), kspace.dtype
            # fastMRI's test/challenge layout: k-space zero off the columns of a (W,) 'mask'.
            self._acquired_files[path] = acquired_layout(file, path, shape)
        if len(shape) != 4:
            raise ValueError(
                f"{path}: 'kspace' has shape {shape}, expected (slices, coils, H, W) with a coil axis; "
                f"single-coil files are read by data=fastmri_h5"
            )
        if dtype.kind != "c":
            raise ValueError(f"{path}: 'kspace' has dtype {dtype}, expected complex k-space")
        if shape[2] // 2 < self.image_size or shape[3] < self.image_size:
            raise ValueError(
                f"{path}: 'kspace' of {shape[2]}x{shape[3]} (readout {shape[2] // 2} without "
                f"oversampling) is smaller than data.image_size={self.image_size}; lower it"
            )
        return shape

    def slices_per_file(self) -> list[int]:
        return [shape[0] for shape in self.shapes()]

    def load(self, keys: Sequence) -> MeasuredSlices:
        if self.acquired:
            return self._load_acquired(keys)
        slices = [
            self.prepare(torch.from_numpy(kspace))
            for volume, numbers in by_volume(keys)
            for kspace in self._read(volume, numbers)
        ]
        return MeasuredSlices(*(torch.stack(parts) for parts in zip(*slices)))

    def _read(self, volume: int, numbers: list[int]) -> np.ndarray:
        with open_h5(self.files[volume]) as file:
            kspace = file["kspace"][numbers]
        for number, slice_kspace in zip(numbers, kspace):
            check_coil_kspace(slice_kspace, f"{self.files[volume]} slice {number}")
        return kspace

    def _load_acquired(self, keys: Sequence) -> MeasuredSlices:
        # Imported here: ssmri.data.acquired builds on this module's FFT and ESPIRiT helpers.
        from ssmri.data.acquired import prepare_acquired

        parts = []
        for volume, numbers in by_volume(keys):
            path = self.files[volume]
            with open_h5(path) as file:
                kspace, mask = file["kspace"][numbers], torch.from_numpy(file["mask"][()])
            for number, slice_kspace in zip(numbers, kspace):
                parts.append(
                    prepare_acquired(
                        torch.from_numpy(slice_kspace),
                        mask,
                        self.image_size,
                        slice_kspace.shape[-2] // 2,
                        self.calib_width,
                        self.threshold,
                        self.crop,
                        f"{path} slice {number}",
                    )
                )
        kspace, maps, masks, scale = (torch.stack(column) for column in zip(*parts))
        return MeasuredSlices(kspace, maps, None, masks, scale)

    def prepare(self, kspace: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One slice ``(C, H, W)`` complex -> ``(kspace, maps, target)`` in channel form."""
        kspace = central_crop(remove_readout_oversampling(kspace.to(torch.complex64)), self.image_size)
        maps = espirit_maps(kspace, self.calib_width, self.threshold, self.crop)
        kspace, maps = to_channels(kspace), to_channels(maps)
        target = to_channels((to_complex(maps).conj() * to_complex(ifft2c(kspace))).sum(dim=0))
        scale = target.pow(2).sum(dim=0).sqrt().amax().clamp_min(1e-12)
        return kspace / scale, maps, target / scale


def acquired_layout(file, path: Path, shape: tuple[int, ...]) -> bool:
    """Whether an open fastMRI file is the test layout (a ``(W,)`` ``mask``, no reconstruction)."""
    if "mask" not in file:
        return False
    mask_shape = tuple(file["mask"].shape)
    if mask_shape != (shape[-1],):
        raise ValueError(
            f"{path}: 'mask' has shape {mask_shape} but 'kspace' {shape} has {shape[-1]} columns; "
            f"the test layout's mask is (W,) = ({shape[-1]},)"
        )
    return True


__all__ = ["FastMRIMultiCoilFiles", "central_crop", "espirit_maps", "remove_readout_oversampling"]
