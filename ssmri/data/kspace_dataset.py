"""Reads one split of the HDF5 measurement cache, opening the file once per worker."""

from pathlib import Path

import h5py
import torch
from torch.utils.data import Dataset


class KspaceDataset(Dataset):
    """Samples ``{"y", "mask", "index"[, "x"][, "maps"]}`` of one split of a measurement cache.

    ``maps`` (``(C, 2, H, W)``) is served when the cache holds coil maps (multi-coil).

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
            self._maps = torch.from_numpy(file["maps"][()]) if "maps" in file else None
        self._file: h5py.File | None = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        group = self._file[self.split]
        sample = {
            "y": torch.from_numpy(group["kspace"][index]),
            "mask": torch.from_numpy(group["mask"][index]).float(),
            "index": int(index),
        }
        if self.with_target:
            sample["x"] = torch.from_numpy(group["target"][index])
        if self._maps is not None:
            sample["maps"] = self._maps
        return sample

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
