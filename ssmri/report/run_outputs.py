"""A run's results beside its checkpoints: per-image metrics (CSV) and the test samples (tensors).

``metrics.json`` and ``failed.json`` are plain :func:`ssmri.atomic.write_json` calls.
"""

import csv
from pathlib import Path

import torch

from ssmri.atomic import atomic_write

# ``loss``: the method's own objective per image, the only column of a run without ground truth.
PER_IMAGE_COLUMNS = [
    "index",
    "psnr",
    "ssim",
    "psnr_zero_filled",
    "ssim_zero_filled",
    "nmse",
    "nmse_zero_filled",
    "loss",
]


def write_per_image(path: Path, results: dict[str, torch.Tensor]) -> Path:
    """One row per test image: index, psnr, ssim, psnr_zero_filled, ssim_zero_filled, nmse,
    nmse_zero_filled, loss (those of them ``results`` has), under the run's metric convention."""
    columns = [c for c in PER_IMAGE_COLUMNS if c in results]
    with atomic_write(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*(results[c].tolist() for c in columns)):
            writer.writerow([int(row[0]), *(f"{v:.6f}" for v in row[1:])])
    return Path(path)


def read_per_image(path: Path) -> dict[str, list[float]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(r[key]) for r in rows] for key in rows[0]} if rows else {}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """``torch.save`` of ``tensors`` to ``path``, atomically."""
    with atomic_write(path) as temporary:
        torch.save(tensors, temporary)
    return Path(path)
