"""Training and inference throughput of every method: ``python -m ssmri.bench`` (``make bench``).

For each loss config and batch size, a fresh subprocess builds MoDL and the loss at the given
image size, times optimiser steps on simulated measurements, counts the FLOPs of one step
with ``FlopCounterMode`` and reports efficiency = FLOPs / (step time x this machine's measured
float32 matrix-multiply rate), plus inference time per image and the process's peak memory.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

CONF = Path(__file__).parent / "conf"


def matmul_rate(size: int = 4096, repeats: int = 5) -> float:
    """This machine's float32 matrix-multiply rate, FLOP/s: the best of a few large products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def build(method: str, size: int):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    from ssmri.physics import SingleCoilMRI

    with initialize_config_module(version_base="1.3", config_module="ssmri.conf"):
        cfg = compose("train", overrides=[f"loss={method}", f"data.image_size={size}"])
    return instantiate(cfg.model), instantiate(cfg.loss), SingleCoilMRI(size, 4)


def measure(method: str, batch_size: int, size: int, steps: int) -> dict:
    """One (method, batch size) measurement, meant to run in its own process."""
    from ssmri.data.phantom import PhantomImages
    from ssmri.losses.base import AdversarialLoss

    torch.manual_seed(0)
    model, loss, physics = build(method, size)
    generator = torch.Generator().manual_seed(0)
    x = PhantomImages(size).images("train", batch_size)
    mask = physics.sample_mask(batch_size, generator)
    y = physics.simulate(x, mask, generator)
    target = x if loss.needs_ground_truth else None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    adversarial = isinstance(loss, AdversarialLoss)
    if adversarial:
        discriminator_optimizer = torch.optim.Adam(loss.discriminator.parameters(), lr=1e-3)

    def step() -> None:
        output = loss(model, physics, y, mask, target, generator)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        if adversarial:
            discriminator_loss = loss.discriminator_loss(physics, y, mask, output, generator)
            discriminator_optimizer.zero_grad(set_to_none=True)
            discriminator_loss.backward()
            discriminator_optimizer.step()

    step()  # warm-up: allocator, kernels, lazy buffers
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        loss.reconstruct(model, physics, y, mask, generator)
        started = time.perf_counter()
        loss.reconstruct(model, physics, y, mask, generator)
        inference = (time.perf_counter() - started) / batch_size
    step_time = statistics.median(times)
    return {
        "method": method,
        "batch_size": batch_size,
        "step_seconds": step_time,
        "images_per_second": batch_size / step_time,
        "step_gflop": counter.get_total_flops() / 1e9,
        "inference_ms_per_image": 1e3 * inference,
        "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    methods = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
    parser.add_argument("--methods", default=",".join(methods))
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default="bench/results.md")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.size, args.steps)))
        return

    rate = matmul_rate()
    rows = []
    for method in args.methods.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            command = [sys.executable, "-m", "ssmri.bench", "--worker", method, str(batch_size),
                       "--size", str(args.size), "--steps", str(args.steps)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                print(f"{method} batch {batch_size}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(result.stdout.strip().splitlines()[-1])
            row["efficiency"] = row["step_gflop"] * 1e9 / (row["step_seconds"] * rate)
            rows.append(row)
            print(f"{method:>14} b={batch_size}: {row['images_per_second']:.2f} img/s, "
                  f"efficiency {100 * row['efficiency']:.0f} %", flush=True)
    write_table(Path(args.out), rows, rate, args.size)


def write_table(path: Path, rows: list[dict], rate: float, size: int) -> None:
    lines = [
        f"# ssmri benchmark ({size}x{size}, R=4, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__})",
        "",
        f"Measured float32 matrix-multiply rate: {rate / 1e9:.0f} GFLOP/s. Efficiency = FLOPs of one "
        "training step (FlopCounterMode) / (median step time x that rate). Peak memory is the "
        "process's maximum resident set.",
        "",
        "| method | batch | images/s | step (s) | GFLOP/step | efficiency | inference (ms/img) | peak memory (GB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['batch_size']} | {r['images_per_second']:.2f} | "
            f"{r['step_seconds']:.3f} | {r['step_gflop']:.1f} | {100 * r['efficiency']:.0f} % | "
            f"{r['inference_ms_per_image']:.1f} | {r['peak_memory_gb']:.2f} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
