"""Score a folder of reconstructions against fastMRI-layout targets, whoever made them.

``python -m ssmri.evaluation --predictions <folder> --targets <folder>`` reads, per file name
present in both folders, the prediction's ``reconstruction`` ``(slices, H, W)`` (fastMRI's
submission layout, also written by DIRECT and by ``predict.py``) and the target's
``reconstruction_esc`` or ``reconstruction_rss``. The numbers are a run's
``metrics.convention=fastmri`` numbers (:mod:`ssmri.evaluation.conventions`): data range = the target
volume's maximum, PSNR and NMSE per volume, SSIM per slice with a 7x7 uniform window, then the
mean over volumes. As fastMRI's own ``evaluate.py`` does, both volumes are centre-cropped to a
square of the target's width first (fastMRI's targets are 320x320: a larger prediction is
cropped to them).
Writes ``metrics.json`` and ``test_per_image.csv`` as a run does.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from ssmri.atomic import write_json
from ssmri.data.checks import open_hdf5
from ssmri.errors import DataError, is_user_error, one_line
from ssmri.evaluation.conventions import aggregate
from ssmri.evaluation.metrics import PerImageQuality, check_metrics
from ssmri.report import write_per_image

log = logging.getLogger(__name__)

#: Target datasets tried in this order when no ``--key`` is given: fastMRI's single-coil
#: challenge scores against ESC, the multi-coil one against RSS (its files hold only RSS).
TARGET_KEYS = ("reconstruction_esc", "reconstruction_rss")


def centre_crop(volume: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height x width`` block of the last two axes of ``volume``."""
    top, left = (volume.shape[-2] - height) // 2, (volume.shape[-1] - width) // 2
    return volume[..., top : top + height, left : left + width]


def read_volume(path: Path, key: str, folder_key: str, fix: str) -> np.ndarray:
    """``(slices, H, W)`` float32 magnitudes of dataset ``key`` in ``path`` (complex: its modulus)."""
    with open_hdf5(path, folder_key) as file:
        if key not in file:
            raise DataError(f"{path}: no {key!r} dataset (has {sorted(file)}); {fix}")
        volume = file[key][()]
    if volume.ndim != 3:
        raise DataError(f"{path}: {key!r} has shape {volume.shape}, expected (slices, H, W)")
    return np.abs(volume).astype(np.float32) if np.iscomplexobj(volume) else volume.astype(np.float32)


def target_key(path: Path, key: str | None) -> str:
    """``key``, or the first of :data:`TARGET_KEYS` the target file holds."""
    if key is not None:
        return key
    with open_hdf5(path, "--targets") as file:
        found = next((k for k in TARGET_KEYS if k in file), None)
        if found is None:
            raise DataError(
                f"{path}: none of {list(TARGET_KEYS)} (has {sorted(file)}); "
                f"pass --key <the dataset that holds the target>"
            )
    return found


def paired_files(predictions: Path, targets: Path) -> list[str]:
    """The ``.h5`` names both folders hold; any name on one side only is an error."""
    for folder, flag in ((predictions, "--predictions"), (targets, "--targets")):
        if not folder.is_dir():
            raise DataError(f"{flag} {str(folder)!r} is not a folder; pass the folder of .h5 files")
    predicted = {p.name for p in predictions.glob("*.h5")}
    expected = {p.name for p in targets.glob("*.h5")}
    if not expected:
        raise DataError(f"--targets {str(targets)!r} holds no .h5 files")
    for missing, side, other in (
        (expected - predicted, predictions, "a target"),
        (predicted - expected, targets, "a prediction"),
    ):
        if missing:
            names = sorted(missing)
            listed = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
            raise DataError(
                f"{len(names)} file(s) with {other} have no counterpart in {side}: "
                f"{listed}; give folders that hold the same file names"
            )
    return sorted(expected)


def as_complex_channels(volume: np.ndarray) -> torch.Tensor:
    """``(S, H, W)`` magnitudes -> ``(S, 2, H, W)``, the complex layout the metrics take."""
    magnitudes = torch.from_numpy(np.ascontiguousarray(volume))
    return torch.stack((magnitudes, torch.zeros_like(magnitudes)), dim=1)


def evaluate_folders(
    predictions: Path, targets: Path, key: str | None = None, prediction_key: str = "reconstruction"
) -> tuple[dict, dict]:
    """``(metrics, per_image)`` of every prediction against its target, fastMRI convention."""
    predictions, targets = Path(predictions).expanduser(), Path(targets).expanduser()
    quality = PerImageQuality("fastmri")
    volume_ids: list[str] = []
    keys_used, cropped, volumes = set(), {}, {}
    for name in paired_files(predictions, targets):
        used = target_key(targets / name, key)
        target = read_volume(targets / name, used, "--targets", "pass --key <the target dataset>")
        estimate = read_volume(
            predictions / name,
            prediction_key,
            "--predictions",
            "pass --prediction-key <the dataset that holds the reconstruction>",
        )
        if len(estimate) != len(target):
            raise DataError(
                f"{predictions / name}: {len(estimate)} slices, its target {len(target)}; "
                f"a prediction must hold every slice of its volume"
            )
        # fastMRI's evaluate.py scores the central (target width)² square of both volumes.
        width = target.shape[-1]
        height = min(target.shape[-2], width)
        if estimate.shape[-2] < height or estimate.shape[-1] < width:
            raise DataError(
                f"{predictions / name}: slices of {estimate.shape[-2]}x{estimate.shape[-1]} "
                f"are smaller than the target's {height}x{width} ({used!r}); nothing to crop"
            )
        if estimate.shape[-2:] != (height, width) or target.shape[-2:] != (height, width):
            cropped[name] = (
                f"prediction {estimate.shape[-2]}x{estimate.shape[-1]}, target "
                f"{target.shape[-2]}x{target.shape[-1]} -> {height}x{width}"
            )
            estimate, target = centre_crop(estimate, height, width), centre_crop(target, height, width)
        keys_used.add(used)
        first = len(volume_ids)
        volume_ids += [name] * len(target)
        # PerImageQuality scores a second estimate beside each reconstruction (a run's
        # zero-filled); reconstructions from elsewhere have none, so the prediction fills that
        # slot and the copies are dropped below.
        estimate_t, target_t = as_complex_channels(estimate), as_complex_channels(target)
        data_range = torch.full((len(target),), float(target.max()))
        quality.update(torch.arange(first, len(volume_ids)), estimate_t, estimate_t, target_t, data_range)
        volumes[name] = {"first_index": first, "slices": len(target), "target_key": used}
    # One image comes back as 0-d tensors: per image means one value per row, always.
    values = {key: value.reshape(-1) for key, value in quality.compute().items()}
    summary = _without_zero_filled(aggregate(values, "test", "fastmri", volume_ids))
    for volume in volumes.values():
        members = torch.arange(volume["first_index"], volume["first_index"] + volume["slices"])
        per_volume = aggregate({k: v[members] for k, v in values.items()}, "test", "fastmri", volume_ids)
        volume.update({m: per_volume[f"test/{m}"] for m in ("psnr", "ssim", "nmse")})
    for name, change in cropped.items():
        log.info("%s: centre-cropped as fastMRI's evaluate.py does: %s", name, change)
    metrics = {
        **summary,
        "metrics_convention": "fastmri",
        "num_test_images": len(volume_ids),
        "predictions": str(predictions),
        "targets": str(targets),
        "prediction_key": prediction_key,
        "target_keys": sorted(keys_used),
        "cropped": cropped,
        "volumes": volumes,
    }
    check_metrics(metrics)
    return metrics, _without_zero_filled(values)


def _without_zero_filled(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if "_zero_filled" not in k}


def write_outputs(out: Path, metrics: dict, per_image: dict) -> None:
    """``metrics.json`` and ``test_per_image.csv`` in ``out``, atomically, as a run writes them."""
    out = Path(out).expanduser()
    write_per_image(out / "test_per_image.csv", per_image)
    write_json(out / "metrics.json", metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ssmri.evaluation",
        description="Score reconstructions (HDF5 'reconstruction', fastMRI's submission layout) "
        "against fastMRI-layout targets with the fastmri metric convention.",
    )
    parser.add_argument("--predictions", required=True, type=Path, help="folder of <name>.h5 predictions")
    parser.add_argument("--targets", required=True, type=Path, help="folder of <name>.h5 targets")
    parser.add_argument(
        "--key", default=None, help="target dataset (default: reconstruction_esc, else reconstruction_rss)"
    )
    parser.add_argument("--prediction-key", default="reconstruction", help="prediction dataset")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for metrics.json and test_per_image.csv (default: --predictions)",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        metrics, per_image = evaluate_folders(
            arguments.predictions, arguments.targets, arguments.key, arguments.prediction_key
        )
        out = arguments.out or arguments.predictions
        write_outputs(out, metrics, per_image)
    except Exception as error:
        if not is_user_error(error):
            raise
        print(one_line(error), file=sys.stderr)
        return 1
    print(
        f"PSNR {metrics['test/psnr']:.3f} dB, SSIM {metrics['test/ssim']:.4f}, NMSE "
        f"{metrics['test/nmse']:.4f} over {int(metrics['test/num_volumes'])} volumes; wrote "
        f"{Path(out) / 'metrics.json'}"
    )
    return 0
