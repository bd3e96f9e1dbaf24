"""Timing on any device: what waits for its queued work, and a call's seconds between two waits.

The lowest layer of the benchmark tools: the protocol (:mod:`benchmarks.harness`), the U-Net
replay (:mod:`benchmarks.denoiser`) and the rate measurements (:mod:`benchmarks.rates`) all time
through it, and it imports none of them.
"""

import time
from collections.abc import Callable

import torch


def synchronizer(device: torch.device | str) -> Callable[[], None] | None:
    """What waits for ``device``'s queued work: ``torch.cuda.synchronize`` on CUDA, else nothing."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None


def timed(call: Callable[[], object], synchronize: Callable[[], None] | None = None) -> float:
    """Seconds that ``call`` takes, waiting for the device before and after when ``synchronize``."""
    if synchronize:
        synchronize()
    started = time.perf_counter()
    call()
    if synchronize:
        synchronize()
    return time.perf_counter() - started
