"""The k-space measurement cache: simulated measurements and masks in one HDF5 file.

Layout, per split ``s`` in train/val/test::

    /s/kspace  (N, 2, H, W) float32   measurements y, zero off the mask
    /s/mask    (N, 1, H, W) uint8     each sample's own sampling mask
    /s/target  (N, 2, H, W) float32   ground truth; for train only supervised training reads it

and, for multi-coil physics (k-space then ``(N, C, 2, H, W)``), one ``/maps (C, 2, H, W)``
float32 of simulated coil maps that every sample shares.

The file is keyed by a hash of the data and physics configuration and written atomically
(:func:`ssmri.atomic.atomic_write`), so an interrupted run never leaves a file a later
run reads.
"""

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import torch

from ssmri.atomic import atomic_write
from ssmri.data.sources import SPLITS

CACHE_VERSION = 1


class CacheError(RuntimeError):
    """A cache file that cannot be used as it is."""


def config_hash(spec: dict) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_cache(path: Path, spec: dict, splits: dict, chunk: int = 256, maps=None) -> Path:
    """Atomically write ``splits = {name: (kspace, mask, target)}`` tensors (and the shared
    coil ``maps``, if any) to ``path``."""
    with atomic_write(path) as temporary, h5py.File(temporary, "w") as file:
        file.attrs["ssmri_cache_version"] = CACHE_VERSION
        file.attrs["config_hash"] = config_hash(spec)
        file.attrs["config"] = json.dumps(spec, sort_keys=True, default=str)
        if maps is not None:
            file.create_dataset("maps", data=maps.numpy().astype(np.float32))
        for name, (kspace, mask, target) in splits.items():
            group = file.create_group(name)
            def per_sample(array):  # one chunk per sample (k-space is (N, C, 2, H, W) in multi-coil)
                return {"chunks": (1, *array.shape[1:])} if len(array) else {}

            group.create_dataset("kspace", data=kspace.numpy().astype(np.float32), **per_sample(kspace))
            group.create_dataset("mask", data=mask.numpy().astype(np.uint8))
            group.create_dataset("target", data=target.numpy().astype(np.float32), **per_sample(target))
        file.attrs["complete"] = True
    return Path(path)


def check_cache(path: Path, spec: dict) -> None:
    """Raise :class:`CacheError` unless ``path`` is a complete cache written for ``spec``."""
    fix = f"delete {path} or run with data.rebuild_cache=true"
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
        if "coils" in spec["physics"] and "maps" not in file:
            raise CacheError(f"cache {path} is multi-coil but holds no coil maps; {fix}")
        for split in SPLITS:
            if split not in file:
                raise CacheError(f"cache {path} has no {split!r} split; {fix}")
            shapes = {key: file[split][key].shape for key in ("kspace", "mask", "target")}
            count = shapes["kspace"][0]
            if any(shape[0] != count for shape in shapes.values()):
                raise CacheError(f"cache {path} split {split!r} has mismatched lengths {shapes}")
            for key in ("kspace", "target"):
                for start in range(0, count, 256):
                    block = file[split][key][start : start + 256]
                    if not np.isfinite(block).all():
                        raise CacheError(f"cache {path} has NaN/Inf in {split}/{key}; {fix}")


def check_finite(images: torch.Tensor, split: str) -> None:
    """Refuse NaN/Inf images before anything is simulated from them."""
    bad = (~torch.isfinite(images)).flatten(1).any(dim=1)
    if bad.any():
        first = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"the {split} images contain NaN/Inf ({int(bad.sum())} images, first index {first}); "
            f"fix or drop those images in the data source before training"
        )
