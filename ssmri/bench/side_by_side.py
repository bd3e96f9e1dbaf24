"""``python -m ssmri.bench.side_by_side`` (``make bench-side-by-side``): both sides in one process.

``make bench`` measures each side in a fresh process, one after the other, which gives each its
own peak memory but lets the machine's load at two different times into the throughput ratio.
This command builds both sides' workloads for one (method, batch size) in the same process
(``ssmri.bench.ours`` and ``ssmri.bench.reference``, the very same work as ``make bench``) and
takes their optimiser steps in turn (:func:`ssmri.bench.harness.alternate`), so both run on
the same machine at the same moment and on the same torch. It needs DeepInverse importable:
run it in ``.venv-reference``. It writes a table of median step times and the ratio (ssmri's
throughput over DeepInverse's) to ``bench/side-by-side.md``.
"""

import argparse
import platform
from pathlib import Path

import torch

from ssmri.atomic import write_text
from ssmri.bench.harness import alternate
from ssmri.bench.report import cpu_name

#: ssmri's throughput at least this multiple of DeepInverse's (the CPU target of the benchmark).
THROUGHPUT_TARGET = 1.0


def measure_pair(method: str, batch_size: int, size: int, steps: int, warmup: int) -> dict:
    """Median step time of each side for one (method, batch size), their steps taken in turn."""
    from ssmri.bench import ours, reference

    medians = alternate(
        {
            "ssmri": ours.build_workload(method, batch_size, size),
            "deepinv": reference.build_workload(method, batch_size, size),
        },
        steps,
        warmup,
    )
    return {
        "method": method,
        "batch_size": batch_size,
        "ssmri_step_seconds": medians["ssmri"],
        "deepinv_step_seconds": medians["deepinv"],
        "throughput_ratio": medians["deepinv"] / medians["ssmri"],
    }


def render(rows: list[dict], settings: dict) -> str:
    """The markdown report: one row per (method, batch size) and the target's verdict."""
    lines = [
        f"# ssmri against DeepInverse {settings['deepinv']}, side by side in one process",
        "",
        f"Machine: {settings['machine']}, {settings['threads']} threads; torch {settings['torch']} "
        f"for both sides; {settings['size']}x{settings['size']}, Gaussian masks R = 4, MoDL (3 "
        "iterations). Both sides' workloads are built in one process and their optimiser steps "
        f"taken in turn: {settings['warmup']} warm-up steps each, then the median of "
        f"{settings['steps']} timed steps each. *Ratio*: ssmri's throughput over DeepInverse's "
        f"(target >= {THROUGHPUT_TARGET:.1f}x).",
        "",
        "| method | batch | ssmri step (ms) | DeepInverse step (ms) | ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['batch_size']} | {1e3 * row['ssmri_step_seconds']:.0f} | "
            f"{1e3 * row['deepinv_step_seconds']:.0f} | {row['throughput_ratio']:.2f}x |"
        )
    missed = [r for r in rows if r["throughput_ratio"] < THROUGHPUT_TARGET]
    verdict = "**met**" if not missed else "**not met**: " + ", ".join(
        f"{r['method']} b={r['batch_size']} ({r['throughput_ratio']:.3f}x)" for r in missed
    )
    lines += ["", f"- Throughput at least {THROUGHPUT_TARGET:.1f}x DeepInverse's: {verdict}", ""]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ssmri.bench.side_by_side", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--methods", default="sup,mc,ssdu,weighted_ssdu", help="comma-separated loss configs")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated (default 1,8)")
    parser.add_argument("--size", type=int, default=128, help="image side (default 128)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--out", default="bench/side-by-side.md", help="the report")
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    if not args.methods or not args.batch_sizes:
        parser.error("--methods and --batch-sizes need at least one value each")
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
    rows = []
    for method in args.methods:
        for batch_size in args.batch_sizes:
            row = measure_pair(method, batch_size, args.size, args.steps, args.warmup)
            rows.append(row)
            print(f"{method} b={batch_size}: ssmri {1e3 * row['ssmri_step_seconds']:.0f} ms, DeepInverse "
                  f"{1e3 * row['deepinv_step_seconds']:.0f} ms per step, {row['throughput_ratio']:.2f}x",
                  flush=True)
    settings = {
        "deepinv": deepinv.__version__, "machine": cpu_name() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "size": args.size,
        "steps": args.steps, "warmup": args.warmup,
    }
    write_text(Path(args.out), render(rows, settings))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
