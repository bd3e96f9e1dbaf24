"""fastMRI data from files a user already has: never downloaded, validated on entry.

- :class:`FastMRISliceTensor` reads the tutorial's file: a torch tensor ``(N, H, W)`` of
  magnitude slices normalised per slice (DeepInverse's ``SimpleFastMRISliceDataset`` format).
- :class:`FastMRISingleCoilFiles` reads raw fastMRI single-coil HDF5 volumes (``kspace``,
  ``reconstruction_esc``/``reconstruction_rss``; ``ismrmrd_header`` ignored), or fastMRI's
  test/challenge layout (``kspace`` zero off the columns of a ``(W,)`` ``mask``, no target).
"""

import copy
import logging
from pathlib import Path

import h5py
import torch
import torch.nn.functional as F
from torch import Tensor

from ssmri.data.checks import open_hdf5
from ssmri.data.sources import (
    ImageSource,
    MeasuredSlices,
    MissingSample,
    check_image_size,
    magnitude_to_complex,
    normalise_magnitude,
    take,
)
from ssmri.errors import DataError
from ssmri.physics.fft import ifft2c

log = logging.getLogger(__name__)

#: ``data.images.split``: train, val and test on different files, or all on the same slices.
SPLIT_MODES = ("files", "scan")


def check_split_mode(split: str, root: Path) -> str:
    """Validate ``data.images.split`` where it enters; say loudly when the splits share data."""
    if split not in SPLIT_MODES:
        raise ValueError(
            f"data.images.split={split!r}; choose 'files' (train, val and test on different files) or "
            f"'scan' (scan-specific: train, val and test all on every slice of {root})"
        )
    if split == "scan":
        log.warning(
            "data.images.split=scan: train, val and test are the SAME slices of %s (scan-specific "
            "training); val/test score the method's own objective on the training data, not how it "
            "generalises to other scans",
            root,
        )
    return split


def existing(path, what: str, key: str) -> Path:
    """``path`` as a Path, or an error naming the config ``key`` that set it."""
    path = Path(str(path)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist; set {key} to it")
    return path


def volume_files(root: Path) -> list[Path]:
    """The ``*.h5`` files of ``root``, sorted; a name that is no readable file (a broken link, a
    symlink loop, a folder) is refused naming it, instead of failing later inside ``stat`` or h5py."""
    files = sorted(root.glob("*.h5"))
    if not files:
        raise FileNotFoundError(f"no .h5 files in {root}; point data.images.root at fastMRI volumes")
    for path in files:
        if path.is_file():
            continue
        try:
            path.stat()
            why = "a folder, not a file"
        except OSError as error:
            why = error.strerror or str(error)  # e.g. "Too many levels of symbolic links"
        raise DataError(
            f"{path} is not a readable volume ({why}); remove it from data.images.root or repair the link"
        )
    return files


def check_slices_layout(path: Path, dataset: h5py.Dataset, name: str) -> None:
    """A single-coil ``name`` must be ``(slices, H, W)``: complex for ``kspace``, real numbers for a
    reconstruction; anything else is refused naming the file before a pixel is read."""
    wanted, kinds = ("complex k-space", "c") if name == "kspace" else ("real magnitudes", "fiu")
    if dataset.ndim != 3 or dataset.dtype.kind not in kinds:
        raise DataError(
            f"{path}: {name!r} has shape {dataset.shape} and dtype {dataset.dtype}, expected (slices, "
            f"H, W) {wanted} as in fastMRI's single-coil files; fix or remove the file in "
            f"data.images.root, or read another dataset (data.images.target)"
        )


def resize(images: Tensor, size: int) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, C, size, size)``, antialiased bilinear (torchvision's Resize)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def protocol_split(count: int, train_fraction: float, max_test: int | None, num_val: int) -> dict:
    """Tutorial split: first ``train_fraction`` train, the rest test (at most ``max_test``).

    ``num_val`` slices are taken from the end of the training part for checkpoint selection;
    with ``num_val=0`` the validation split is the test split, as in the tutorial (which
    evaluates on its test set every epoch; select the last checkpoint then, not the best).
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    boundary = int(train_fraction * count)
    test = list(range(boundary, count))[: max_test or None]
    train = list(range(boundary))
    if num_val >= len(train):
        raise ValueError(f"num_val={num_val} leaves no training slices out of {len(train)}")
    val = train[len(train) - num_val :] if num_val else test
    return {"train": train[: len(train) - num_val], "val": val, "test": test}


class FastMRISliceTensor(ImageSource):
    """The tutorial's fastMRI knee subset: a ``.pt`` tensor of magnitude slices.

    Args:
        path: the file (e.g. the tutorial's 973-slice knee file), loaded with ``weights_only=True``.
        image_size: slices are resized to this (128 in the tutorial).
        train_fraction: leading fraction used for training (0.8).
        max_test: at most this many test slices (50).
        num_val: validation slices from the end of the training part (0: validate on test).
    """

    def __init__(
        self,
        path: str,
        image_size: int = 128,
        train_fraction: float = 0.8,
        max_test: int | None = 50,
        num_val: int = 0,
    ):
        self.path = existing(path, "fastMRI slice file", "data.images.path")
        self.image_size = check_image_size(image_size, smallest=8, largest=1024)
        self.train_fraction, self.max_test, self.num_val = train_fraction, max_test, num_val
        self._slices: Tensor | None = None

    def describe(self) -> dict:
        return {
            "source": "fastmri_knee_simple",
            "file": str(self.path),
            "bytes": self.path.stat().st_size,
            "image_size": self.image_size,
            "train_fraction": self.train_fraction,
            "max_test": self.max_test,
            "num_val": self.num_val,
        }

    def slices(self) -> Tensor:
        if self._slices is None:
            try:
                data = torch.load(self.path, map_location="cpu", weights_only=True)
            except Exception as error:
                raise ValueError(f"cannot read {self.path} as a torch tensor file: {error}") from error
            if (
                not isinstance(data, Tensor)
                or data.dim() not in (3, 4)
                or (data.dim() == 4 and data.shape[1] != 1)
            ):
                shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
                raise ValueError(
                    f"{self.path} holds {shape}; expected a tensor (N, H, W) of magnitude slices"
                )
            self._slices = data.reshape(len(data), 1, *data.shape[-2:]).float()
        return self._slices

    def keys(self, split: str, count: int | None) -> list[int]:
        """Indices into the file's slices."""
        self._check_split(split)
        chosen = protocol_split(len(self.slices()), self.train_fraction, self.max_test, self.num_val)[split]
        return take(chosen, count, split, "the file")

    def load(self, keys) -> Tensor:
        return magnitude_to_complex(resize(self.slices()[list(keys)], self.image_size)[:, 0])

    def sample_ids(self, split: str, count: int | None) -> list[dict]:
        self._check_split(split)
        chosen = protocol_split(len(self.slices()), self.train_fraction, self.max_test, self.num_val)[split]
        # The file does not say which slices share a volume: each slice is its own.
        return [
            {"file": self.path.name, "slice": i, "volume": f"slice-{i}"}
            for i in (chosen if count is None else chosen[:count])
        ]

    def images_for(self, ids: list[dict]) -> Tensor:
        slices = self.slices()
        for sample in ids:
            if sample.get("file") != self.path.name:
                raise MissingSample(sample, f"this source reads {self.path.name}")
            if not isinstance(sample.get("slice"), int) or not 0 <= sample["slice"] < len(slices):
                raise MissingSample(sample, f"{self.path.name} has slices 0..{len(slices) - 1}")
        picked = slices[[s["slice"] for s in ids]]
        return magnitude_to_complex(resize(picked, self.image_size)[:, 0])


class VolumeFiles:
    """What every source made of HDF5 volumes shares: the split by volume and the sample names.

    The source provides ``files``, ``root``, ``train_fraction``, ``max_test``, ``num_val``,
    ``slices_per_file()`` and ``load(keys)``; keys are ``(volume number, slice number)`` pairs and
    samples are named ``{"file", "slice", "volume"}``. ``split`` (:data:`SPLIT_MODES`) is
    ``"scan"`` for scan-specific training: every split is every slice.
    """

    split = "files"

    @property
    def shares_splits(self) -> bool:
        """Train, val and test hold the same slices (``data.images.split=scan``)."""
        return self.split == "scan"

    def split_description(self) -> dict:
        """What :meth:`describe` adds for the split mode: nothing for the default, so that caches
        of the split by file keep their names."""
        return {"split": self.split} if self.shares_splits else {}

    def set_split(self, train_fraction: float, max_test: int | None, num_val: int, split: str) -> None:
        """The split settings every volume source takes, validated where they enter."""
        if not 0 < train_fraction < 1:
            raise ValueError(f"data.images.train_fraction must lie in (0, 1), got {train_fraction}")
        self.train_fraction, self.max_test, self.num_val = train_fraction, max_test, num_val
        self.split = check_split_mode(split, self.root)

    def keys(self, split: str, count: int | None) -> list[tuple[int, int]]:
        """``(volume number, slice number)`` of the split's slices; volumes never straddle splits:
        the first ``train_fraction`` of the files train (their last ``num_val`` slices validate),
        the rest test (at most ``max_test`` slices; they also validate when ``num_val`` is 0).
        Scan-specific (``split="scan"``): every split is every slice of every file."""
        self._check_split(split)
        if self.shares_splits:
            every = [(v, s) for v, count_v in enumerate(self.slices_per_file()) for s in range(count_v)]
            return take(every, count, split, "the files")
        counts = self.slices_per_file()  # reads every file first: a damaged one is named as such
        boundary = int(self.train_fraction * len(self.files))
        if not 0 < boundary < len(self.files):
            single = len(self.files) == 1
            raise ValueError(
                f"{len(self.files)} volume{'' if single else 's'} in {self.root} cannot be split "
                f"{self.train_fraction:g}/{1 - self.train_fraction:g} by file; add volumes"
                + (
                    ", or train on this one scan with data.images.split=scan (scan-specific)"
                    if single
                    else " or change data.images.train_fraction"
                )
            )
        slices = [(v, s) for v, count_v in enumerate(counts) for s in range(count_v)]
        first_test = sum(counts[:boundary])
        train, test = slices[:first_test], slices[first_test:][: self.max_test or None]
        if self.num_val >= len(train):
            raise ValueError(f"data.images.num_val={self.num_val} leaves no training slices")
        cut = len(train) - self.num_val
        chosen = {"train": train[:cut], "val": train[cut:] if self.num_val else test, "test": test}[split]
        return take(chosen, count, split, "the files")

    def sample_ids(self, split: str, count: int | None) -> list[dict]:
        return [
            {"file": self.files[v].name, "slice": s, "volume": self.files[v].name}
            for v, s in self.keys(split, count)
        ]

    def volumes(self) -> list[str]:
        return [path.name for path in self.files]

    def only(self, volume: int) -> "VolumeFiles":
        """A copy of this source that holds file number ``volume`` alone, with nothing read yet.

        Prediction reads each file through its own copy, so that a file that cannot be listed
        or read fails only itself; training lists the whole folder first and refuses it whole.
        """
        own = copy.copy(self)
        own.files = [self.files[volume]]
        own._forget()
        return own

    def _forget(self) -> None:
        """Empty what the source cached from its files (each source names its own caches)."""
        raise NotImplementedError(f"{type(self).__name__} does not say what it caches")

    def volume_keys(self, volume: int) -> list[tuple[int, int]]:
        return [(volume, number) for number in range(self.slices_per_file()[volume])]

    def images_for(self, ids: list[dict]):
        numbers = {f.name: v for v, f in enumerate(self.files)}
        counts = self.slices_per_file()
        keys = []
        for sample in ids:
            volume = numbers.get(sample.get("file"))
            if volume is None:
                raise MissingSample(sample, f"no such file in {self.root}")
            if not isinstance(sample.get("slice"), int) or not 0 <= sample["slice"] < counts[volume]:
                raise MissingSample(sample, f"{sample['file']} has slices 0..{counts[volume] - 1}")
            keys.append((volume, sample["slice"]))
        return self.load(keys)


class FastMRIFolder(VolumeFiles):
    """A folder of fastMRI ``.h5`` volumes: fully sampled, or all in the test/challenge layout.

    Listing the slices (:meth:`slices_per_file`) records in ``_acquired_files`` which layout each
    file has; a folder must hold one layout only.
    """

    _acquired_files: dict[Path, bool]

    @property
    def acquired(self) -> bool:
        """The files are fastMRI's test layout (their own masks, no target), all or none."""
        self.slices_per_file()
        return one_layout(self._acquired_files, self.root)

    @property
    def ground_truth(self) -> bool:
        return not self.acquired


def one_layout(acquired: dict[Path, bool], root: Path) -> bool:
    """The one layout of a folder's files: all acquired (test layout) or all fully sampled."""
    kinds = set(acquired.values())
    if len(kinds) > 1:
        masked = sorted(path.name for path, is_acquired in acquired.items() if is_acquired)
        raise ValueError(
            f"{root} mixes fastMRI test-layout files (with 'mask': {masked[:3]}) and fully sampled "
            f"ones; keep one kind per data.images.root"
        )
    return kinds == {True}


class FastMRISingleCoilFiles(FastMRIFolder, ImageSource):
    """Raw fastMRI single-coil volumes (``*.h5``) from a user directory, split by volume.

    Ground truth per slice is ``target``: ``reconstruction_esc`` or ``reconstruction_rss``
    (magnitude), or ``kspace`` (the complex image ``F⁻¹ kspace``, for files without
    reconstructions); centre-cropped to ``crop_size`` and resized to ``image_size``.

    Files in fastMRI's test/challenge layout (a ``(W,)`` ``mask``, ``kspace`` zero off it, no
    reconstruction) are served as acquired :class:`MeasuredSlices` without a target: readout
    oversampling removed (``H // 2`` rows) and the central ``image_size`` square of k-space
    kept, never an image resize, which would break consistency with the acquired columns.

    Args:
        root: folder of ``.h5`` files (sorted by name; the first ``train_fraction`` of the
            volumes train, the rest test, so no volume is in two splits).
        image_size: output side length.
        target: which dataset holds the ground truth.
        crop_size: centre crop before resizing (320 for fastMRI knee).
        train_fraction, max_test, num_val: as in :func:`protocol_split`, over slices.
        split: ``files`` (by volume, above) or ``scan`` (scan-specific: every split is every slice).
    """

    def __init__(
        self,
        root: str,
        image_size: int = 128,
        target: str = "reconstruction_esc",
        crop_size: int = 320,
        train_fraction: float = 0.8,
        max_test: int | None = 50,
        num_val: int = 0,
        split: str = "files",
    ):
        self.root = existing(root, "fastMRI folder", "data.images.root")
        if target not in ("reconstruction_esc", "reconstruction_rss", "kspace"):
            raise ValueError(
                f"target must be reconstruction_esc, reconstruction_rss or kspace, got {target!r}"
            )
        self.files = volume_files(self.root)
        self.image_size = check_image_size(image_size, smallest=8, largest=1024)
        self.target, self.crop_size = target, crop_size
        self.set_split(train_fraction, max_test, num_val, split)
        self._forget()

    def _forget(self) -> None:
        self._counts: list[int] | None = None
        self._acquired_files: dict[Path, bool] = {}

    def describe(self) -> dict:
        return {
            **self.split_description(),
            "source": "fastmri_h5",
            "root": str(self.root),
            "files": [f.name for f in self.files],
            "bytes": sum(f.stat().st_size for f in self.files),
            "target": self.target,
            "crop_size": self.crop_size,
            "image_size": self.image_size,
            "train_fraction": self.train_fraction,
            "max_test": self.max_test,
            "num_val": self.num_val,
        }

    def slice_counts(self) -> list[int]:
        """Slices per volume, read from the dataset shapes (no pixels)."""
        if self._counts is None:
            from ssmri.data.fastmri_multicoil import acquired_layout  # that module builds on this one

            counts = []
            for path in self.files:
                with open_h5(path) as file:
                    self._acquired_files[path] = "mask" in file
                    if "mask" in file:  # test layout: k-space and its mask, no target
                        counts.append(self._acquired_slices(path, file, acquired_layout))
                        continue
                    if self.target not in file:
                        raise ValueError(
                            f"{path} has no {self.target!r} dataset (has {sorted(file)}); "
                            f"set data.images.target"
                        )
                    check_slices_layout(path, file[self.target], self.target)
                    counts.append(int(file[self.target].shape[0]))
            self._counts = counts
        return self._counts

    def slices_per_file(self) -> list[int]:
        return self.slice_counts()

    def _acquired_slices(self, path: Path, file: h5py.File, acquired_layout) -> int:
        """Slices of an open test-layout file, refused (naming it) unless its k-space matches the
        mask and is large enough for ``image_size``."""
        if not isinstance(file.get("kspace"), h5py.Dataset):
            raise DataError(
                f"{path}: a 'mask' but no 'kspace' dataset (has {sorted(file)}); fastMRI's test layout "
                f"holds both, remove the file from data.images.root"
            )
        kspace = file["kspace"]
        check_slices_layout(path, kspace, "kspace")
        acquired_layout(file, path, tuple(kspace.shape))
        height, width = kspace.shape[1:]
        if height // 2 < self.image_size or width < self.image_size:
            raise DataError(
                f"{path}: 'kspace' of {height}x{width} (readout {height // 2} without oversampling) is "
                f"smaller than data.image_size={self.image_size}; lower data.image_size"
            )
        return int(kspace.shape[0])

    def load(self, keys) -> Tensor | MeasuredSlices:
        if self.acquired:
            return self._load_acquired(keys)
        return torch.cat([self._slices(volume, numbers) for volume, numbers in by_volume(keys)])

    def _load_acquired(self, keys) -> MeasuredSlices:
        """Test-layout slices as acquired: the file's mask, no coil maps, no target."""
        from ssmri.data.acquired import prepare_acquired  # builds on fastmri_multicoil, which builds on us

        parts = []
        for volume, numbers in by_volume(keys):
            path = self.files[volume]
            with open_h5(path) as file:
                kspace, mask = file["kspace"][numbers], torch.from_numpy(file["mask"][()])
            for number, slice_kspace in zip(numbers, kspace):
                parts.append(
                    prepare_acquired(
                        torch.from_numpy(slice_kspace)[None],
                        mask,
                        self.image_size,
                        slice_kspace.shape[-2] // 2,
                        calib_width=2,
                        threshold=0.0,
                        crop=0.0,
                        where=f"{path} slice {number}",
                        coil_maps=False,  # one coil: the ESPIRiT settings above are not used
                    )
                )
        kspace, _, masks, scale = zip(*parts)
        return MeasuredSlices(torch.stack(kspace), None, None, torch.stack(masks), torch.stack(scale))

    def _slices(self, volume: int, numbers: list[int]) -> Tensor:
        """``(S, 2, image_size, image_size)`` complex slices ``numbers`` of one volume."""
        with open_h5(self.files[volume]) as file:
            data = torch.from_numpy(file[self.target][numbers])
        if self.target == "kspace":
            kspace = torch.stack((data.real, data.imag), dim=1).float()
            images = ifft2c(kspace)
        else:
            images = torch.stack((data.float(), torch.zeros_like(data, dtype=torch.float32)), dim=1)
        height, width = images.shape[-2:]
        crop = min(self.crop_size, height, width)
        top, left = (height - crop) // 2, (width - crop) // 2
        images = images[..., top : top + crop, left : left + crop]
        return normalise_magnitude(resize(images, self.image_size))


def by_volume(keys) -> list[tuple[int, list[int]]]:
    """Group ``(volume, slice)`` keys into runs of one volume, in order (one read per run)."""
    runs: list[tuple[int, list[int]]] = []
    for volume, number in keys:
        if runs and runs[-1][0] == volume and number > runs[-1][1][-1]:
            runs[-1][1].append(number)
        else:
            runs.append((volume, [number]))
    return runs


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file of ``data.images.root`` for reading, naming the file if it is not one."""
    return open_hdf5(path, "data.images.root")


__all__ = [
    "SPLIT_MODES",
    "FastMRISingleCoilFiles",
    "FastMRISliceTensor",
    "VolumeFiles",
    "by_volume",
    "check_split_mode",
    "open_h5",
]
