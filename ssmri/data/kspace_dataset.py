"""Reads one split of the HDF5 measurement cache, opening the file once per worker."""

from pathlib import Path

import h5py
import torch
from torch.utils.data import Dataset

from ssmri.data.cache import CacheError, check_mask_rows, fix_for, read


class KspaceDataset(Dataset):
    """Samples ``{"y", "mask", "index"[, "maps"][, "x"]}`` of one split of a measurement cache.

    The stored mask row ``(W,)`` is served as the float mask ``(1, H, W)`` every operator
    takes; multi-coil samples carry their maps ``(C, 2, H, W)`` (shared maps are read once).
    The HDF5 handle is opened lazily in the process that reads (each data-loader worker gets
    its own) and never pickled, because h5py handles must not cross ``fork``.

    Args:
        path: the cache file.
        split: ``train``, ``val`` or ``test``.
        with_target: serve the ground truth ``x``; for the training split only supervised
            training sets this.
    """

    def __init__(self, path: Path, split: str, with_target: bool):
        self.path = Path(path)
        self.split = split
        self.with_target = with_target
        with h5py.File(self.path, "r") as file:
            self._length = file[split]["kspace"].shape[0]
        self._file: h5py.File | None = None
        self._shared_maps: torch.Tensor | None = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        group = self._file[self.split]
        kspace = torch.from_numpy(read(self.path, group["kspace"], index))
        row = read(self.path, group["mask"], index)
        check_mask_rows(self.path, row[None], f"{self.split}/mask[{index}]")
        height = kspace.shape[-2]
        sample = {
            "y": kspace,
            "mask": torch.from_numpy(row).float()[None, None, :].expand(1, height, -1).contiguous(),
            "index": int(index),
        }
        if "maps" in group:
            sample["maps"] = self._maps(group, index, kspace.dim())
        if self.with_target:
            sample["x"] = torch.from_numpy(read(self.path, group["target"], index))
        if not torch.isfinite(kspace).all():
            raise CacheError(
                f"cache {self.path} has NaN/Inf in {self.split}/kspace[{index}]; {fix_for(self.path)}"
            )
        return sample

    def _maps(self, group: h5py.Group, index: int, sample_rank: int) -> torch.Tensor:
        dataset = group["maps"]
        if dataset.ndim == sample_rank:  # one array shared by every sample
            if self._shared_maps is None:
                self._shared_maps = torch.from_numpy(read(self.path, dataset))
            return self._shared_maps
        return torch.from_numpy(read(self.path, dataset, index))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def __del__(self):
        if getattr(self, "_file", None) is not None:
            try:
                self._file.close()
            except Exception:  # interpreter shutdown: nothing left to release
                pass
