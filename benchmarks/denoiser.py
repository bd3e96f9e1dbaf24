"""The U-Net's own share of a training step: its calls recorded in one step, then replayed alone.

During the step whose FLOPs are counted, a forward hook records every call of the workload's
denoiser (input shape, memory format, whether gradients were on). Those calls are then replayed
on random inputs of the same shapes, under the step's autocast, forward and (for the calls that
had gradients) backward, and timed like the step. The replay's time over the step's time is the
U-Net's share; its FLOPs over its time, against the matrix rate, say how well the convolutions
use the device, apart from the FFTs, data consistency, transforms and optimiser around them.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.timing import timed

#: Timed replays of the recorded calls (after one untimed).
REPLAYS = 3


@dataclass(frozen=True)
class DenoiserCall:
    """One call of the denoiser as a step made it."""

    shape: tuple[int, ...]
    channels_last: bool
    grad: bool


def record_calls(denoiser: torch.nn.Module, calls: list[DenoiserCall]):
    """A forward pre-hook appending each call to ``calls``; returns its handle (remove it after)."""

    def hook(module, inputs):
        x = inputs[0]
        nhwc = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        calls.append(DenoiserCall(tuple(x.shape), nhwc, torch.is_grad_enabled()))

    return denoiser.register_forward_pre_hook(hook)


def replay(
    denoiser: torch.nn.Module, calls: list[DenoiserCall], forward_context: Callable, device: torch.device
) -> Callable[[], None]:
    """A closure running ``calls`` on fixed random inputs: forwards under the autocast, one backward."""
    rng = torch.Generator().manual_seed(0)
    inputs = []
    for call in calls:
        x = torch.randn(call.shape, generator=rng).to(device)
        inputs.append(x.contiguous(memory_format=torch.channels_last) if call.channels_last else x)

    def run() -> None:
        total = None
        with forward_context():
            for call, x in zip(calls, inputs):
                with torch.set_grad_enabled(call.grad):
                    output = denoiser(x)
                if call.grad:
                    total = output.float().sum() if total is None else total + output.float().sum()
        if total is not None:
            total.backward()  # outside autocast, as Lightning's mixed precision runs it
        denoiser.zero_grad(set_to_none=True)

    return run


def denoiser_share(
    workload, counter: FlopCounterMode, warmup: int, steps: int, synchronize: Callable[[], None] | None
) -> dict:
    """Step ``warmup`` under ``counter`` (recording the denoiser's calls), then time their replay.

    Returns ``unet_calls``, ``unet_seconds`` (median replay) and ``unet_gflop``, or ``{}`` when
    the workload names no denoiser or the step never called it.
    """
    calls: list[DenoiserCall] = []
    handle = record_calls(workload.denoiser, calls) if workload.denoiser is not None else None
    try:
        with counter:
            workload.step(warmup)
    finally:
        if handle is not None:
            handle.remove()
    if not calls:
        return {}
    device = next(workload.denoiser.parameters()).device
    run = replay(workload.denoiser, calls, workload.forward_context, device)
    run()  # untimed: kernel selection for these shapes
    replay_counter = FlopCounterMode(display=False)
    with replay_counter:
        run()
    seconds = statistics.median(timed(run, synchronize) for _ in range(max(1, min(steps, REPLAYS))))
    return {
        "unet_calls": len(calls),
        "unet_seconds": seconds,
        "unet_gflop": replay_counter.get_total_flops() / 1e9,
    }
