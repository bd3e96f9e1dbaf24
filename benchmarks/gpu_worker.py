"""The in-process checks of ``make gpu-check``, each run by it in a fresh subprocess.

``fast_dev_run`` trains every named loss for one batch through ``ssmri.runner.run.train`` on the
device in one precision, while hooks record the dtype of every FFT's input
(``torch.fft.*``), of every data-consistency output (the ``*consistency*`` functions of
``ssmri.models.modl``) and of every conjugate-gradient solve inside multi-coil data consistency
(the :mod:`ssmri.models.cg` functions MoDL calls): mixed precision must leave all of them in
float32. ``noise2inverse`` checks
that its batched inference (all splits in one pass by default on CUDA) equals the sequential
passes. Each result is one line on stdout (:func:`benchmarks.worker.emit`), so that the parent
reports every loss even when a later one crashes the process.
"""

import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from benchmarks.worker import emit

#: What an FFT may be given (two float32 per complex number) and what data consistency may return.
FFT_DTYPES = {torch.complex64, torch.float32}
DC_DTYPES = {torch.float32}
#: The FFTs of torch.fft that a hook wraps (those present in this torch).
FFT_NAMES = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft2", "irfft2")


def report(name: str, passed: bool, detail: str) -> None:
    """One check's result, for the parent."""
    emit({"name": name, "passed": passed, "detail": detail})


def one_line(error: BaseException) -> str:
    """The error's type and first line of message (the report is one line per check)."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}".strip()


@contextmanager
def recorded_dtypes() -> Iterator[dict[str, set]]:
    """Within the block, every FFT input's, data-consistency output's and CG solution's dtype is recorded."""
    import ssmri.models.modl as modl

    seen: dict[str, set] = {"fft": set(), "dc": set(), "cg": set()}
    patched = []

    def wrap(owner, name: str, key: str, inputs: bool) -> None:
        original = getattr(owner, name)

        def recording(*args, **kwargs):
            if inputs:
                seen[key].add(args[0].dtype)
            result = original(*args, **kwargs)
            if not inputs:
                seen[key].add(result.dtype)
            return result

        setattr(owner, name, recording)
        patched.append((owner, name, original))

    for name in FFT_NAMES:
        if hasattr(torch.fft, name):
            wrap(torch.fft, name, "fft", inputs=True)
    consistency = [name for name in vars(modl) if "consistency" in name and callable(getattr(modl, name))]
    if not consistency:
        raise RuntimeError("ssmri.models.modl has no *consistency* function to watch: update gpu_worker")
    for name in consistency:
        wrap(modl, name, "dc", inputs=False)
    solvers = [
        name
        for name, value in vars(modl).items()  # as modl looks them up, so patched there
        if callable(value) and getattr(value, "__module__", None) == "ssmri.models.cg"
    ]
    if not solvers:
        raise RuntimeError("ssmri.models.modl calls no ssmri.models.cg function to watch: update gpu_worker")
    for name in solvers:
        wrap(modl, name, "cg", inputs=False)
    try:
        yield seen
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def dtype_problem(seen: dict[str, set], multicoil: bool = False) -> str | None:
    """What is wrong with the recorded dtypes, or ``None``; ``multicoil``: CG must have run."""
    missing = [
        what
        for what, key in (("FFT", "fft"), ("data consistency", "dc"), ("CG", "cg"))
        if not seen.get(key) and (key != "cg" or multicoil)
    ]
    if missing:
        return f"hooks saw no {missing[0]} call"
    wrong_fft, wrong_dc = seen["fft"] - FFT_DTYPES, seen["dc"] - DC_DTYPES
    wrong_cg = seen.get("cg", set()) - DC_DTYPES
    if wrong_fft or wrong_dc or wrong_cg:
        return (
            f"not float32: FFT inputs {sorted(map(str, wrong_fft))}, "
            f"DC outputs {sorted(map(str, wrong_dc))}, CG outputs {sorted(map(str, wrong_cg))}"
        )
    return None


def compose_run_config(overrides: Sequence[str], output_dir: Path, cache_dir: Path):
    """The training config as ``train.py`` composes it, its outputs under ``output_dir``."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="ssmri.conf"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.paths.cache_dir = str(cache_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in a real run
    return cfg


def fast_dev_run(
    losses: Sequence[str],
    precision: str,
    device: str,
    workdir: Path,
    extra: Sequence[str] = (),
    label: str = "",
) -> None:
    """``debug=fast_dev_run`` of each loss on ``device`` in ``precision``, with the dtype hooks."""
    from ssmri.runner.run import train

    accelerator = "gpu" if device == "cuda" else "cpu"
    multicoil = "physics=multicoil" in extra
    for loss in losses:
        name = label or f"fast_dev_run loss={loss} {precision}" + (" physics=multicoil" if multicoil else "")
        overrides = [
            "debug=fast_dev_run",
            f"loss={loss}",
            f"trainer.accelerator={accelerator}",
            f"trainer.precision={precision}",
            *extra,
        ]
        started = time.perf_counter()
        try:
            cfg = compose_run_config(overrides, workdir / f"{loss}-{precision}", workdir / "cache")
            with recorded_dtypes() as seen:
                metrics = train(cfg, method=loss)
            problem = dtype_problem(seen, multicoil)
            psnr = metrics.get("test/psnr")
            if problem is None and (psnr is None or not torch.isfinite(torch.tensor(float(psnr)))):
                problem = f"test/psnr is {psnr}"
            shown = ", ".join(
                f"{what} {sorted(str(d).removeprefix('torch.') for d in seen[key])}"
                for what, key in (("FFTs", "fft"), ("DC", "dc"), ("CG", "cg"))
                if seen[key]
            )
            detail = problem or f"{shown}, {time.perf_counter() - started:.0f} s"
            report(name, problem is None, detail)
        except Exception as error:  # noqa: BLE001  (reported, and the next loss still runs)
            traceback.print_exc()
            report(name, False, one_line(error))


def noise2inverse(device: str, batch_size: int = 2, size: int = 64) -> None:
    """Batched inference (the device's choice) against one split per pass: same images."""
    from benchmarks.ours import compose_config
    from ssmri.data.phantom import PhantomImages
    from ssmri.physics.acquisition import Acquisition
    from ssmri.runner.run import instantiate

    name = "Noise2Inverse batched inference"
    try:
        torch.backends.cudnn.allow_tf32 = False  # exact float32, so that the groupings can agree
        cfg = compose_config("noise2inverse", size)
        physics, loss = instantiate(cfg.physics), instantiate(cfg.loss)
        model = instantiate(cfg.model).to(device).eval()
        rng = torch.Generator().manual_seed(0)
        mask = physics.sample_mask(batch_size, rng)
        y = physics.simulate(PhantomImages(size).images("test", batch_size), Acquisition(mask), rng)
        y, acq = y.to(device), Acquisition(mask.to(device))
        passes = []
        model.register_forward_pre_hook(lambda module, inputs: passes.append(len(inputs[0])))
        results, passes_of = {}, {}
        for splits_per_pass in (None, 1):  # None: the device's choice
            loss.splits_per_pass = splits_per_pass
            passes.clear()
            with torch.no_grad():
                results[splits_per_pass] = loss.reconstruct(
                    model, physics, y, acq, [torch.Generator().manual_seed(i) for i in range(batch_size)]
                )
            passes_of[splits_per_pass] = list(passes)
        batched = results[None]
        difference = (batched - results[1]).abs().max().item()
        ok = difference < 1e-4 and bool(torch.isfinite(batched).all()) and batched.device.type == device
        default = passes_of[None]
        report(
            name,
            ok,
            f"{loss.num_splits * batch_size} splits in {len(default)} passes of up to "
            f"{max(default)} by default on {device}, equal to {len(passes_of[1])} passes of 1 "
            f"(max difference {difference:.1e})",
        )
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        report(name, False, one_line(error))
