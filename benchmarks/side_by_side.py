"""``python -m benchmarks.side_by_side`` (``make bench-side-by-side``): both sides in one process.

``make bench`` measures each side in a fresh process, one after the other, which gives each its
own peak memory but lets the machine's load at two different times into the throughput ratio.
This command builds both sides' workloads for one (method, batch size) in the same process
(``benchmarks.ours`` and ``benchmarks.reference``, the very same work as ``make bench``) and
takes their optimiser steps in turn (:func:`benchmarks.harness.alternate`), so both run on
the same machine at the same moment and on the same torch; then their inference passes, in
turn too (Noise2Inverse: N = 20 split reconstructions per image, DeepInverse's one after
another). It needs DeepInverse importable: run it in ``.venv-reference``. It writes a table of
median step and inference times and the ratios (ssmri's throughput over DeepInverse's) to
``bench/side-by-side.md``.
"""

import argparse
from pathlib import Path

import torch

from benchmarks.harness import alternate
from benchmarks.report import cpu_name
from ssmri.atomic import write_text
from ssmri.models.modl import prefers_channels_last

#: ssmri's throughput at least this multiple of DeepInverse's (the CPU target of the benchmark).
THROUGHPUT_TARGET = 1.0


#: The method whose inference differs from one reconstruction, and the target it has.
SPLIT_INFERENCE = "noise2inverse"


def measure_pair(
    method: str, batch_size: int, size: int, steps: int, warmup: int, inference_runs: int = 3
) -> dict:
    """Median step (and inference) time of each side for one (method, batch size), taken in turn."""
    from benchmarks import ours, reference

    workloads = {
        "ssmri": ours.build_workload(method, batch_size, size),
        "deepinv": reference.build_workload(method, batch_size, size),
    }
    medians = alternate(workloads, steps, warmup)
    row = {
        "method": method,
        "batch_size": batch_size,
        "ssmri_step_seconds": medians["ssmri"],
        "deepinv_step_seconds": medians["deepinv"],
        "throughput_ratio": medians["deepinv"] / medians["ssmri"],
    }
    if inference_runs:
        inference = alternate(workloads, inference_runs, warmup=1, phase="infer")
        row.update(
            {
                "ssmri_inference_seconds": inference["ssmri"] / batch_size,
                "deepinv_inference_seconds": inference["deepinv"] / batch_size,
                "inference_ratio": inference["deepinv"] / inference["ssmri"],
            }
        )
    return row


def _milliseconds(row: dict, key: str) -> str:
    return f"{1e3 * row[key]:.0f}" if key in row else "-"


def render(rows: list[dict], settings: dict) -> str:
    """The markdown report: one row per (method, batch size) and the targets' verdicts."""
    lines = [
        f"# ssmri against DeepInverse {settings['deepinv']}, side by side in one process",
        "",
        f"Machine: {settings['machine']}, {settings['threads']} threads; torch {settings['torch']} "
        f"for both sides; {settings['layout'] + '; ' if 'layout' in settings else ''}"
        f"{settings['size']}x{settings['size']}, Gaussian masks R = 4, MoDL (3 "
        "iterations). Both sides' workloads are built in one process and their optimiser steps "
        f"taken in turn: {settings['warmup']} warm-up steps each, then the median of "
        f"{settings['steps']} timed steps each; then their inference passes in turn (one warm-up, "
        "the median of the rest), per image. *Ratio*: ssmri's throughput over DeepInverse's "
        f"(target >= {THROUGHPUT_TARGET:.1f}x).",
        "",
        "| method | batch | ssmri step (ms) | DeepInverse step (ms) | ratio | ssmri inference "
        "(ms/image) | DeepInverse inference (ms/image) | inference ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        inference_ratio = f"{row['inference_ratio']:.2f}x" if "inference_ratio" in row else "-"
        lines.append(
            f"| {row['method']} | {row['batch_size']} | {_milliseconds(row, 'ssmri_step_seconds')} | "
            f"{_milliseconds(row, 'deepinv_step_seconds')} | {row['throughput_ratio']:.2f}x | "
            f"{_milliseconds(row, 'ssmri_inference_seconds')} | "
            f"{_milliseconds(row, 'deepinv_inference_seconds')} | {inference_ratio} |"
        )
    lines += [
        "",
        f"- Throughput at least {THROUGHPUT_TARGET:.1f}x DeepInverse's: {_verdict(rows, 'throughput_ratio')}",
    ]
    split_rows = [r for r in rows if r["method"] == SPLIT_INFERENCE and "inference_ratio" in r]
    if split_rows:
        lines.append(
            "- Noise2Inverse inference no slower than DeepInverse's sequential passes: "
            f"{_verdict(split_rows, 'inference_ratio')}"
        )
    return "\n".join([*lines, ""])


def _verdict(rows: list[dict], key: str) -> str:
    missed = [r for r in rows if r[key] < THROUGHPUT_TARGET]
    if not missed:
        return "**met**"
    return "**not met**: " + ", ".join(f"{r['method']} b={r['batch_size']} ({r[key]:.3f}x)" for r in missed)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.side_by_side", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--methods", default="sup,mc,ssdu,weighted_ssdu", help="comma-separated loss configs")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated (default 1,8)")
    parser.add_argument("--size", type=int, default=128, help="image side (default 128)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    parser.add_argument(
        "--inference-runs",
        type=int,
        default=3,
        help="timed inference passes per side after one warm-up (0: none)",
    )
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--out", default="bench/side-by-side.md", help="the report")
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    if not args.methods or not args.batch_sizes:
        parser.error("--methods and --batch-sizes need at least one value each")
    if args.inference_runs < 0:
        parser.error(f"--inference-runs must be >= 0, got {args.inference_runs}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        import deepinv
    except ImportError:
        raise SystemExit(
            "error: DeepInverse is not importable here; run this in the reference environment "
            "(`make bench-side-by-side`, which uses .venv-reference from `make test-reference`)"
        ) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {
        "deepinv": deepinv.__version__,
        "machine": cpu_name(),
        "layout": f"ssmri's U-Net trains in {'NHWC' if prefers_channels_last() else 'NCHW'} and infers "
        "in NHWC, as model.channels_last=null chooses here",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": args.size,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    rows = []
    for method in args.methods:
        for batch_size in args.batch_sizes:
            row = measure_pair(method, batch_size, args.size, args.steps, args.warmup, args.inference_runs)
            rows.append(row)
            inference = f"; inference {row['inference_ratio']:.2f}x" if "inference_ratio" in row else ""
            print(
                f"{method} b={batch_size}: ssmri {1e3 * row['ssmri_step_seconds']:.0f} ms, DeepInverse "
                f"{1e3 * row['deepinv_step_seconds']:.0f} ms per step, {row['throughput_ratio']:.2f}x"
                f"{inference}",
                flush=True,
            )
            write_text(Path(args.out), render(rows, settings))  # what is measured so far survives a stop
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
