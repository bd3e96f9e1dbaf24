"""The efficiency arithmetic, the targets and the table of ``bench/results.md`` (CPU or CUDA).

Efficiency = FLOPs of one training step (``FlopCounterMode``) / (median step time x rate), the
rate being the device's measured matrix-multiply rate (:mod:`benchmarks.rates`); the table
shows both ways it is measured. On CUDA the U-Net's own share of the step and its rate are
shown too (:mod:`benchmarks.denoiser`).
"""

import platform
from pathlib import Path

import torch

from benchmarks.rates import GEMM_SHAPES, matmul_rates  # noqa: F401  (matmul_rates: re-exported)
from ssmri.atomic import write_json, write_text

#: (description, batch size, what is compared, threshold); see :func:`target_lines`.
TARGETS = (
    ("efficiency >= 85 % at batch 1", 1, "efficiency", 0.85),
    ("efficiency >= 75 % at batch 8", 8, "efficiency", 0.75),
    ("throughput >= 1.0x DeepInverse at batch 1", 1, "speedup", 1.0),
    ("throughput >= 1.4x DeepInverse at batch 8", 8, "speedup", 1.4),
    ("peak memory <= DeepInverse's", None, "memory_ratio", 1.0),
)
#: The GPU target: (size, batch size, precision, least U-Net efficiency against the bf16 rate).
UNET_TARGET = (320, 32, "bf16-mixed", 0.5)


def unet_share(row: dict, rate: float) -> tuple[float, float] | None:
    """(the U-Net's share of the step's time, its FLOPs / (its time x rate)), if it was timed."""
    if not row.get("unet_seconds"):
        return None
    return row["unet_seconds"] / row["step_seconds"], row["unet_gflop"] * 1e9 / (row["unet_seconds"] * rate)


def unet_target_line(rows: list[dict], rate: float, settings: dict) -> str:
    """The GPU target on the U-Net's rate: met, not met (with the value) or not measured."""
    size, batch_size, precision, threshold = UNET_TARGET
    description = (
        f"U-Net at >= {100 * threshold:.0f} % of the bfloat16 matrix rate at {size}x{size}, "
        f"batch {batch_size}, {precision}"
    )
    if settings.get("size") != size or settings.get("precision") != precision:
        return (
            f"- {description}: not measured (this table: {settings.get('size')}x{settings.get('size')}, "
            f"{settings.get('precision')})"
        )
    values = {
        r["method"]: None if "error" in r["ssmri"] else unet_share(r["ssmri"], rate)
        for r in rows
        if r["batch_size"] == batch_size
    }
    if not values:
        return f"- {description}: not measured (batch {batch_size} not run)"
    missed = {m: v for m, v in values.items() if v is None or v[1] < threshold}
    if not missed:
        return f"- {description}: **met**"
    shown = ", ".join(f"{m} ({'failed' if v is None else f'{100 * v[1]:.1f} %'})" for m, v in missed.items())
    return f"- {description}: **not met**: {shown}"


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


def compare_with_reference(ours: dict, theirs: dict | None) -> dict:
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
        missed = {k: v for k, v in values.items() if v is None or (v < threshold if below else v > threshold)}
        if not missed:
            lines.append(f"- {description}: **met**")
            continue
        shown = ", ".join(
            f"{k} ({'failed' if v is None else _format(key, v, precise=True)})" for k, v in missed.items()
        )
        lines.append(f"- {description}: **not met**: {shown}")
    return lines


def _format(key: str, value: float, precise: bool = False) -> str:
    """A table cell; ``precise`` adds a digit, so a miss never reads as the threshold itself."""
    if key == "efficiency":
        return f"{100 * value:.{1 if precise else 0}f} %"
    return f"{value:.{3 if precise else 2}f}x"


def cpu_name() -> str:
    """The CPU's model name and the vector instructions torch's kernels use on it, e.g. "AMD EPYC
    (AVX2)": machines that share a name (Zen 3, 4 and 5 all read "AMD EPYC") differ in the second."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


def _succeeded(rows: list[dict], side: str) -> list[dict]:
    return [r[side] for r in rows if r[side] and "error" not in r[side]]


def _versions(rows: list[dict]) -> str:
    versions = {f"ssmri side torch {r['torch']}" for r in _succeeded(rows, "ssmri")}
    versions |= {
        f"DeepInverse side torch {r['torch']}, deepinv {r.get('deepinv', '?')}"
        for r in _succeeded(rows, "deepinv")
    }
    return "; ".join(sorted(versions, reverse=True))


def _percentages(pair: tuple[float, float]) -> list[str]:
    return [f"{100 * pair[0]:.0f} %", f"{100 * pair[1]:.0f} %"]


def _cells(row: dict, rate: float, reference_ran: bool, unet: bool = False) -> list[str]:
    ours, theirs = row["ssmri"], row["deepinv"]
    cells = [row["method"], str(row["batch_size"])]
    if "error" in ours:
        cells += ["failed"] + [""] * (9 if unet else 7)
    else:
        breakdown = convolution_breakdown(ours, rate)
        share = unet_share(ours, rate)
        cells += [
            f"{ours['images_per_second']:.2f}",
            f"{1e3 * ours['step_seconds']:.0f}",
            f"{ours['step_gflop']:.1f}",
            f"{100 * efficiency(ours, rate):.0f} %",
            *([f"{100 * breakdown[0]:.0f} %", f"{100 * breakdown[1]:.0f} %"] if breakdown else ["–", "–"]),
            *((_percentages(share) if share else ["–", "–"]) if unet else []),
            f"{ours['inference_ms_per_image']:.1f}",
            f"{ours['peak_memory_gib']:.2f}",
        ]
    if not reference_ran:
        return cells
    if not theirs or "error" in theirs:
        return cells + ["failed" if theirs else "n/a"] + [""] * 5
    ratios = row["ratios"]
    return cells + [
        f"{theirs['images_per_second']:.2f}",
        f"{theirs['step_gflop']:.1f}",
        f"{theirs['inference_ms_per_image']:.1f}",
        f"{theirs['peak_memory_gib']:.2f}",
        f"{ratios['speedup']:.2f}x" if ratios else "",
        f"{ratios['memory_ratio']:.2f}x" if ratios else "",
    ]


def render(rows: list[dict], rates: dict, settings: dict, reference_note: str) -> str:
    """The markdown of ``bench/results.md``.

    Args:
        rows: one dict per (method, batch): ``method``, ``batch_size``, ``ssmri`` (a worker
            result or ``{"error": ...}``), ``deepinv`` (the same, or ``None`` when skipped)
            and ``ratios`` (:func:`compare_with_reference`).
        rates: :func:`matmul_rates`.
        settings: ``size``, ``steps``, ``warmup``, ``threads``.
        reference_note: how the DeepInverse side ran, or why it did not.
    """
    multicoil = [r for r in rows if r.get("coils")]
    rows = [r for r in rows if not r.get("coils")]
    rate, size = rates["rate"], settings["size"]
    dtype, precision = rates.get("dtype", "float32"), settings.get("precision", "32-true")
    reference_ran = any(r["deepinv"] is not None for r in rows)
    on_cuda = rates.get("device") == "cuda"
    unet = any("unet_seconds" in r["ssmri"] for r in rows)
    gpus = sorted({r["device"] for r in _succeeded(rows, "ssmri") if r.get("device", "cpu") != "cpu"})
    machine = f"{cpu_name()}, {settings['threads']} threads"
    if on_cuda:
        machine = f"{', '.join(gpus) or 'CUDA GPU'} (CUDA)"
    blas, convolutions = ("cuBLAS", "cuDNN") if on_cuda else ("MKL", "oneDNN")
    others = ", ".join(f"{name} {value / 1e12:.1f} TFLOP/s" for name, value in rates.get("all", {}).items())
    lines = [
        f"# Training and inference benchmark: {size}x{size}, Gaussian masks R = 4, MoDL "
        "(3 iterations, 2,070,082-parameter U-Net), Adam lr 1e-3",
        "",
        f"Machine: {machine}; {_versions(rows)}.",
        "",
        f"Precision: {precision} (our side's forward passes). {dtype.capitalize()} matrix-multiply "
        f"rate: torch.matmul ({blas}) {rates['matmul'] / 1e9:.0f} "
        f"GFLOP/s; {convolutions} GEMM (best 1x1 convolution of {len(GEMM_SHAPES)} shapes, "
        "either memory format) "
        f"{rates['onednn_conv1x1'] / 1e9:.0f} GFLOP/s. Efficiency uses the higher, {rate / 1e9:.0f} "
        "GFLOP/s: FLOPs of one full training step (FlopCounterMode: convolutions and matrix "
        "products) / (median step time x that rate)."
        + (f" All rates measured: {others}." if on_cuda else ""),
        "",
        "Where the time goes (one more step under torch's profiler): *conv time* is the share of "
        "the step spent in the convolution kernels (aten convolution operators, forward and "
        "backward), *conv efficiency* their FLOPs / (their time x the rate). The step's efficiency "
        "cannot exceed the conv efficiency by much (convolutions are nearly all of the FLOPs), so "
        "a low conv efficiency is the convolution library's ceiling on this machine, and a low "
        "conv time is overhead in the code around it."
        + (
            " *U-Net share*: the U-Net's calls of one step (recorded, then replayed alone, forward "
            "and backward) over the step's time; *U-Net efficiency*: their FLOPs / (their time x the "
            "rate)."
            if unet
            else ""
        ),
        "",
        f"Each row is one fresh process per side: {settings['warmup']} warm-up steps, then the median "
        f"of {settings['steps']} timed optimiser steps (generator and discriminator steps for the "
        "adversarial methods)"
        + (", each timed between torch.cuda.synchronize calls" if on_cuda else "")
        + ". Inference: the method's rule without gradients (Noise2Inverse averages "
        "N = 20 splits), per image. "
        + (
            "Peak memory: torch.cuda.max_memory_allocated (tensors on the GPU). "
            if on_cuda
            else "Peak memory: the process's maximum resident set (ru_maxrss), imports included. "
        )
        + "DeepInverse side: "
        + reference_note,
        "",
    ]
    header = [
        "method",
        "batch",
        "images/s",
        "step (ms)",
        "GFLOP/step",
        "efficiency",
        "conv time",
        "conv efficiency",
        *(["U-Net share", "U-Net efficiency"] if unet else []),
        "inference (ms/img)",
        "peak (GiB)",
    ]
    if reference_ran:
        header += [
            "DI images/s",
            "DI GFLOP/step",
            "DI inference (ms/img)",
            "DI peak (GiB)",
            "throughput vs DI",
            "memory vs DI",
        ]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cells(r, rate, reference_ran, unet)) + " |" for r in rows]
    baselines = [
        f"{side} {min(r['baseline_memory_gib'] for r in _succeeded(rows, side)):.2f} GiB"
        for side in ("ssmri", "deepinv")
        if _succeeded(rows, side)
    ]
    if baselines:
        what = (
            "GPU memory allocated before building"
            if on_cuda
            else "Resident memory after imports, before building (part of every peak)"
        )
        lines += ["", f"{what}: " + ", ".join(baselines) + "."]
    notes = {r["method"]: r["deepinv"]["notes"] for r in rows if r["deepinv"] and r["deepinv"].get("notes")}
    if notes:
        lines += ["", "DeepInverse mapping notes:"] + [f"- {m}: {n}." for m, n in notes.items()]
    lines += ["", f"Targets ({'CUDA' if on_cuda else 'CPU'}, {precision}):"]
    lines += target_lines(rows, rate, reference_ran)
    if on_cuda:
        lines.append(unet_target_line(rows, rates.get("all", {}).get("bfloat16", rate), settings))
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
        "convolution kernels forward and backward. *vs single-coil, interleaved*: the median "
        "multi-coil step over the median single-coil step of the same method and batch, timed "
        "alternately in one process, so that both see the same machine (this is what the target "
        f"<= {MULTICOIL_STEP_RATIO}x is judged on); *separate rows*: this row's step time over the "
        "single-coil row's above, measured in another process at another time.",
        "",
        "| method | batch | images/s | step (ms) | U-Net | CG | FFTs | convolutions "
        "| vs single-coil, interleaved | vs single-coil, separate rows |",
        "|" + " --- |" * 10,
    ]
    ratios = {}
    for row in multicoil:
        ours = row["ssmri"]
        if "error" in ours:
            lines.append(f"| {row['method']} | {row['batch_size']} | failed |" + " |" * 7)
            continue
        wall = ours["profiled_step_seconds"]
        shares = [
            ours.get(key, 0.0) / wall
            for key in ("unet_forward_seconds", "cg_forward_seconds", "fft_seconds", "conv_seconds")
        ]
        match = [
            r["ssmri"]
            for r in single
            if r["method"] == row["method"]
            and r["batch_size"] == row["batch_size"]
            and "error" not in r["ssmri"]
        ]
        separate = ours["step_seconds"] / match[0]["step_seconds"] if match else None
        interleaved = ours.get("interleaved_ratio")
        judged = interleaved if interleaved is not None else separate
        ratios[f"{row['method']} b={row['batch_size']}"] = judged
        lines.append(
            f"| {row['method']} | {row['batch_size']} | {ours['images_per_second']:.2f} | "
            f"{1e3 * ours['step_seconds']:.0f} | "
            + " | ".join(f"{100 * s:.0f} %" for s in shares)
            + "".join(f" | {'–' if r is None else f'{r:.2f}x'}" for r in (interleaved, separate))
            + " |"
        )
    measured = {k: v for k, v in ratios.items() if v is not None}
    if not measured:
        verdict = "not measured (no interleaved ratio and no single-coil row of the same method and batch)"
    else:
        missed = {k: v for k, v in measured.items() if v > MULTICOIL_STEP_RATIO}
        verdict = (
            "**met**"
            if not missed
            else "**not met**: " + ", ".join(f"{k} ({v:.3f}x)" for k, v in missed.items())
        )
    lines += ["", f"- Multi-coil step at most {MULTICOIL_STEP_RATIO}x the single-coil one: {verdict}"]
    return lines


def write_bench_results(
    path: Path, rows: list[dict], rates: dict, settings: dict, reference_note: str
) -> None:
    """``results.md`` at ``path`` and the raw rows beside it as ``<stem>.json`` (git-ignored)."""
    write_text(path, render(rows, rates, settings, reference_note))
    raw = {"rates": rates, "settings": settings, "reference": reference_note, "rows": rows}
    write_json(path.with_suffix(".json"), raw)
