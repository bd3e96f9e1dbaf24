"""The ssmri side of the benchmark: one method's training step and inference, built as a run builds them.

Model, loss, physics and optimisers come from the Hydra configs through the same
``instantiate`` calls as ``ssmri.runner.run.build`` (so ``model.channels_last`` and every other
default apply); the step is the LightningModule's: the loss on the batch with the step's
seeded rng, backward, optimiser step, then for adversarial losses the discriminator's
step with its own optimiser. With ``precision="bf16-mixed"`` the forward passes run under
bfloat16 autocast and the backward passes and optimiser steps outside it, as Lightning's
``MixedPrecision`` plugin runs them (FFTs and data consistency stay float32 either way).
Inference is the module's ``reconstruct`` (Noise2Inverse: N splits per image, one seeded
stream per image). ``device="cuda"`` builds all of it on the GPU (``autocast`` then on CUDA).
"""

import contextlib
from collections.abc import Sequence

import torch
from omegaconf import DictConfig

from benchmarks.harness import Workload, alternate, measure, phantom_batch, synchronizer


def compose_config(method: str, size: int, overrides: Sequence[str] = ()) -> DictConfig:
    """The training config of ``loss=method`` on phantom images of side ``size``."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="ssmri.conf"):
        return compose(
            "train",
            overrides=[f"loss={method}", "data=phantom", f"data.image_size={size}", *overrides],
        )


def multicoil_overrides(coils: int) -> tuple[str, ...]:
    """The config overrides of a multi-coil row: ``physics=multicoil`` with ``coils`` birdcage coils."""
    return ("physics=multicoil", f"physics.coils={coils}")


#: ``--precision`` values and the autocast dtype each runs the forward passes in.
PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16}


def build_workload(
    method: str,
    batch_size: int,
    size: int,
    overrides: Sequence[str] = (),
    precision: str = "32-true",
    device: str = "cpu",
) -> Workload:
    """Model, loss and optimisers from the configs, a phantom batch, and the two closures."""
    from ssmri.data.batch import MRIBatch
    from ssmri.physics.acquisition import Acquisition
    from ssmri.runner.run import instantiate
    from ssmri.seeding import seeded_rng

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]

    def forward_context():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=dtype)

    cfg = compose_config(method, size, overrides)
    physics = instantiate(cfg.physics)
    loss = instantiate(cfg.loss)
    model = instantiate(cfg.model)
    module = instantiate(cfg.module, model=model, loss=loss, physics=physics).to(device)
    optimizers = module.configure_optimizers()
    optimizer = optimizers[0]
    discriminator_optimizer = optimizers[1] if module.adversarial else None

    rng = torch.Generator().manual_seed(cfg.seed)
    x = phantom_batch(size, batch_size).to(device)
    mask = physics.sample_mask(batch_size, rng).to(device)
    maps = physics.sensitivity_maps(batch_size).to(device) if hasattr(physics, "sensitivity_maps") else None
    acq = Acquisition(mask, maps)
    batch = MRIBatch(physics.simulate(x, acq, rng), mask, torch.arange(batch_size), x, maps)
    target = batch.x if loss.needs_ground_truth else None

    def step(index: int) -> None:
        module.train()
        stream = seeded_rng(cfg.seed, 0, 0, index)  # the module's (seed, rank, epoch, batch)
        with forward_context():
            output = loss(model, physics, batch.y, batch.acq, target, stream)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        if discriminator_optimizer is not None:
            with forward_context():
                discriminator_loss = loss.discriminator_loss(physics, batch.y, batch.acq, output, stream)
            discriminator_optimizer.zero_grad(set_to_none=True)
            discriminator_loss.backward()
            discriminator_optimizer.step()

    def infer() -> torch.Tensor:
        module.eval()
        with torch.no_grad(), forward_context():
            return module.reconstruct(batch)

    return Workload(step, infer, denoiser=getattr(model, "denoiser", None), forward_context=forward_context)


def run(
    method: str,
    batch_size: int,
    size: int = 128,
    steps: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    overrides: Sequence[str] = (),
    precision: str = "32-true",
    device: str = "cpu",
) -> dict:
    """One measurement of the ssmri side (see :func:`benchmarks.harness.measure`)."""
    import ssmri.runner.run  # noqa: F401  (Lightning, Hydra: imported before the baseline memory is read)

    return measure(
        lambda: build_workload(method, batch_size, size, overrides, precision, device),
        side="ssmri",
        method=method,
        batch_size=batch_size,
        size=size,
        steps=steps,
        warmup=warmup,
        threads=threads,
        precision=precision,
        device=device,
    )


def interleaved_step_ratio(
    method: str,
    batch_size: int,
    size: int,
    overrides: Sequence[str],
    steps: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    precision: str = "32-true",
    device: str = "cpu",
) -> dict:
    """Step time with ``overrides`` over the step time without them, timed alternately in one process.

    Two rows measured in separate processes minutes apart also compare whatever else the
    machine was doing at those two times; :func:`benchmarks.harness.alternate` takes their steps in
    turn. Returns the ratio of the median step times and the medians themselves.
    """
    if threads:
        torch.set_num_threads(threads)
    medians = alternate(
        {
            "with": build_workload(method, batch_size, size, overrides, precision, device),
            "without": build_workload(method, batch_size, size, (), precision, device),
        },
        steps,
        warmup,
        synchronizer(device),
    )
    return {
        "interleaved_ratio": medians["with"] / medians["without"],
        "interleaved_step_seconds": medians["with"],
        "interleaved_baseline_step_seconds": medians["without"],
        "interleaved_steps": steps,
    }
