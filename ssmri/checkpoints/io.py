"""Checkpoint files written atomically where they land, and read back as data only.

Lightning's own writer moves a file from the temporary folder into place, which across file
systems becomes an in-place overwrite: a full disk then left a truncated ``best.ckpt`` where
a good one had been. :class:`AtomicCheckpointIO` writes beside the destination instead
(:func:`ssmri.atomic.atomic_write`: temporary file, fsync, rename), so the previous file stays
until the new one is complete, and a failed write names the folder and its free space.
"""

import io
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ssmri.atomic import atomic_write
from ssmri.checkpoints.load import load_checkpoint
from ssmri.errors import DiskError


def free_space(folder: Path) -> str:
    """``"<n> MB free"`` of the nearest existing folder at or above ``folder``."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
    except OSError:
        return "free space unknown"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save via a temporary sibling and a rename; load with ``weights_only=True`` always."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            with atomic_write(path) as temporary, open(temporary, "wb") as file:
                file.write(buffer.getbuffer())
        except OSError as error:
            reason = error.strerror or str(error)
            raise DiskError(
                f"could not write checkpoint {path.name} ({len(buffer.getbuffer()) / 1e6:.1f} MB) "
                f"to {path.parent}: {reason}; {free_space(path.parent)} there; the previous "
                f"{path.name}, if any, is unchanged. Free space or set paths.output_dir elsewhere"
            ) from error

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        # Every load Lightning makes (resume, test's ckpt_path, SLURM's hpc checkpoint) comes
        # here: data only, whatever the caller asked for.
        return load_checkpoint(path, key="ckpt_path")
