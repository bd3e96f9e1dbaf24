"""``python -m benchmarks.scaling`` (``make scaling``): step time, memory and loading against image size.

For each method, image side and batch size, a fresh process builds the training step as
``make bench`` does (``benchmarks.ours``) and reports the median step time and its peak
resident memory. Then the data loader reads training batches from the HDF5 measurement cache
with 0 and 2 worker processes. ``bench/scaling.md`` and ``bench/scaling.png`` hold the
results and the log-log slope of each series (:mod:`benchmarks.scaling_report`).
Measure on a quiet machine: other processes on the cores distort every figure.
"""

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import METHODS
from benchmarks.harness import peak_memory_gib, resident_memory_gib
from benchmarks.report import cpu_name
from benchmarks.scaling_report import write_scaling
from benchmarks.timing import timed
from benchmarks.worker import emit, module_command, run_worker


def _integers(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", default="sup,mo_ei", help="comma-separated loss configs (default sup,mo_ei)"
    )
    parser.add_argument("--sizes", default="64,128,256,320", help="image sides (default 64,128,256,320)")
    parser.add_argument("--batch-sizes", default="1,4", help="comma-separated (default 1,4)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps, median (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    parser.add_argument("--loader-workers", default="0,2", help="data-loader worker counts (default 0,2)")
    parser.add_argument("--loader-slices", type=int, default=64, help="training slices read per size")
    parser.add_argument("--override", action="append", default=[], help="Hydra override for every build")
    parser.add_argument("--out", default="bench/scaling.md", help="the report; the plot goes beside it")
    parser.add_argument("--cache-dir", default=None, help="measurement caches (default: a temporary folder)")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "BATCH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes, args.batch_sizes = _integers(args.sizes), _integers(args.batch_sizes)
        args.loader_workers = _integers(args.loader_workers)
    except ValueError as error:
        parser.error(f"--sizes, --batch-sizes and --loader-workers take comma-separated integers ({error})")
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {METHODS}")
    if not args.worker and len(set(args.sizes)) < 2:
        parser.error("--sizes needs two or more sizes for a slope")
    if (
        min(args.sizes, default=0) < 8
        or min(args.batch_sizes, default=0) < 1
        or args.steps < 1
        or args.warmup < 0
        or min(args.loader_workers, default=0) < 0
        or args.loader_slices < 1
    ):
        parser.error(
            "need sizes >= 8, batch sizes >= 1, --steps >= 1, --warmup >= 0, "
            "--loader-workers >= 0 and --loader-slices >= 1"
        )
    return args


def measure_step(
    method: str, batch_size: int, size: int, steps: int, warmup: int, overrides: list[str]
) -> dict:
    """Median step time and peak resident memory of one (method, batch, size) in this process."""
    import ssmri.runner.run  # noqa: F401  (Lightning and Hydra in the baseline, as in make bench)
    from benchmarks.ours import build_workload

    baseline = resident_memory_gib()
    workload = build_workload(method, batch_size, size, overrides)
    for index in range(warmup):
        workload.step(index)
    times = [timed(lambda index=index: workload.step(index)) for index in range(warmup, warmup + steps)]
    return {
        "method": method,
        "batch_size": batch_size,
        "size": size,
        "step_seconds": statistics.median(times),
        "step_seconds_all": times,
        "peak_memory_gib": peak_memory_gib(),
        "baseline_memory_gib": baseline,
    }


def measure_in_worker(method: str, batch_size: int, size: int, args) -> dict:
    """:func:`measure_step` in a fresh process (its peak memory is its own); ``error`` if it failed."""
    overrides = [arg for o in args.override for arg in ("--override", o)]
    run = run_worker(
        module_command(
            "benchmarks.scaling",
            "--worker",
            method,
            str(batch_size),
            str(size),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--threads",
            str(args.threads),
            *overrides,
        )
    )
    if run.results:
        return run.results[0]
    return {"method": method, "batch_size": batch_size, "size": size, "error": run.error}


def loader_rate(
    size: int, batch_size: int, num_workers: int, slices: int, cache_dir: Path, overrides: list[str]
) -> float:
    """Training slices per second read from the cache (the first batch, and worker start-up, untimed)."""
    from benchmarks.ours import compose_config
    from ssmri.runner.run import instantiate

    cfg = compose_config(
        "sup",
        size,
        [
            *overrides,
            f"data.num_train={slices}",
            f"data.batch_size={batch_size}",
            f"data.num_workers={num_workers}",
            f"paths.cache_dir={cache_dir}",
        ],
    )
    datamodule = instantiate(cfg.data, physics=instantiate(cfg.physics))
    datamodule.prepare_data()
    datamodule.setup("fit")
    batches = iter(datamodule.train_dataloader())
    next(batches)
    started, read = time.perf_counter(), 0
    for batch in batches:
        read += len(batch.y)
    seconds = time.perf_counter() - started
    if read == 0:
        raise ValueError(f"--loader-slices {slices} gives a single batch of {batch_size}; nothing to time")
    return read / seconds


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        method, batch_size, size = args.worker[0], int(args.worker[1]), int(args.worker[2])
        result = measure_step(method, batch_size, size, args.steps, args.warmup, args.override)
        emit(result)
        return
    rows = []
    for method in args.methods:
        for batch_size in args.batch_sizes:
            for size in args.sizes:
                row = measure_in_worker(method, batch_size, size, args)
                rows.append(row)
                print(
                    f"{method} b={batch_size} {size}x{size}: "
                    + (
                        f"failed: {row['error']}"
                        if "error" in row
                        else f"{1e3 * row['step_seconds']:.0f} ms/step, peak {row['peak_memory_gib']:.2f} GiB"
                    ),
                    flush=True,
                )
    steps = {
        (r["size"], r["batch_size"]): r["step_seconds"]
        for r in rows
        if r["method"] == "sup" and "error" not in r
    }
    loader_batch = max(args.batch_sizes)
    loader = []
    with tempfile.TemporaryDirectory(prefix="ssmri-scaling-") as temporary:
        cache_dir = Path(args.cache_dir or temporary)
        for size in args.sizes:
            for workers in args.loader_workers:
                rate = loader_rate(size, loader_batch, workers, args.loader_slices, cache_dir, args.override)
                step = steps.get((size, loader_batch))
                loader.append(
                    {
                        "size": size,
                        "num_workers": workers,
                        "batch_size": loader_batch,
                        "slices_per_second": rate,
                        "consumed_per_second": loader_batch / step if step else None,
                    }
                )
                print(f"loader {size}x{size}, {workers} workers: {rate:.0f} slices/s", flush=True)
    settings = {
        "machine": cpu_name() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    write_scaling(Path(args.out), rows, loader, settings)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")


if __name__ == "__main__":
    main()
