"""What both benchmark workers share: the data, the timing protocol, FLOP counting and memory.

A worker (``ours`` or ``reference``) builds its side's model, loss and optimiser for one
(method, batch size) and hands :func:`measure` two closures: one full optimiser step and the
method's inference on the batch. :func:`measure` then runs warm-up steps, counts the FLOPs of
one step with ``FlopCounterMode``, times ``steps`` more steps and a few inference passes, and
reads the peak memory (the process's resident set on a CPU, ``torch.cuda.max_memory_allocated``
on CUDA, where every timed call is bracketed by ``torch.cuda.synchronize``), so both sides are
timed by the very same code.
One further step runs under torch's profiler to split the step's time between the
convolution and FFT kernels, MoDL's U-Net and CG forward scopes and everything else, which
tells whether a gap to the machine's matrix rate lies in the convolution library or in the
code around it. When the workload names its denoiser, :mod:`benchmarks.denoiser` times the
U-Net's own share of the step (its recorded calls replayed alone).
"""

import resource
import statistics
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.denoiser import denoiser_share
from benchmarks.timing import synchronizer, timed

#: Inference passes timed per measurement (Noise2Inverse at batch 8 is 160 MoDL passes).
INFERENCE_RUNS = 3


@dataclass
class Workload:
    """One side's work for one (method, batch size).

    Attributes:
        step: one full optimiser step (generator and discriminator steps for adversarial
            methods); called with the step's index, which seeds its random choices.
        infer: the method's inference rule on the batch, without gradients.
        notes: how this side was mapped, when it is not the obvious one (shown in the table).
        denoiser: the network inside the reconstruction whose share of the step is timed
            (``None``: not timed).
        forward_context: the autocast the step's forward passes run under.
    """

    step: Callable[[int], None]
    infer: Callable[[], Tensor]
    notes: str = ""
    denoiser: torch.nn.Module | None = None
    forward_context: Callable = nullcontext


def alternate(
    workloads: dict[str, "Workload"],
    steps: int,
    warmup: int,
    synchronize: Callable[[], None] | None = None,
    phase: str = "step",
) -> dict[str, float]:
    """Median time of each workload's ``phase``, the workloads taken in turn: one of each, then again.

    Two measurements made in separate processes minutes apart also compare what else the
    machine was doing at those times (on a shared 2-core machine the same measurement moved by
    25 % between runs); taken in turn, after each workload's own warm-up, both see the same
    machine, and the ratio of the medians is what one workload costs against the other.

    Args:
        phase: ``"step"`` (an optimiser step, given its index) or ``"infer"`` (the method's
            inference on the batch).
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    if phase not in ("step", "infer"):
        raise ValueError(f"phase must be 'step' or 'infer', got {phase!r}")

    def call(workload: Workload, index: int) -> Callable[[], object]:
        return partial(workload.step, index) if phase == "step" else workload.infer

    for index in range(warmup):
        for workload in workloads.values():
            call(workload, index)()
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for index in range(warmup, warmup + steps):
        for name, workload in workloads.items():
            times[name].append(timed(call(workload, index), synchronize))
    return {name: statistics.median(values) for name, values in times.items()}


def phantom_batch(size: int, batch_size: int, split: str = "train") -> Tensor:
    """``(B, 2, H, W)`` complex phantom images, the same on both sides."""
    from ssmri.data.phantom import PhantomImages

    return PhantomImages(size).images(split, batch_size)


def resident_memory_gib() -> float:
    """The process's current resident set (GiB); the peak where /proc is unavailable."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() / 2**30
    return peak_memory_gib()


def peak_memory_gib() -> float:
    """The process's peak resident set, ``ru_maxrss`` (KiB on Linux, bytes on macOS), in GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def convolution_flops(counter: FlopCounterMode) -> float:
    """FLOPs of the convolutions (forward and backward) among those ``counter`` counted."""
    totals = counter.get_flop_counts().get("Global", {})
    return float(sum(count for op, count in totals.items() if "convolution" in str(op)))


def step_time_split(
    step: Callable[[int], None], index: int, synchronize: Callable[[], None] | None = None
) -> dict[str, float]:
    """One step under the profiler: its wall time and where it went, in seconds.

    ``conv`` and ``fft`` are the self times of the aten convolution and FFT operators (forward
    and backward): on a CPU their threads run inside the call; on CUDA it is the device time of
    the kernels they launched. ``unet`` and ``cg`` are the forward passes of MoDL's denoiser and
    of its conjugate-gradient data consistency (the ``ssmri::unet`` and ``ssmri::cg`` scopes,
    their FFTs included; on CUDA the device time of the kernels inside them); their backward
    passes are not attributed. The profiler's own overhead is in the wall time, so shares err low.
    """
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if synchronize else [])
    with profile(activities=activities) as profiler:
        wall = timed(lambda: step(index), synchronize)
    events = profiler.key_averages()
    self_attr, total_attr = (
        ("self_device_time_total", "device_time_total")
        if synchronize
        else ("self_cpu_time_total", "cpu_time_total")
    )

    def self_time(word: str) -> float:
        kernels = (e for e in events if e.key.startswith("aten::") and word in e.key)
        return sum(getattr(e, self_attr) for e in kernels) / 1e6

    def scope_time(name: str) -> float:
        return sum(getattr(e, total_attr) for e in events if e.key == name) / 1e6

    return {
        "wall": wall,
        "conv": self_time("convolution"),
        "fft": self_time("fft"),
        "unet": scope_time("ssmri::unet"),
        "cg": scope_time("ssmri::cg"),
    }


def measure(
    build: Callable[[], Workload],
    *,
    side: str,
    method: str,
    batch_size: int,
    size: int,
    steps: int,
    warmup: int,
    threads: int | None = None,
    precision: str = "32-true",
    device: str = "cpu",
) -> dict:
    """Time one workload; meant to run in a fresh process so that the peak memory is its own.

    Args:
        build: makes the :class:`Workload` (model, loss, optimisers, data); not timed.
        side: ``"ssmri"`` or ``"deepinv"``, recorded in the result.
        method, batch_size, size: what is measured, recorded in the result.
        steps: timed optimiser steps; the step time is their median.
        warmup: untimed steps first (allocator, oneDNN kernel selection, lazy buffers).
        threads: intra-op threads for this process (``None``: torch's default).
        precision: the workload's arithmetic (Lightning's name), recorded in the result.
        device: where the workload runs (``"cpu"`` or ``"cuda"``); on CUDA every timing waits
            for the device and the peak is the allocator's, ``torch.cuda.max_memory_allocated``.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    synchronize = synchronizer(device)
    on_cuda = synchronize is not None
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device) / 2**30 if on_cuda else resident_memory_gib()
    workload = build()
    for index in range(warmup):
        workload.step(index)
    counter = FlopCounterMode(display=False)
    share = denoiser_share(workload, counter, warmup, steps, synchronize)
    times = [
        timed(lambda index=index: workload.step(index), synchronize)
        for index in range(warmup + 1, warmup + 1 + steps)
    ]
    split = step_time_split(workload.step, warmup + 1 + steps, synchronize)
    workload.infer()  # warm-up of the evaluation-mode kernels
    inference = [timed(workload.infer, synchronize) for _ in range(min(steps, INFERENCE_RUNS))]
    step_seconds = statistics.median(times)
    return {
        "side": side,
        "method": method,
        "batch_size": batch_size,
        "size": size,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "precision": precision,
        "step_seconds": step_seconds,
        "step_seconds_all": times,
        "images_per_second": batch_size / step_seconds,
        "step_gflop": counter.get_total_flops() / 1e9,
        "conv_gflop": convolution_flops(counter) / 1e9,
        "profiled_step_seconds": split["wall"],
        "conv_seconds": split["conv"],
        "fft_seconds": split["fft"],
        "unet_forward_seconds": split["unet"],
        "cg_forward_seconds": split["cg"],
        "inference_ms_per_image": 1e3 * statistics.median(inference) / batch_size,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda else peak_memory_gib(),
        "baseline_memory_gib": baseline,
        "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
        "notes": workload.notes,
        **share,
    }
