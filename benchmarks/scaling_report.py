"""``bench/scaling.md`` and ``bench/scaling.png``: step time and memory against pixels, with power-law fits.

A series is one (method, batch size) across image sizes; its slope is the least-squares fit of
``log(step time)`` against ``log(pixels)``: 1 means linear in pixels, 2 quadratic. The data
loader's rate from the cache is set against what a training step consumes (its batch over its
step time): below 1x the loader, not the step, would bound training.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ssmri.atomic import atomic_write, write_text  # noqa: E402


def slope(pixels: list[float], values: list[float]) -> float:
    """The exponent ``k`` of the least-squares fit ``value ∝ pixels^k`` (needs two distinct sizes)."""
    if len(set(pixels)) < 2:
        raise ValueError(f"a slope needs two or more image sizes, got pixels {pixels}")
    if min(values) <= 0 or not all(map(math.isfinite, values)):
        raise ValueError(f"step times must be finite and positive for a log-log fit, got {values}")
    return float(np.polyfit(np.log(pixels), np.log(values), 1)[0])


def series(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """The successful rows grouped by (method, batch size), each sorted by size."""
    grouped: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        if "error" not in row:
            grouped.setdefault((row["method"], row["batch_size"]), []).append(row)
    return {key: sorted(group, key=lambda r: r["size"]) for key, group in sorted(grouped.items())}


def fits(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """Per series: the slopes of step time and of memory above the baseline (``None``: one size only)."""
    result = {}
    for key, group in series(rows).items():
        pixels = [r["size"] ** 2 for r in group]
        enough = len(set(pixels)) >= 2
        above = [r["peak_memory_gib"] - r["baseline_memory_gib"] for r in group]
        result[key] = {
            "time": slope(pixels, [r["step_seconds"] for r in group]) if enough else None,
            "memory": slope(pixels, above) if enough and min(above) > 0 else None,
        }
    return result


def _slope_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render(rows: list[dict], loader: list[dict], settings: dict) -> str:
    """The markdown: machine and settings, the step table, the slopes, the loader table."""
    lines = [
        "# How the cost grows with the image size (`make scaling`)",
        "",
        f"Machine: {settings['machine']}, {settings['threads']} threads; torch {settings['torch']}; "
        f"float32. Each row is a fresh process: {settings['warmup']} warm-up steps, then the median of "
        f"{settings['steps']} timed optimiser steps of MoDL (3 iterations, the 2,070,082-parameter "
        "U-Net) on phantom images. Peak: the process's maximum resident set; *above baseline*: "
        "minus the resident set after imports, before building.",
        "",
        "| method | batch | size | pixels | step (ms) | images/s | peak (GiB) | above baseline (GiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [row["method"], str(row["batch_size"]), f"{row['size']}x{row['size']}", str(row["size"] ** 2)]
        if "error" in row:
            cells += [f"failed: {row['error']}", "", "", ""]
        else:
            cells += [
                f"{1e3 * row['step_seconds']:.0f}",
                f"{row['batch_size'] / row['step_seconds']:.2f}",
                f"{row['peak_memory_gib']:.2f}",
                f"{row['peak_memory_gib'] - row['baseline_memory_gib']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Log-log slopes (time ∝ pixels^k; 1 is linear in pixels):",
        "",
        "| method | batch | step time k | memory above baseline k |",
        "| --- | --- | --- | --- |",
    ]
    for (method, batch_size), fit in fits(rows).items():
        lines.append(
            f"| {method} | {batch_size} | {_slope_text(fit['time'])} | {_slope_text(fit['memory'])} |"
        )
    if loader:
        lines += [
            "",
            f"Data loader from the HDF5 cache (training batches of {loader[0]['batch_size']}, "
            "one epoch after the first batch) against what a `sup` step at that size and batch "
            "consumes:",
            "",
            "| size | workers | slices/s | a step consumes (slices/s) | loader / step |",
            "| --- | --- | --- | --- | --- |",
        ]
        for entry in loader:
            need, rate = entry.get("consumed_per_second"), entry["slices_per_second"]
            cells = [f"{entry['size']}x{entry['size']}", str(entry["num_workers"]), f"{rate:.0f}"]
            cells += [f"{need:.2f}", f"{rate / need:.0f}x"] if need else ["–", "–"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Log-log step time and memory above baseline against pixels, one line per series."""
    figure, (times, memory) = plt.subplots(1, 2, figsize=(10, 4))
    slopes = fits(rows)
    for key, group in series(rows).items():
        pixels = [r["size"] ** 2 for r in group]
        label = f"{key[0]} b={key[1]} (k={_slope_text(slopes[key]['time'])})"
        times.plot(pixels, [r["step_seconds"] for r in group], marker="o", label=label)
        memory.plot(
            pixels,
            [r["peak_memory_gib"] - r["baseline_memory_gib"] for r in group],
            marker="o",
            label=f"{key[0]} b={key[1]}",
        )
    for axis, title in ((times, "training step time (s)"), (memory, "peak memory above baseline (GiB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("pixels per image")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, format="png", dpi=120)
    finally:
        plt.close(figure)


def write_scaling(out: Path, rows: list[dict], loader: list[dict], settings: dict) -> None:
    """``out`` (markdown) and the plot beside it (``.png``)."""
    write_text(out, render(rows, loader, settings))
    plot(rows, out.with_suffix(".png"))
