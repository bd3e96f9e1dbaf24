"""The DeepInverse 0.5 side of the benchmark: the same work with the tutorial's objects.

Runs only in an interpreter where ``import deepinv`` works (``.venv-reference``), so deepinv
is imported inside the functions, never when ``ssmri`` is imported. Objects as in the
tutorial: ``MRI`` physics, ``GaussianMaskLaw`` (R = 4), ``MoDL(UNet(2, 2, scales=3),
num_iter=3)`` (``demo_mri_model`` is not in 0.5), Adam lr 1e-3, and per method the loss of
the tutorial's last table / SSIBench, built as ``tests/reference`` builds them. The step is
written as ``Trainer.step``/``compute_loss`` compute it (offline data: ``physics.update`` with
the sample's mask, every loss's ``adapt_model``, ``update_parameters=True`` when the model
takes it, losses summed as ``loss.mean()``, backward, step); adversarial methods as
``AdversarialTrainer.compute_loss`` (generator backward with ``retain_graph``, generator step,
then the discriminator's step).
"""

import inspect

import torch

from benchmarks.harness import Workload, measure, phantom_batch

SPLIT_RATIO, NOISE2INVERSE_SAMPLES = 0.6, 20
#: Methods whose DeepInverse counterpart cannot be built exactly, and what is timed instead.
NOTES = {
    "diffeo_ei": "EILoss with ssmri's Diffeomorphism as T_g: DeepInverse's CPABDiffeomorphism "
    "needs the unavailable libcpab package, so the transform cost is ours on both sides",
    "adversarial": "0.5 ships only the single-operator blocks: Unsup*Loss fed SSIBench's "
    "multi-operator reals/fakes; ssmri's SkipConvDiscriminator (not in 0.5) on both sides",
    "uair": "UAIRGeneratorLoss with the fresh-mask operator A_g; ssmri's SkipConvDiscriminator "
    "(not in 0.5) on both sides",
}


def build_losses(method: str, size: int, physics_generator, rng: torch.Generator) -> list:
    """DeepInverse's loss list for ``method`` (non-adversarial methods)."""
    import deepinv as dinv

    generators = dinv.physics.generator

    def gaussian_split():  # the tutorial's SSDU split: Gaussian points, central 8x8 kept
        return generators.GaussianSplittingMaskGenerator((2, size, size), split_ratio=SPLIT_RATIO, rng=rng)

    def rotate():  # the tutorial's Rotate(): integer degrees, nearest (0.5 warns unless named)
        return dinv.transform.Rotate(interpolation_mode="nearest", rng=rng)

    if method == "sup":
        return [dinv.loss.SupLoss()]
    if method == "mc":
        return [dinv.loss.MCLoss()]
    if method == "ssdu":
        return [dinv.loss.SplittingLoss(mask_generator=gaussian_split(), eval_split_input=False)]
    if method == "noise2inverse":
        return [
            dinv.loss.SplittingLoss(
                mask_generator=gaussian_split(),
                eval_split_input=True,
                eval_n_samples=NOISE2INVERSE_SAMPLES,
            )
        ]
    if method == "weighted_ssdu":
        split_generator = generators.GaussianMaskGenerator(img_size=(size, size), acceleration=2, rng=rng)
        return [
            dinv.loss.mri.WeightedSplittingLoss(
                mask_generator=generators.MultiplicativeSplittingMaskGenerator(
                    (1, size, size), split_generator
                ),
                physics_generator=physics_generator,
            )
        ]
    if method == "ei":
        return [dinv.loss.MCLoss(), dinv.loss.EILoss(transform=rotate())]
    if method == "diffeo_ei":
        from benchmarks.ours import compose_config
        from ssmri.runner.run import instantiate

        diffeomorphism = instantiate(compose_config(method, size).loss.transform)
        return [dinv.loss.MCLoss(), dinv.loss.EILoss(transform=lambda x: diffeomorphism(x, rng=rng))]
    if method == "moi":
        return [dinv.loss.MCLoss(), dinv.loss.MOILoss(physics_generator=physics_generator)]
    if method == "mo_ei":
        moei = dinv.loss.MOEILoss(transform=rotate(), physics_generator=physics_generator)
        return [dinv.loss.MCLoss(), moei]
    if method == "vortex":  # SSIBench: T_i = RandomPhaseError(0.1) * RandomNoise(0.1), T_e = identity
        t_i = dinv.transform.RandomPhaseError(scale=0.1, rng=rng) * dinv.transform.RandomNoise(rng=rng)
        return [dinv.loss.MCLoss(), dinv.loss.AugmentConsistencyLoss(T_i=t_i, T_e=dinv.transform.Identity())]
    raise ValueError(f"no DeepInverse counterpart for method {method!r}")


def build_workload(method: str, batch_size: int, size: int, device: str = "cpu") -> Workload:
    """The tutorial's physics and MoDL, the method's losses, a phantom batch, the two closures.

    On ``device="cuda"`` DeepInverse's objects take the device (its generators draw from an
    rng on that device), as its own GPU examples build them.
    """
    import deepinv as dinv

    rng = torch.Generator(device=device).manual_seed(0)
    physics_generator = dinv.physics.generator.GaussianMaskGenerator(
        img_size=(size, size), acceleration=4, rng=rng, device=device
    )
    physics = dinv.physics.MRI(img_size=(size, size), device=device)
    model = dinv.models.MoDL(dinv.models.UNet(2, 2, scales=3), num_iter=3).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    x = phantom_batch(size, batch_size).to(device)
    params = physics_generator.step(batch_size=batch_size)  # as generate_dataset stores them
    physics.update(**params)
    y = physics(x)

    if method in ("adversarial", "uair"):
        return adversarial_workload(method, size, model, optimizer, physics, physics_generator, params, y)

    losses = build_losses(method, size, physics_generator, rng)
    for loss in losses:  # Trainer.setup_train
        model = loss.adapt_model(model)
    takes_update = "update_parameters" in inspect.signature(model.forward).parameters
    kwargs = {"update_parameters": True} if takes_update else {}

    def step(index: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        physics.update(**params)  # get_samples_offline
        model.train()
        x_net = model(y, physics, **kwargs)
        total = 0
        for loss in losses:
            total += loss(x=x, x_net=x_net, y=y, physics=physics, model=model, epoch=0).mean()
        total.item()  # the trainer's loss meter
        total.backward()
        optimizer.step()

    def infer() -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return model(y, physics, **kwargs)

    return Workload(step, infer, NOTES.get(method, ""))


def adversarial_workload(method, size, model, optimizer, physics, physics_generator, params, y) -> Workload:
    """Unsupervised adversarial and UAIR, stepped as ``AdversarialTrainer.compute_loss``."""
    import deepinv as dinv

    from benchmarks.ours import compose_config
    from ssmri.runner.run import instantiate

    adversarial = dinv.loss.adversarial
    device = y.device
    discriminator = instantiate(compose_config(method, size).loss.discriminator).to(device)
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    if method == "adversarial":
        generator_loss = adversarial.UnsupAdversarialGeneratorLoss(D=discriminator)
    else:
        generator_loss = adversarial.UAIRGeneratorLoss(D=discriminator)
    discriminator_loss = adversarial.UnsupAdversarialDiscriminatorLoss(D=discriminator)
    fully_sampled = dinv.physics.MRI(img_size=(size, size), device=device)  # SSIBench's physics_like
    # SSIBench draws the reals from a second loader of training measurements.
    real_y = fully_sampled(phantom_batch(size, len(y), split="val").to(device)) * physics.mask

    def step(index: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        physics.update(**params)
        model.train()
        x_net = model(y, physics)
        physics.A(x_net)  # y_hat, which the trainer computes ahead for its losses
        physics_g = physics.clone()  # A_g: a fresh mask, as the multi-operator losses draw
        physics_g.update(**physics_generator.step(batch_size=len(y)))
        if method == "adversarial":
            real, fake = fully_sampled.A_adjoint(real_y), fully_sampled.A_adjoint(physics_g.A(x_net))
            generator_total = generator_loss(y=real, y_hat=fake, D=discriminator).mean()
        else:
            real, fake = y, physics_g.A(x_net)
            generator_total = generator_loss(
                y=real,
                y_hat=fake,
                physics=physics_g,
                D=discriminator,
                model=lambda kspace, *args, **kwargs: model(kspace, physics_g),
            ).mean()
        generator_total.item()
        generator_total.backward(retain_graph=True)
        optimizer.step()
        discriminator_optimizer.zero_grad(set_to_none=True)
        discriminator_total = discriminator_loss(y=real, y_hat=fake, D=discriminator).mean()
        discriminator_total.backward()
        discriminator_optimizer.step()

    def infer() -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return model(y, physics)

    return Workload(step, infer, NOTES[method])


def run(
    method: str,
    batch_size: int,
    size: int = 128,
    steps: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    device: str = "cpu",
) -> dict:
    """One measurement of the DeepInverse side (see :func:`benchmarks.harness.measure`)."""
    import deepinv

    result = measure(
        lambda: build_workload(method, batch_size, size, device),
        side="deepinv",
        method=method,
        batch_size=batch_size,
        size=size,
        steps=steps,
        warmup=warmup,
        threads=threads,
        device=device,
    )
    return {**result, "deepinv": deepinv.__version__}
