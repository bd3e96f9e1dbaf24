"""The k-space measurement cache: measurements, masks, maps and targets in one HDF5 file.

Layout, per split ``s`` in train/val/test (N samples, C coils)::

    /s/kspace  (N, 2, H, W) or (N, C, 2, H, W) float32   measurements y, zero off the mask
    /s/mask    (N, W) uint8                              each sample's sampled columns (Cartesian)
    /s/target  (N, 2, H, W) float32                      ground truth (absent for acquired scans)
    /s/maps    (N, C, 2, H, W) or (C, 2, H, W) float32   coil maps, per sample or shared
                                                         (multi-coil only)

It is written streaming, a chunk of samples at a time, so memory does not grow with the data
set; atomically (:func:`ssmri.atomic.atomic_write`), so an interrupted build never leaves a
file a later run reads; keyed by a hash of the data and physics configuration; and every
dataset carries HDF5's Fletcher-32 checksum, so a flipped bit is an error, not a result.
"""

import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ssmri.atomic import atomic_write
from ssmri.data.sources import SPLITS

log = logging.getLogger(__name__)

CACHE_VERSION = 2
KEYS = ("kspace", "mask", "target", "maps")
_SCAN_ROWS = 64  # samples per block when a whole cache is verified


class CacheError(RuntimeError):
    """A cache file that cannot be used as it is."""


@dataclass
class CacheChunk:
    """A run of consecutive samples of one split, as stored.

    Attributes:
        kspace: ``(n, 2, H, W)`` or ``(n, C, 2, H, W)`` measurements, zero off the mask.
        mask: ``(n, W)`` 0/1 sampled columns of each sample.
        target: ``(n, 2, H, W)`` ground truth; ``None`` for acquired scans, which have none.
        maps: ``(n, C, 2, H, W)`` per-sample or ``(C, 2, H, W)`` shared coil maps; ``None``
            for single-coil. Shared maps are written from the first chunk of the split.
    """

    kspace: Tensor
    mask: Tensor
    target: Tensor | None
    maps: Tensor | None = None


def config_hash(spec: dict) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fix_for(path: Path) -> str:
    return f"delete {path} or run with data.rebuild_cache=true"


# ssmri.atomic names its temporaries ".<name>.<pid>.<8 hex>.tmp" beside the target.
_TEMPORARY = re.compile(r"^\.(?P<name>.+\.h5)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def remove_stale_temporaries(folder: Path, grace_s: float = 60.0) -> list[Path]:
    """Delete cache temporaries left by killed builds; returns what was removed.

    Only files named as :func:`ssmri.atomic.atomic_write` names a cache's temporary are
    touched. A live build holds a shared ``flock`` on its temporary from creation to rename
    (:func:`_created_and_held`), which the kernel drops when the writer dies: a temporary
    nobody holds is a dead writer's and goes at once, a held one is never touched. Only an
    empty, unheld file (a writer between creating and locking it) waits ``grace_s``.
    """
    removed = []
    if not folder.is_dir():
        return removed
    for candidate in folder.iterdir():
        if _TEMPORARY.match(candidate.name) is None or not candidate.is_file():
            continue
        try:
            with open(candidate, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a writer holds it
                status = os.fstat(handle.fileno())
                if status.st_size == 0 and status.st_mtime > time.time() - grace_s:
                    continue
                candidate.unlink(missing_ok=True)  # under our lock: no writer can take it meanwhile
        except OSError:  # held by a live writer (BlockingIOError), gone, or not ours to open
            continue
        removed.append(candidate)
        log.info("removed %s, left by a killed cache build", candidate)
    return removed


def _created_and_held(temporary: Path, held: ExitStack) -> Path:
    """Create ``temporary`` and hold a shared ``flock`` on it until ``held`` closes: the mark of a
    live writer. Shared, so HDF5 readers of the renamed file are never refused meanwhile."""
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    held.callback(os.close, descriptor)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    return temporary


def write_cache(
    path: Path, spec: dict, splits: dict[str, Iterable[CacheChunk]], totals: dict[str, int]
) -> Path:
    """Atomically write each split's chunks to ``path``, one chunk in memory at a time.

    ``totals`` gives each split's sample count (for the progress bar and the empty-split check).
    """
    path = Path(path)
    remove_stale_temporaries(path.parent)
    # The lock outlives atomic_write, so it is released only after the rename. HDF5's own lock
    # (exclusive, on its own descriptor) would clash with ours: it is off for this file.
    with (
        ExitStack() as held,
        atomic_write(path) as temporary,
        h5py.File(_created_and_held(temporary, held), "w", locking=False) as file,
    ):
        file.attrs["ssmri_cache_version"] = CACHE_VERSION
        file.attrs["config_hash"] = config_hash(spec)
        file.attrs["config"] = json.dumps(spec, sort_keys=True, default=str)
        for name, chunks in splits.items():
            if totals[name] < 1:
                raise ValueError(f"the {name} split has no samples; give it at least one (data.num_{name})")
            group = file.create_group(name)
            with tqdm(total=totals[name], desc=f"cache {name}", unit="slice", disable=None) as bar:
                for chunk in chunks:
                    _append(group, chunk)
                    bar.update(len(chunk.kspace))
            written = group["kspace"].shape[0]
            if written != totals[name]:
                raise RuntimeError(f"{name}: the source gave {written} samples, expected {totals[name]}")
        file.attrs["complete"] = True
    log.info("wrote the measurement cache %s", path)
    return path


def _append(group: h5py.Group, chunk: CacheChunk) -> None:
    arrays = {
        "kspace": chunk.kspace.numpy().astype(np.float32),
        "mask": chunk.mask.numpy().astype(np.uint8),
    }
    if chunk.target is not None:
        arrays["target"] = chunk.target.numpy().astype(np.float32)
    if chunk.maps is not None:
        maps = chunk.maps.numpy().astype(np.float32)
        if maps.ndim == arrays["kspace"].ndim:
            arrays["maps"] = maps
        elif "maps" not in group:  # shared by every sample: stored once
            group.create_dataset("maps", data=maps, chunks=maps.shape, fletcher32=True)
    for key, array in arrays.items():
        if key not in group:
            # One sample per HDF5 chunk (masks: many rows), so a read touches one chunk.
            rows = 256 if key == "mask" else 1
            group.create_dataset(
                key,
                shape=(0, *array.shape[1:]),
                maxshape=(None, *array.shape[1:]),
                dtype=array.dtype,
                chunks=(rows, *array.shape[1:]),
                fletcher32=True,
            )
        dataset = group[key]
        start = dataset.shape[0]
        dataset.resize(start + len(array), axis=0)
        dataset[start:] = array


def read(path: Path, dataset: h5py.Dataset, selection=()) -> np.ndarray:
    """``dataset[selection]``, with a checksum failure turned into a :class:`CacheError`."""
    try:
        return dataset[selection]
    except OSError as error:
        raise CacheError(
            f"cache {path} is corrupted: {dataset.name} fails its checksum or cannot be read "
            f"({error}); {fix_for(path)}"
        ) from error


def check_mask_rows(path: Path, rows: np.ndarray, where: str) -> None:
    """Masks are stored as 0/1 columns; anything else is a damaged file."""
    if rows.dtype != np.uint8 or rows.max(initial=0) > 1 or (rows.ndim == 2 and not rows.any(axis=1).all()):
        raise CacheError(
            f"cache {path} holds masks in {where} that are not binary Cartesian column masks "
            f"with at least one column; {fix_for(path)}"
        )


def check_cache(path: Path, spec: dict, verify_data: bool = True) -> None:
    """Raise :class:`CacheError` unless ``path`` is a complete, intact cache written for ``spec``.

    ``verify_data`` reads every byte once: checksums, finite values, binary masks.
    """
    fix = fix_for(path)
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise CacheError(
            f"cache {path} is not a readable HDF5 file (truncated or corrupted: {error}); {fix}"
        ) from error
    with file:
        if not file.attrs.get("complete", False):
            raise CacheError(f"cache {path} was never completed; {fix}")
        if file.attrs.get("config_hash") != config_hash(spec):
            raise CacheError(
                f"cache {path} was written for another data/physics configuration "
                f"(hash {file.attrs.get('config_hash')!r}, expected {config_hash(spec)!r}); {fix}"
            )
        if file.attrs.get("ssmri_cache_version") != CACHE_VERSION:
            raise CacheError(f"cache {path} has an older layout; {fix}")
        for split in SPLITS:
            if split not in file:
                raise CacheError(f"cache {path} has no {split!r} split; {fix}")
            _check_layout(path, file[split])
            if verify_data:
                _verify(path, file[split])


def _check_layout(path: Path, group: h5py.Group) -> None:
    if "kspace" not in group or "mask" not in group:
        raise CacheError(f"cache {path} split {group.name!r} lacks kspace or mask; {fix_for(path)}")
    kspace, mask, target = group["kspace"], group["mask"], group.get("target")
    count, width = kspace.shape[0], kspace.shape[-1]
    expected_maps = {kspace.shape, kspace.shape[1:]} if kspace.ndim == 5 else set()
    maps = group["maps"].shape if "maps" in group else None
    if (
        kspace.ndim not in (4, 5)
        or mask.shape != (count, width)
        or (target is not None and target.shape != (count, 2, *kspace.shape[-2:]))
        or (maps is None) != (kspace.ndim == 4)
        or (maps is not None and maps not in expected_maps)
    ):
        shapes = {key: group[key].shape for key in KEYS if key in group}
        raise CacheError(
            f"cache {path} split {group.name!r} has inconsistent shapes {shapes}; {fix_for(path)}"
        )
    for key in KEYS:
        if key in group and not group[key].fletcher32:
            raise CacheError(f"cache {path} {group[key].name} has no checksum; {fix_for(path)}")


def _verify(path: Path, group: h5py.Group) -> None:
    for key in KEYS:
        if key not in group:
            continue
        dataset = group[key]
        for block in _blocks(path, dataset):
            if key == "mask":
                check_mask_rows(path, block, dataset.name)
            elif not np.isfinite(block).all():
                raise CacheError(f"cache {path} has NaN/Inf in {dataset.name}; {fix_for(path)}")


def _blocks(path: Path, dataset: h5py.Dataset) -> Iterator[np.ndarray]:
    if dataset.ndim == 4 and dataset.name.endswith("maps"):  # shared maps: one array
        yield read(path, dataset)
        return
    for start in range(0, dataset.shape[0], _SCAN_ROWS):
        yield read(path, dataset, np.s_[start : start + _SCAN_ROWS])


def check_finite(images: torch.Tensor, split: str, offset: int = 0) -> None:
    """Refuse NaN/Inf images before anything is simulated from them."""
    bad = (~torch.isfinite(images)).flatten(1).any(dim=1)
    if bad.any():
        first = offset + int(torch.nonzero(bad)[0])
        raise ValueError(
            f"the {split} images contain NaN/Inf ({int(bad.sum())} images in the chunk from index "
            f"{offset}, first index {first}); fix or drop those images in the data source before training"
        )
