"""``python -m benchmarks``: every method's training throughput, efficiency and memory, vs DeepInverse.

For each image size, method and batch size, one fresh subprocess measures the ssmri side and
(when an interpreter with DeepInverse 0.5 is found) another measures DeepInverse on the same
work; then the multi-coil rows (``--multicoil-methods`` with ``physics=multicoil``, ``--coils``
birdcage coils, CG data consistency) on our side alone, with the step's time split. The
results, the device's matrix-multiply rates and the targets go to ``bench/results.md`` on a
CPU, ``bench/results-cuda-<size>.md`` on CUDA (128x128 and 320x320, batches 1, 8 and 32).
"""

import argparse
import sys
from pathlib import Path

import torch

from benchmarks import METHODS
from benchmarks.ours import PRECISIONS
from benchmarks.rates import device_rates
from benchmarks.report import compare_with_reference, convolution_breakdown, efficiency, write_bench_results
from benchmarks.worker import REPO_ROOT, emit, module_command, run_worker

REFERENCE_VENV_PYTHON = Path(".venv-reference") / "bin" / "python"
#: Defaults by device type: (image sides, batch sizes, output).
DEFAULTS = {"cpu": ("128", "1,8", "bench/results.md"), "cuda": ("128,320", "1,8,32", "bench/results-cuda.md")}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def output_path(out: str, size: int, sizes: list[int]) -> Path:
    """``out``, or ``<stem>-<size><suffix>`` beside it when several sizes are measured."""
    path = Path(out)
    return path if len(sizes) == 1 else path.with_name(f"{path.stem}-{size}{path.suffix}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated loss configs")
    parser.add_argument(
        "--device",
        default=None,
        choices=["cpu", "cuda"],
        help="where to measure (default: cuda when a GPU is visible, else cpu)",
    )
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,8; CUDA 1,8,32)")
    parser.add_argument(
        "--sizes",
        "--size",
        dest="sizes",
        default=None,
        help="comma-separated image sides (default 128; CUDA 128,320)",
    )
    parser.add_argument("--steps", type=int, default=5, help="timed optimiser steps (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="intra-op threads of every worker (default: torch's default here)",
    )
    parser.add_argument(
        "--precision",
        default="32-true",
        choices=sorted(PRECISIONS),
        help="arithmetic of our side's forward passes (Lightning's names; default 32-true); "
        "efficiency is then against the matrix rate of that dtype, and DeepInverse, "
        "whose FFTs reject bfloat16, is skipped unless 32-true",
    )
    parser.add_argument(
        "--multicoil-methods",
        default="mo_ei,weighted_ssdu",
        help="methods also measured with physics=multicoil (comma-separated; '' for none)",
    )
    parser.add_argument("--coils", type=int, default=4, help="coils of the multi-coil rows (default 4)")
    parser.add_argument(
        "--out",
        default=None,
        help="the table (default bench/results.md; CUDA "
        "bench/results-cuda.md); with several sizes -<size> is added to its name",
    )
    parser.add_argument(
        "--reference-python",
        default=None,
        help="interpreter for the DeepInverse side, or 'none' (default: this one if "
        "`import deepinv` works, else .venv-reference/bin/python if it exists)",
    )
    parser.add_argument("--worker", nargs=3, metavar=("SIDE", "METHOD", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.device = args.device or default_device()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no GPU here (torch.cuda.is_available() is False)")
    sizes, batch_sizes, out = DEFAULTS[args.device]
    args.out = args.out or out
    args.methods = [m for m in args.methods.split(",") if m]
    args.multicoil_methods = [m for m in args.multicoil_methods.split(",") if m]
    try:
        args.batch_sizes = [int(b) for b in (args.batch_sizes or batch_sizes).split(",") if b]
        args.sizes = [int(n) for n in (args.sizes or sizes).split(",") if n]
    except ValueError as error:
        parser.error(f"--batch-sizes and --sizes take comma-separated integers ({error})")
    unknown = sorted(set(args.methods + args.multicoil_methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {METHODS}")
    if (
        not args.sizes
        or not args.batch_sizes
        or min(args.sizes) < 8
        or args.steps < 1
        or args.warmup < 0
        or min(args.batch_sizes) < 1
        or args.coils < 1
    ):
        parser.error("need --sizes >= 8, --steps >= 1, --warmup >= 0, batch sizes >= 1 and --coils >= 1")
    return args


def imports_deepinv(python: str) -> bool:
    """Whether ``python`` can import deepinv and this ssmri (checked in a subprocess)."""
    return run_worker([python, "-c", "import deepinv, benchmarks.reference"], timeout=300).status == 0


def find_reference_python(requested: str | None) -> tuple[str | None, str]:
    """The interpreter for the DeepInverse side and a one-line note on the choice."""
    if requested and requested.lower() == "none":
        return None, "skipped (--reference-python none)."
    if requested:
        if imports_deepinv(requested):
            return requested, f"{requested}."
        return None, f"skipped: {requested} cannot import deepinv and ssmri."
    if imports_deepinv(sys.executable):
        return sys.executable, "this interpreter (same torch on both sides)."
    for candidate in (REFERENCE_VENV_PYTHON, REPO_ROOT / REFERENCE_VENV_PYTHON):
        if candidate.is_file() and imports_deepinv(str(candidate)):
            return str(candidate), f"{candidate} (its own torch: compare peaks with care)."
    return None, (
        "skipped: deepinv imports neither here nor in a .venv-reference (the `bench` "
        "extra needs torchvision, hence torch 2.14.1: see `make bench-reference`)."
    )


def measure_in_worker(
    python: str, side: str, method: str, batch_size: int, args, size: int | None = None
) -> dict:
    """One measurement in a fresh process of ``python``; ``{"error": ...}`` if it failed."""
    run = run_worker(
        module_command(
            "benchmarks",
            "--worker",
            side,
            method,
            str(batch_size),
            "--size",
            str(size or args.sizes[0]),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--threads",
            str(args.threads),
            "--precision",
            args.precision,
            "--device",
            args.device,
            "--coils",
            str(args.coils),
            python=python,
        )
    )
    if run.results:
        return run.results[0]
    print(f"  {side} {method} b={batch_size} failed:\n{run.stderr[-3000:]}", file=sys.stderr)
    return {"error": run.error}


def worker(args) -> None:
    side, method, batch_size = args.worker[0], args.worker[1], int(args.worker[2])
    size = args.sizes[0]
    if side in ("ssmri", "ssmri-multicoil"):
        from benchmarks.ours import interleaved_step_ratio, multicoil_overrides, run

        overrides = multicoil_overrides(args.coils) if side == "ssmri-multicoil" else ()
        result = run(
            method,
            batch_size,
            size,
            args.steps,
            args.warmup,
            args.threads,
            overrides=overrides,
            precision=args.precision,
            device=args.device,
        )
        if overrides:  # after the peak memory was read: the cost against single-coil, side by side
            result.update(
                interleaved_step_ratio(
                    method,
                    batch_size,
                    size,
                    overrides,
                    args.steps,
                    args.warmup,
                    args.threads,
                    args.precision,
                    args.device,
                )
            )
    elif side == "deepinv":
        from benchmarks.reference import run

        result = run(method, batch_size, size, args.steps, args.warmup, args.threads, device=args.device)
    else:
        raise SystemExit(f"unknown side {side!r}")
    emit(result)


def summary(row: dict, rate: float) -> str:
    ours, theirs = row["ssmri"], row["deepinv"]
    text = f"{row['method']:>14} b={row['batch_size']}: "
    text += (
        "failed"
        if "error" in ours
        else (
            f"{ours['images_per_second']:.2f} img/s, efficiency {100 * efficiency(ours, rate):.0f} %, "
            f"peak {ours['peak_memory_gib']:.2f} GiB"
        )
    )
    breakdown = None if "error" in ours else convolution_breakdown(ours, rate)
    if breakdown:
        text += f", {100 * breakdown[0]:.0f} % of the time in convolutions at {100 * breakdown[1]:.0f} %"
    if theirs is not None:
        text += "; DeepInverse "
        text += "failed" if "error" in theirs else f"{theirs['images_per_second']:.2f} img/s"
        if row["ratios"]:
            text += f" ({row['ratios']['speedup']:.2f}x, memory {row['ratios']['memory_ratio']:.2f}x)"
    return text


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    requested = args.reference_python if args.precision == "32-true" else "none"
    reference_python, reference_note = find_reference_python(requested)
    if args.precision != "32-true":
        reference_note = f"skipped ({args.precision}: DeepInverse's FFTs take float32 only)."
    print(f"DeepInverse side: {reference_note}", flush=True)
    torch.set_num_threads(args.threads)
    rates = device_rates(args.device, PRECISIONS[args.precision])
    print(
        f"{args.device}: {rates['dtype']} matmul {rates['matmul'] / 1e9:.0f} GFLOP/s, 1x1 conv "
        f"{rates['onednn_conv1x1'] / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    for size in args.sizes:
        rows = []
        for method in args.methods:
            for batch_size in args.batch_sizes:
                ours = measure_in_worker(sys.executable, "ssmri", method, batch_size, args, size)
                theirs = None
                if reference_python:
                    theirs = measure_in_worker(reference_python, "deepinv", method, batch_size, args, size)
                row = {
                    "method": method,
                    "batch_size": batch_size,
                    "ssmri": ours,
                    "deepinv": theirs,
                    "ratios": compare_with_reference(ours, theirs),
                }
                rows.append(row)
                print(f"{size}x{size} " + summary(row, rates["rate"]), flush=True)
        for method in args.multicoil_methods:
            for batch_size in args.batch_sizes:
                ours = measure_in_worker(sys.executable, "ssmri-multicoil", method, batch_size, args, size)
                row = {
                    "method": method,
                    "batch_size": batch_size,
                    "ssmri": ours,
                    "deepinv": None,
                    "ratios": {},
                    "coils": args.coils,
                }
                rows.append(row)
                print(
                    f"{size}x{size} [multi-coil, {args.coils} coils] " + summary(row, rates["rate"]),
                    flush=True,
                )
        settings = {
            "size": size,
            "steps": args.steps,
            "warmup": args.warmup,
            "threads": args.threads,
            "precision": args.precision,
            "device": args.device,
            "coils": args.coils,
        }
        out = output_path(args.out, size, args.sizes)
        write_bench_results(out, rows, rates, settings, reference_note)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
