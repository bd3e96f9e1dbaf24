"""Figures a person looks at: a run's test images and error maps, a sweep's curves and comparison."""

import csv
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ssmri.atomic import atomic_write  # noqa: E402
from ssmri.evaluation.metrics import psnr  # noqa: E402
from ssmri.physics.fft import magnitude  # noqa: E402


def _save(figure, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` to the PNG ``path`` atomically and close it."""
    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return Path(path)


def save_samples(samples: dict[str, torch.Tensor], path: Path, title: str = "") -> Path:
    """One row per test image: |x|, |Aᴴy|, |x̂| and |x̂ - x| on one colour scale per kind.

    Args:
        samples: ``x``, ``zero_filled`` and ``x_hat``, each ``(N, 2, H, W)``.
        path: the PNG to write (atomically).
    """
    truth, zero_filled, estimate = (magnitude(samples[k]) for k in ("x", "zero_filled", "x_hat"))
    rows = len(truth)
    error_scale = float((estimate - truth).abs().max().clamp_min(1e-6))
    error_scale = max(error_scale, float((zero_filled - truth).abs().max()))
    figure, axes = plt.subplots(rows, 5, figsize=(11, 2.3 * rows + 0.4), squeeze=False)
    zf_psnr, est_psnr = psnr(samples["zero_filled"], samples["x"]), psnr(samples["x_hat"], samples["x"])
    for row in range(rows):
        panels = [
            (truth[row], "ground truth", "gray", 1.0),
            (zero_filled[row], f"zero-filled {zf_psnr[row]:.2f} dB", "gray", 1.0),
            (estimate[row], f"reconstruction {est_psnr[row]:.2f} dB", "gray", 1.0),
            ((zero_filled[row] - truth[row]).abs(), "|zero-filled - truth|", "magma", error_scale),
            ((estimate[row] - truth[row]).abs(), "|reconstruction - truth|", "magma", error_scale),
        ]
        for axis, (image, label, cmap, vmax) in zip(axes[row], panels):
            axis.imshow(image[0].numpy(), cmap=cmap, vmin=0, vmax=vmax)
            axis.set_title(label, fontsize=8)
            axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def validation_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    """``(epochs, val/psnr)`` from a run's CSV log; empty if it has none."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        return [], []
    epochs, values = [], []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("val/psnr"):
                epochs.append(int(float(row["epoch"])) + 1)
                values.append(float(row["val/psnr"]))
    return epochs, values


def save_curves(jobs, path: Path, label=lambda job: job.method) -> None:
    """Validation PSNR against epoch, one line per ``label(job)`` (a table row; mean over seeds)."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    by_method: dict[str, list] = {}
    for job in jobs:
        epochs, values = validation_curve(job.path)
        if epochs:
            by_method.setdefault(label(job), []).append((epochs, values))
    colours = plt.get_cmap("tab20").colors  # twelve methods need more than the default ten
    for number, (method, curves) in enumerate(sorted(by_method.items())):
        length = min(len(c[0]) for c in curves)
        mean = [sum(c[1][i] for c in curves) / len(curves) for i in range(length)]
        axis.plot(
            curves[0][0][:length],
            mean,
            marker="os^D"[number % 4],
            markersize=3,
            label=method,
            color=colours[2 * number % 20 + (number >= 10)],
            linestyle="-" if number < 10 else "--",
        )
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation PSNR (dB)")
    axis.grid(alpha=0.3)
    if by_method:
        axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    _save(figure, path)


def save_sweep_samples(jobs, path: Path, images: int = 2, setting: str = "") -> None:
    """Ground truth, zero-filled and each method's reconstruction and error of the same images.

    ``jobs`` are those of one setting (same physics, so one zero-filled image), named in the title.
    """
    runs = {}
    for job in sorted(jobs, key=lambda j: (-j.metrics["test/psnr"], j.seed or 0)):
        file = job.path / "samples.pt"
        if job.method not in runs and file.is_file():
            runs[job.method] = torch.load(file, weights_only=True)
    if not runs:
        return
    first = next(iter(runs.values()))
    count = min(images, len(first["x"]))
    columns = 2 + len(runs)
    figure, axes = plt.subplots(2 * count, columns, figsize=(1.9 * columns, 3.9 * count), squeeze=False)
    truth = magnitude(first["x"][:count])
    errors = {m: (magnitude(r["x_hat"][:count]) - truth).abs() for m, r in runs.items()}
    errors["zero-filled"] = (magnitude(first["zero_filled"][:count]) - truth).abs()
    # One scale for every map, set by the no-learning baseline: a collapsed method (UAIR's
    # errors reach the whole image range) would otherwise make every other map look black.
    scale = max(float(errors["zero-filled"].max()), 1e-6)
    for i in range(count):
        image_row, error_row = axes[2 * i], axes[2 * i + 1]
        panels = [
            ("ground truth", truth[i], None),
            ("zero-filled", magnitude(first["zero_filled"][i]), errors["zero-filled"][i]),
        ]
        for method, run in runs.items():
            value = psnr(run["x_hat"][i : i + 1], run["x"][i : i + 1]).item()
            panels.append((f"{method}\n{value:.2f} dB", magnitude(run["x_hat"][i]), errors[method][i]))
        for column, (label, image, error) in enumerate(panels):
            image_row[column].imshow(image[0], cmap="gray", vmin=0, vmax=1)
            image_row[column].set_title(label, fontsize=7)
            if error is not None:
                error_row[column].imshow(error[0], cmap="magma", vmin=0, vmax=scale)
        for axis in (*image_row, *error_row):
            axis.axis("off")
    caption = (
        f"{setting + ': ' if setting else ''}same test images for every method; error maps share "
        f"one scale, 0 to {scale:.2f} (the zero-filled error's maximum; larger errors saturate)"
    )
    # Wrapped to the figure's width: a sweep of few methods makes a narrow figure.
    figure.suptitle(textwrap.fill(caption, width=max(50, 16 * columns)), fontsize=9)
    figure.tight_layout()
    _save(figure, path, dpi=90)
