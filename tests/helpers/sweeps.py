"""Finished sweep jobs written the way a training run writes them, for the report tests."""

from pathlib import Path

import torch

from ssmri.report import write_json, write_per_image


def write_finished_job(job: Path, method: str, per_image_psnr: list[float], **metrics) -> Path:
    """``job/test_per_image.csv`` and ``job/metrics.json`` of a run of ``method`` at seed 0
    (zero-filled 20 dB); ``metrics`` are added to, or replace, the ``metrics.json`` entries."""
    values = torch.tensor(per_image_psnr, dtype=torch.float64)
    job.mkdir(parents=True)
    write_per_image(
        job / "test_per_image.csv",
        {
            "index": torch.arange(len(values)),
            "psnr": values,
            "ssim": values / 40,
            "psnr_zero_filled": torch.full_like(values, 20.0),
        },
    )
    write_json(
        job / "metrics.json",
        {
            "loss": method,
            "seed": 0,
            "test/psnr": float(values.mean()),
            "test/psnr_zero_filled": 20.0,
            **metrics,
        },
    )
    return job
