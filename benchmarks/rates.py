"""The device's matrix-multiply rate, measured: the yardstick of the benchmark's efficiency.

Measured two ways, because they differ by 2x on AMD CPUs: ``torch.matmul`` on large square
matrices (MKL sgemm on a CPU, which takes a slow path there; cuBLAS on CUDA) and a large 1x1
convolution, which is a plain matrix multiply run by the convolution library (oneDNN on a CPU,
cuDNN on CUDA), in both memory formats (NHWC is oneDNN's fast one with AVX-512, blocked NCHW with
AVX2). The highest of them is "this device's rate".
On CUDA, float32 is measured twice: exact float32 and TF32 (tensor cores), the arithmetic
cuDNN's convolutions use for float32 by default (``torch.backends.cudnn.allow_tf32``).
"""

import contextlib
import itertools

import torch
import torch.nn.functional as F

from benchmarks.timing import synchronizer, timed

#: GEMMs as 1x1 convolutions, ``(batch, channels, side)``: ``(batch side²) x channels`` times
#: ``channels x channels``. On a CPU the first two fit the caches, the last does not; the best
#: of them is the rate the hardware sustains on a matrix product.
GEMM_SHAPES = ((1, 1024, 64), (1, 512, 128), (4, 1024, 64))
#: Square matrix side of ``torch.matmul`` by device type (a GPU needs more work to fill).
MATMUL_SIZES = {"cpu": 4096, "cuda": 8192}


def _best_seconds(run, repeats: int, synchronize=None) -> float:
    timed(run, synchronize)  # warm-up: allocation and kernel selection
    return min(timed(run, synchronize) for _ in range(repeats))


@contextlib.contextmanager
def _tf32(enabled: bool):
    """TF32 on or off for matmuls and convolutions inside the block (restored after)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def matmul_rates(
    matmul_size: int | None = None,
    repeats: int = 5,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    tf32: bool = False,
) -> dict:
    """FLOP/s of ``torch.matmul`` on square matrices and of a 1x1-convolution GEMM in ``dtype``.

    Args:
        matmul_size: side of the square matrices (default :data:`MATMUL_SIZES` of the device).
        repeats: timed repetitions; the best counts.
        dtype: the arithmetic.
        device: ``"cpu"`` or ``"cuda"`` (every timing then waits for the device).
        tf32: on CUDA, float32 through TF32 tensor cores (the ``dtype`` recorded is ``"tfloat32"``).
    """
    device = torch.device(device)
    synchronize = synchronizer(device)
    side = matmul_size or MATMUL_SIZES.get(device.type, 4096)
    with _tf32(tf32) if device.type == "cuda" else contextlib.nullcontext():
        a = torch.randn(side, side, dtype=dtype, device=device)
        b = torch.randn(side, side, dtype=dtype, device=device)
        matmul = 2 * side**3 / _best_seconds(lambda: a @ b, repeats, synchronize)
        conv = 0.0
        like = {"dtype": dtype, "device": device}
        for (batch, channels, width), layout in itertools.product(
            GEMM_SHAPES, (torch.channels_last, torch.contiguous_format)
        ):
            x = torch.randn(batch, channels, width, width, **like).contiguous(memory_format=layout)
            w = torch.randn(channels, channels, 1, 1, **like).contiguous(memory_format=layout)
            flops = 2 * batch * width * width * channels**2
            conv = max(conv, flops / _best_seconds(lambda x=x, w=w: F.conv2d(x, w), repeats, synchronize))
    name = str(dtype).removeprefix("torch.")
    if tf32 and device.type == "cuda" and dtype == torch.float32:
        name = "tfloat32"
    return {
        "dtype": name,
        "device": device.type,
        "matmul": matmul,
        "onednn_conv1x1": conv,
        "rate": max(matmul, conv),
    }


def device_rates(device: str, dtype: torch.dtype | None, repeats: int = 5) -> dict:
    """The rate that a run in ``dtype`` (``None``: float32) is measured against, and the others.

    On CUDA: float32, TF32 and bfloat16 are all measured (``"all"``: dtype name -> rate); a
    float32 run is compared with TF32 when cuDNN uses it for convolutions (the default). On a
    CPU only ``dtype`` is measured.
    """
    device = torch.device(device)
    dtype = dtype or torch.float32
    if device.type != "cuda":
        rates = matmul_rates(repeats=repeats, dtype=dtype, device=str(device))
        return {**rates, "all": {rates["dtype"]: rates["rate"]}}
    measured = {
        "float32": matmul_rates(repeats=repeats, device=str(device)),
        "tfloat32": matmul_rates(repeats=repeats, device=str(device), tf32=True),
        "bfloat16": matmul_rates(repeats=repeats, dtype=torch.bfloat16, device=str(device)),
    }
    if dtype == torch.float32:
        chosen = measured["tfloat32" if torch.backends.cudnn.allow_tf32 else "float32"]
    else:
        chosen = measured.get(str(dtype).removeprefix("torch.")) or matmul_rates(
            repeats=repeats, dtype=dtype, device=str(device)
        )
    return {**chosen, "all": {name: rates["rate"] for name, rates in measured.items()}}
