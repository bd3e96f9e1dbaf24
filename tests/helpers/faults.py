"""Faults the reliability tests inject: a checkpoint with a payload, a small full disk, a signal."""

import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import pytest
import torch


class Payload:
    """Unpickling this object creates ``marker``: proof that loading ran code from the file."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return Path.touch, (self.marker,)


def payload_checkpoint(path: Path, marker: Path) -> Path:
    """A Lightning-shaped checkpoint whose hyper-parameters carry a :class:`Payload`."""
    torch.save(
        {
            "state_dict": {"w": torch.zeros(2)},
            "hyper_parameters": {"method": "sup", "extra": Payload(marker)},
        },
        path,
    )
    return path


@contextmanager
def small_tmpfs(path: Path, size: str = "1m"):
    """A tmpfs of ``size`` mounted at ``path`` (root only); skips the test where it cannot mount."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


class SigtermDuringTest(L.Callback):
    """Sends this process SIGTERM after the first test batch: a stop while the final test runs."""

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)
