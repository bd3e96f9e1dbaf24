"""``python -m ssmri.evaluation``: reconstructions from anywhere scored as a run scores its own."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssmri.evaluation.conventions import aggregate, volume_ranges
from ssmri.evaluation.folders import main
from ssmri.evaluation.metrics import PerImageQuality

ROOT = Path(__file__).parents[1]
VOLUMES = {"file_b.h5": 3, "file_a.h5": 2, "file_c.h5": 4}  # slices per volume, names unsorted


def made_up_volumes(size: int = 24, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per file: complex targets ``(S, 2, H, W)`` with peaks other than 1 and reconstructions."""
    rng = torch.Generator().manual_seed(seed)
    volumes = {}
    for number, (name, slices) in enumerate(VOLUMES.items()):
        x = (number + 0.5) * torch.randn(slices, 2, size, size, generator=rng)
        x_hat = x + (0.1 + 0.2 * number) * torch.randn(x.shape, generator=rng)
        volumes[name] = (x, x_hat)
    return volumes


def run_metrics(volumes: dict) -> tuple[dict, dict]:
    """What a run computes under metrics.convention=fastmri (ReconstructionModule's test)."""
    names = sorted(volumes)
    x = torch.cat([volumes[n][0] for n in names])
    x_hat = torch.cat([volumes[n][1] for n in names])
    ids = [n for n in names for _ in range(len(volumes[n][0]))]
    quality = PerImageQuality("fastmri")
    ranges = volume_ranges(ids, x.pow(2).sum(dim=1).sqrt().amax(dim=(-2, -1)))
    quality.update(torch.arange(len(x)), x_hat, x_hat, x, ranges)
    values = quality.compute()
    return values, aggregate(values, "test", "fastmri", ids)


def magnitudes(x: torch.Tensor) -> np.ndarray:
    return x.pow(2).sum(dim=1).sqrt().numpy().astype(np.float32)


def write_folders(tmp_path: Path, volumes: dict, pad: int = 0) -> tuple[Path, Path]:
    """Targets (``reconstruction_rss``) and predictions, the predictions padded by ``pad``."""
    predictions, targets = tmp_path / "predictions", tmp_path / "targets"
    predictions.mkdir()
    targets.mkdir()
    for name, (x, x_hat) in volumes.items():
        with h5py.File(targets / name, "w") as file:
            file["reconstruction_rss"] = magnitudes(x)
            file["kspace"] = np.zeros((1, 2, 2), dtype=np.complex64)  # never read
        # Odd margins: the crop's rounding (top = (H - h) // 2, as fastMRI's) is checked too.
        margins = ((0, 0), (pad, pad + 1), (pad + 1, pad + 2)) if pad else ((0, 0),) * 3
        estimate = np.pad(magnitudes(x_hat), margins, constant_values=7.0)
        with h5py.File(predictions / name, "w") as file:
            file["reconstruction"] = estimate
    return predictions, targets


def test_scores_equal_a_runs_own_fastmri_numbers(tmp_path, capsys):
    volumes = made_up_volumes()
    values, expected = run_metrics(volumes)
    predictions, targets = write_folders(tmp_path, volumes, pad=3)  # cropped back to the target
    out = tmp_path / "o"
    assert main(["--predictions", str(predictions), "--targets", str(targets), "--out", str(out)]) == 0
    assert "over 3 volumes" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test/psnr", "test/psnr_std", "test/ssim", "test/ssim_std", "test/nmse", "test/nmse_std"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-6), key
    assert metrics["test/num_volumes"] == 3 and metrics["num_test_images"] == 9
    assert metrics["metrics_convention"] == "fastmri" and metrics["target_keys"] == ["reconstruction_rss"]
    assert sorted(metrics["cropped"]) == sorted(VOLUMES)
    assert not any("zero_filled" in key for key in metrics)
    # Per volume: the run's numbers for that volume alone.
    alone = run_metrics({"file_b.h5": volumes["file_b.h5"]})[1]
    assert metrics["volumes"]["file_b.h5"]["psnr"] == pytest.approx(alone["test/psnr"], rel=1e-6)
    with open(out / "test_per_image.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["index", "psnr", "ssim", "nmse"] and len(rows) == 9
    np.testing.assert_allclose([float(r["psnr"]) for r in rows], values["psnr"].numpy(), atol=2e-6)
    assert not list(out.glob(".*.tmp"))


def test_a_target_taller_than_wide_is_scored_on_its_central_square_as_fastmri_does(tmp_path):
    volumes = made_up_volumes(size=30)
    predictions, targets = write_folders(tmp_path, volumes)
    for name, (x, _) in volumes.items():  # targets 30 x 24: columns 3..26 of the full image
        with h5py.File(targets / name, "a") as file:
            del file["reconstruction_rss"]
            file["reconstruction_rss"] = magnitudes(x)[:, :, 3:27]
    square = {name: (x[..., 3:27, 3:27], x_hat[..., 3:27, 3:27]) for name, (x, x_hat) in volumes.items()}
    assert main(["--predictions", str(predictions), "--targets", str(targets)]) == 0
    metrics = json.loads((predictions / "metrics.json").read_text())
    assert metrics["test/psnr"] == pytest.approx(run_metrics(square)[1]["test/psnr"], rel=1e-6)
    assert metrics["cropped"]["file_a.h5"] == "prediction 30x30, target 30x24 -> 24x24"


def test_one_volume_of_one_slice_is_scored(tmp_path):
    volumes = {"only.h5": tuple(t[:1] for t in made_up_volumes()["file_c.h5"])}
    predictions, targets = write_folders(tmp_path, volumes)
    assert main(["--predictions", str(predictions), "--targets", str(targets)]) == 0
    metrics = json.loads((predictions / "metrics.json").read_text())
    assert metrics["test/psnr"] == pytest.approx(run_metrics(volumes)[1]["test/psnr"], rel=1e-6)
    assert metrics["test/psnr_std"] == 0.0 and metrics["num_test_images"] == 1


def test_target_key_defaults_to_esc_and_can_be_chosen(tmp_path):
    volumes = made_up_volumes()
    predictions, targets = write_folders(tmp_path, volumes)
    for name, (x, _) in volumes.items():
        with h5py.File(targets / name, "a") as file:
            file["reconstruction_esc"] = 2 * magnitudes(x)  # a different target: different numbers
    args = ["--predictions", str(predictions), "--targets", str(targets)]
    assert main(args) == 0
    default = json.loads((predictions / "metrics.json").read_text())
    assert main([*args, "--key", "reconstruction_rss"]) == 0
    chosen = json.loads((predictions / "metrics.json").read_text())
    assert default["target_keys"] == ["reconstruction_esc"]
    assert chosen["target_keys"] == ["reconstruction_rss"]
    assert chosen["test/psnr"] == pytest.approx(run_metrics(volumes)[1]["test/psnr"], rel=1e-6)
    assert default["test/psnr"] < chosen["test/psnr"] - 3


def _missing_key(predictions, targets):
    with h5py.File(predictions / "file_a.h5", "w") as file:
        file["recon"] = np.zeros((2, 24, 24), dtype=np.float32)


def _one_side_only(predictions, targets):
    (predictions / "file_c.h5").unlink()


def _too_small(predictions, targets):
    with h5py.File(predictions / "file_a.h5", "w") as file:
        file["reconstruction"] = np.zeros((2, 20, 24), dtype=np.float32)


def _slice_count(predictions, targets):
    with h5py.File(predictions / "file_a.h5", "w") as file:
        file["reconstruction"] = np.zeros((1, 24, 24), dtype=np.float32)


def _not_hdf5(predictions, targets):
    (predictions / "file_b.h5").write_bytes(b"not an HDF5 file")


@pytest.mark.parametrize(
    "damage, message",
    [
        (_missing_key, r"file_a\.h5: no 'reconstruction' dataset \(has \['recon'\]\); pass --prediction-key"),
        (_one_side_only, r"1 file\(s\) with a target have no counterpart in .*predictions: file_c\.h5"),
        (_too_small, r"file_a\.h5: slices of 20x24 are smaller than the target's 24x24"),
        (_slice_count, r"file_a\.h5: 1 slices, its target 2"),
        (_not_hdf5, r"file_b\.h5 is not a readable HDF5 file"),
    ],
    ids=["missing-key", "one-side-only", "too-small", "slice-count", "not-hdf5"],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys, damage, message):
    predictions, targets = write_folders(tmp_path, made_up_volumes())
    damage(predictions, targets)
    assert main(["--predictions", str(predictions), "--targets", str(targets)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert re.search(message, error), error
    assert not (predictions / "metrics.json").exists()


@pytest.mark.slow  # a fresh interpreter imports torch: 5-25 s on a shared 2-core machine
def test_runs_as_a_module(tmp_path):
    predictions, targets = write_folders(tmp_path, made_up_volumes())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssmri.evaluation",
            "--predictions",
            str(predictions),
            "--targets",
            str(targets),
            "--key",
            "reconstruction_rss",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((predictions / "metrics.json").read_text())["test/num_volumes"] == 3
