"""This machine's float32 matrix-multiply rate, the efficiency arithmetic and ``bench/results.md``.

Efficiency = FLOPs of one training step (``FlopCounterMode``) / (median step time x rate).
The rate is measured two ways, because they differ by 2x on AMD CPUs: ``torch.matmul``
(MKL sgemm, which takes a slow path there) and a large 1x1 convolution in channels_last,
which is a plain matrix multiply run by oneDNN, the library that runs our convolutions. The
higher of the two is "this machine's rate"; the table shows both.
"""

import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ssmri.atomic import write_json, write_text

#: (description, batch size, what is compared, threshold); see :func:`target_lines`.
TARGETS = (
    ("efficiency >= 85 % at batch 1", 1, "efficiency", 0.85),
    ("efficiency >= 75 % at batch 8", 8, "efficiency", 0.75),
    ("throughput >= 1.0x DeepInverse at batch 1", 1, "speedup", 1.0),
    ("throughput >= 1.4x DeepInverse at batch 8", 8, "speedup", 1.4),
    ("peak memory <= DeepInverse's", None, "memory_ratio", 1.0),
)


def _best_seconds(run, repeats: int) -> float:
    run()  # warm-up: allocation and kernel selection
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


#: oneDNN GEMMs as 1x1 convolutions, ``(batch, channels, side)``: ``(batch side²) x channels``
#: times ``channels x channels``. The first two fit this class of CPU's caches, the last does not;
#: the best of them is the rate the hardware sustains on a matrix product.
GEMM_SHAPES = ((1, 1024, 64), (1, 512, 128), (4, 1024, 64))


def matmul_rates(matmul_size: int = 4096, repeats: int = 5, dtype: torch.dtype = torch.float32) -> dict:
    """FLOP/s of ``torch.matmul`` on square matrices and of oneDNN's GEMM (1x1 conv) in ``dtype``."""
    a = torch.randn(matmul_size, matmul_size, dtype=dtype)
    b = torch.randn(matmul_size, matmul_size, dtype=dtype)
    matmul = 2 * matmul_size**3 / _best_seconds(lambda: a @ b, repeats)
    conv = 0.0
    nhwc = torch.channels_last
    for batch, channels, side in GEMM_SHAPES:
        x = torch.randn(batch, channels, side, side, dtype=dtype).contiguous(memory_format=nhwc)
        w = torch.randn(channels, channels, 1, 1, dtype=dtype).contiguous(memory_format=nhwc)
        flops = 2 * batch * side * side * channels**2
        conv = max(conv, flops / _best_seconds(lambda x=x, w=w: F.conv2d(x, w), repeats))
    return {"dtype": str(dtype).removeprefix("torch."), "matmul": matmul, "onednn_conv1x1": conv,
            "rate": max(matmul, conv)}


def efficiency(row: dict, rate: float) -> float:
    """FLOPs of one step / (median step time x rate), as a fraction."""
    return row["step_gflop"] * 1e9 / (row["step_seconds"] * rate)


def convolution_breakdown(row: dict, rate: float) -> tuple[float, float] | None:
    """(share of the step's time in convolution kernels, their own efficiency), if measured.

    The step's efficiency is at most about their product with the convolutions' share of the
    FLOPs: what the convolution library reaches bounds what any code around it can.
    """
    if not row.get("conv_seconds") or not row.get("profiled_step_seconds"):
        return None
    share = row["conv_seconds"] / row["profiled_step_seconds"]
    return share, row["conv_gflop"] * 1e9 / (row["conv_seconds"] * rate)


def compare(ours: dict, theirs: dict | None) -> dict:
    """Ratios of one (method, batch) against DeepInverse: speedup and memory ratio."""
    if not theirs or "error" in theirs or "error" in ours:
        return {}
    return {
        "speedup": ours["images_per_second"] / theirs["images_per_second"],
        "memory_ratio": ours["peak_memory_gib"] / theirs["peak_memory_gib"],
    }


def target_lines(rows: list[dict], rate: float, reference_ran: bool) -> list[str]:
    """One line per target: met, not met (with the misses), or not measured."""
    lines = []
    for description, batch_size, key, threshold in TARGETS:
        selected = [r for r in rows if batch_size is None or r["batch_size"] == batch_size]
        if key != "efficiency" and not reference_ran:
            lines.append(f"- {description}: not measured (DeepInverse side skipped)")
            continue
        values = {}  # None where a side failed
        for r in selected:
            if key == "efficiency":
                value = None if "error" in r["ssmri"] else efficiency(r["ssmri"], rate)
            else:
                value = r["ratios"].get(key)
            values[f"{r['method']} b={r['batch_size']}"] = value
        if not values:
            lines.append(f"- {description}: not measured (batch size not run)")
            continue
        below = key != "memory_ratio"
        missed = {k: v for k, v in values.items()
                  if v is None or (v < threshold if below else v > threshold)}
        if not missed:
            lines.append(f"- {description}: **met**")
            continue
        shown = ", ".join(f"{k} ({'failed' if v is None else _format(key, v, precise=True)})"
                          for k, v in missed.items())
        lines.append(f"- {description}: **not met**: {shown}")
    return lines


def _format(key: str, value: float, precise: bool = False) -> str:
    """A table cell; ``precise`` adds a digit, so a miss never reads as the threshold itself."""
    if key == "efficiency":
        return f"{100 * value:.{1 if precise else 0}f} %"
    return f"{value:.{3 if precise else 2}f}x"


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _succeeded(rows: list[dict], side: str) -> list[dict]:
    return [r[side] for r in rows if r[side] and "error" not in r[side]]


def _versions(rows: list[dict]) -> str:
    versions = {f"ssmri side torch {r['torch']}" for r in _succeeded(rows, "ssmri")}
    versions |= {f"DeepInverse side torch {r['torch']}, deepinv {r.get('deepinv', '?')}"
                 for r in _succeeded(rows, "deepinv")}
    return "; ".join(sorted(versions, reverse=True))


def _cells(row: dict, rate: float, reference_ran: bool) -> list[str]:
    ours, theirs = row["ssmri"], row["deepinv"]
    cells = [row["method"], str(row["batch_size"])]
    if "error" in ours:
        cells += ["failed"] + [""] * 7
    else:
        breakdown = convolution_breakdown(ours, rate)
        cells += [
            f"{ours['images_per_second']:.2f}", f"{1e3 * ours['step_seconds']:.0f}",
            f"{ours['step_gflop']:.1f}", f"{100 * efficiency(ours, rate):.0f} %",
            *([f"{100 * breakdown[0]:.0f} %", f"{100 * breakdown[1]:.0f} %"] if breakdown else ["–", "–"]),
            f"{ours['inference_ms_per_image']:.1f}", f"{ours['peak_memory_gib']:.2f}",
        ]
    if not reference_ran:
        return cells
    if not theirs or "error" in theirs:
        return cells + ["failed" if theirs else "n/a"] + [""] * 5
    ratios = row["ratios"]
    return cells + [
        f"{theirs['images_per_second']:.2f}", f"{theirs['step_gflop']:.1f}",
        f"{theirs['inference_ms_per_image']:.1f}", f"{theirs['peak_memory_gib']:.2f}",
        f"{ratios['speedup']:.2f}x" if ratios else "", f"{ratios['memory_ratio']:.2f}x" if ratios else "",
    ]


def render(rows: list[dict], rates: dict, settings: dict, reference_note: str) -> str:
    """The markdown of ``bench/results.md``.

    Args:
        rows: one dict per (method, batch): ``method``, ``batch_size``, ``ssmri`` (a worker
            result or ``{"error": ...}``), ``deepinv`` (the same, or ``None`` when skipped)
            and ``ratios`` (:func:`compare`).
        rates: :func:`matmul_rates`.
        settings: ``size``, ``steps``, ``warmup``, ``threads``.
        reference_note: how the DeepInverse side ran, or why it did not.
    """
    multicoil = [r for r in rows if r.get("coils")]
    rows = [r for r in rows if not r.get("coils")]
    rate, size = rates["rate"], settings["size"]
    dtype, precision = rates.get("dtype", "float32"), settings.get("precision", "32-true")
    reference_ran = any(r["deepinv"] is not None for r in rows)
    lines = [
        f"# Training and inference benchmark: {size}x{size}, Gaussian masks R = 4, MoDL "
        "(3 iterations, 2,070,082-parameter U-Net), Adam lr 1e-3",
        "",
        f"Machine: {_cpu_name()}, {settings['threads']} threads; {_versions(rows)}.",
        "",
        f"Precision: {precision} (our side's forward passes). {dtype.capitalize()} matrix-multiply "
        f"rate: torch.matmul (4096x4096) {rates['matmul'] / 1e9:.0f} "
        f"GFLOP/s; oneDNN GEMM (best 1x1 convolution of {len(GEMM_SHAPES)} shapes, channels_last) "
        f"{rates['onednn_conv1x1'] / 1e9:.0f} GFLOP/s. Efficiency uses the higher, {rate / 1e9:.0f} "
        "GFLOP/s: FLOPs of one full training step (FlopCounterMode: convolutions and matrix "
        "products) / (median step time x that rate).",
        "",
        "Where the time goes (one more step under torch's profiler): *conv time* is the share of "
        "the step spent in the convolution kernels (aten convolution operators, forward and "
        "backward), *conv efficiency* their FLOPs / (their time x the rate). The step's efficiency "
        "cannot exceed the conv efficiency by much (convolutions are nearly all of the FLOPs), so "
        "a low conv efficiency is the convolution library's ceiling on this machine, and a low "
        "conv time is overhead in the code around it.",
        "",
        f"Each row is one fresh process per side: {settings['warmup']} warm-up steps, then the median "
        f"of {settings['steps']} timed optimiser steps (generator and discriminator steps for the "
        "adversarial methods). Inference: the method's rule without gradients (Noise2Inverse averages "
        "N = 20 splits), per image. Peak memory: the process's maximum resident set (ru_maxrss), "
        "imports included. DeepInverse side: " + reference_note,
        "",
    ]
    header = ["method", "batch", "images/s", "step (ms)", "GFLOP/step", "efficiency", "conv time",
              "conv efficiency", "inference (ms/img)", "peak (GiB)"]
    if reference_ran:
        header += ["DI images/s", "DI GFLOP/step", "DI inference (ms/img)", "DI peak (GiB)",
                   "throughput vs DI", "memory vs DI"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cells(r, rate, reference_ran)) + " |" for r in rows]
    baselines = [
        f"{side} {min(r['baseline_memory_gib'] for r in _succeeded(rows, side)):.2f} GiB"
        for side in ("ssmri", "deepinv") if _succeeded(rows, side)
    ]
    if baselines:
        lines += ["", "Resident memory after imports, before building (part of every peak): "
                  + ", ".join(baselines) + "."]
    notes = {r["method"]: r["deepinv"]["notes"] for r in rows
             if r["deepinv"] and r["deepinv"].get("notes")}
    if notes:
        lines += ["", "DeepInverse mapping notes:"] + [f"- {m}: {n}." for m, n in notes.items()]
    lines += ["", f"Targets (CPU, {precision}):"] + target_lines(rows, rate, reference_ran)
    if multicoil:
        lines += [""] + multicoil_lines(multicoil, rows)
    return "\n".join(lines) + "\n"


#: A multi-coil step may cost at most this many single-coil steps (same method and batch).
MULTICOIL_STEP_RATIO = 1.5


def multicoil_lines(multicoil: list[dict], single: list[dict]) -> list[str]:
    """The multi-coil section: throughput, the step's time split and the cost vs single-coil."""
    coils = multicoil[0]["coils"]
    lines = [
        f"## Multi-coil ({coils} birdcage coils, CG data consistency)",
        "",
        "Shares of one profiled step: *U-Net* and *CG* are the forward passes of MoDL's denoiser "
        "and of its conjugate-gradient data consistency (CG's FFTs included; backward passes are "
        "not attributed), *FFTs* every FFT kernel forward and backward, *convolutions* the "
        "convolution kernels forward and backward. *vs single-coil*: step time over the "
        f"single-coil row of the same method and batch (target <= {MULTICOIL_STEP_RATIO}x).",
        "",
        "| method | batch | images/s | step (ms) | U-Net | CG | FFTs | convolutions | vs single-coil |",
        "|" + " --- |" * 9,
    ]
    ratios = {}
    for row in multicoil:
        ours = row["ssmri"]
        if "error" in ours:
            lines.append(f"| {row['method']} | {row['batch_size']} | failed |" + " |" * 6)
            continue
        wall = ours["profiled_step_seconds"]
        shares = [ours.get(key, 0.0) / wall for key in
                  ("unet_forward_seconds", "cg_forward_seconds", "fft_seconds", "conv_seconds")]
        match = [r["ssmri"] for r in single if r["method"] == row["method"]
                 and r["batch_size"] == row["batch_size"] and "error" not in r["ssmri"]]
        ratio = ours["step_seconds"] / match[0]["step_seconds"] if match else None
        ratios[f"{row['method']} b={row['batch_size']}"] = ratio
        lines.append(
            f"| {row['method']} | {row['batch_size']} | {ours['images_per_second']:.2f} | "
            f"{1e3 * ours['step_seconds']:.0f} | " + " | ".join(f"{100 * s:.0f} %" for s in shares)
            + f" | {'–' if ratio is None else f'{ratio:.2f}x'} |"
        )
    measured = {k: v for k, v in ratios.items() if v is not None}
    if not measured:
        verdict = "not measured (no single-coil row of the same method and batch)"
    else:
        missed = {k: v for k, v in measured.items() if v > MULTICOIL_STEP_RATIO}
        verdict = "**met**" if not missed else "**not met**: " + ", ".join(
            f"{k} ({v:.3f}x)" for k, v in missed.items())
    lines += ["", f"- Multi-coil step at most {MULTICOIL_STEP_RATIO}x the single-coil one: {verdict}"]
    return lines


def write_results(path: Path, rows: list[dict], rates: dict, settings: dict, reference_note: str) -> None:
    """``results.md`` at ``path`` and the raw rows beside it as ``<stem>.json`` (git-ignored)."""
    write_text(path, render(rows, rates, settings, reference_note))
    raw = {"rates": rates, "settings": settings, "reference": reference_note, "rows": rows}
    write_json(path.with_suffix(".json"), raw)
