"""The repository's benchmark tools (``make bench``, ``scaling``, ``gpu-check``, ``bench-side-by-side``).

Not part of the installed library: run from the repository root (``python -m benchmarks``). They
import ``ssmri``; ``ssmri`` never imports them. Reports go to ``bench/``.

``__main__`` is the throughput table against DeepInverse (``bench/results.md``), ``scaling`` the
cost against image size, ``side_by_side`` both sides stepped in turn in one process and
``gpu_check`` every GPU path (its in-process checks in ``gpu_worker``). Underneath: ``worker``
starts each measurement in a fresh process and reads its result back; ``ours`` and
``reference`` build the same work in ssmri and DeepInverse 0.5; ``harness`` is the timing, FLOP
and memory protocol both share, on ``timing``, ``denoiser`` (the U-Net's share of a step) and
``rates`` (the device's matrix-multiply rate); ``report`` and ``scaling_report`` write the tables.
"""

from pathlib import Path

#: Every loss config of this checkout: the methods each tool measures or checks by default.
LOSS_CONFIGS = Path(__file__).resolve().parents[1] / "ssmri" / "conf" / "loss"
METHODS = sorted(p.stem for p in LOSS_CONFIGS.glob("*.yaml"))
