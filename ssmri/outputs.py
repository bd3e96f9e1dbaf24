"""Writes a run's results (metrics.json, test_per_image.csv), atomically."""

import csv
import json
import os
from pathlib import Path

import torch


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary sibling, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path


def write_metrics(path: Path, metrics: dict) -> Path:
    return write_atomic(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def write_per_image(path: Path, results: dict[str, torch.Tensor]) -> Path:
    """One row per test image: index, psnr, ssim, psnr_zero_filled, ssim_zero_filled."""
    columns = ["index", "psnr", "ssim", "psnr_zero_filled", "ssim_zero_filled"]
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*(results[c].tolist() for c in columns)):
            writer.writerow([int(row[0]), *(f"{v:.6f}" for v in row[1:])])
    os.replace(temporary, path)
    return path


def read_per_image(path: Path) -> dict[str, list[float]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(r[key]) for r in rows] for key in rows[0]} if rows else {}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """``torch.save`` under a temporary name, then rename."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(tensors, temporary)
    os.replace(temporary, path)
    return path
