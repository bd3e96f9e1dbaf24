"""The contract every loss meets, checked on each ``conf/loss/*.yaml``: a new config is tested as it lands.

Each loss is composed and instantiated as ``train.py`` does (Hydra, then ``ssmri.runner.run.instantiate``,
``data.image_size`` resolved to 32; networks inside a loss shrunk by ``SMALLER``) and run on phantoms
with the tiny MoDL of ``tests.helpers``. Every loss:

- gives a finite scalar and finite gradients on every network parameter (an adversarial loss's
  discriminator step too);
- reads the ground truth exactly when it says so (``needs_ground_truth``): a self-supervised loss
  gives the same value with the truth replaced by NaN, a supervised one refuses to run without it;
- falls over a few dozen Adam steps, measured on the same random draws before and after;
- gives the same value for the same seed of ``rng``, and another value for another seed if it
  draws from ``rng`` at all;
- reconstructs ``(B, 2, H, W)`` images with its inference rule, with one ``rng`` or with one per
  image (what evaluation passes), and then independently of how the images are batched.

Each loss meets it in its default physics: noiseless, or noisy (sigma = 0.1, SSIBench's noisy
scenario) for a noise-aware loss (``requires_noise``), which is also checked to refuse noiseless
physics naming ``physics.noise_std``. A representative splitting loss and an equivariant one also
meet it on noisy physics. The falls check (the costliest) runs by default for one loss of each
family (``FALLS_BY_DEFAULT``); for the others, and on noisy physics for the extras, it is ``slow``.

Every loss also runs with ``physics=multicoil`` (2 birdcage coils, CG data consistency): finite
value and gradients, no ground truth read, images from the inference rule; the falls check in
multi-coil is ``slow``.

The method-specific properties (what each term computes) stay in the per-method test modules.
"""

from functools import cache

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from ssmri.losses import AdversarialLoss
from ssmri.runner.run import instantiate
from tests.helpers.config import compose_only, options
from tests.helpers.models import tiny_model
from tests.helpers.problems import SIZE, acquisition_for, small_problem

# Options a user switches by override that no yaml file shows; they meet the same contract.
VARIANTS = {
    "ssdu-bernoulli": [
        "loss=ssdu",
        "~loss.splitter",
        "+loss.splitter={_target_: ssmri.transforms.BernoulliSplitter}",
    ],
    "moi-batch-masks": ["loss=moi", "loss.per_sample_masks=false"],
}
CASES = {name: [f"loss={name}"] for name in options("loss")} | VARIANTS
# SSIBench's noisy scenario; noise-aware losses run there by default (they refuse sigma = 0).
NOISY = ("physics.noise_std=0.1",)
# Besides the noise-aware losses, these also meet the contract on noisy physics.
ALSO_NOISY = ("ssdu", "ei")
# The falls check (30 Adam steps) runs by default for one loss of each family; the others' is `slow`.
FALLS_BY_DEFAULT = (
    "sup",
    "mc",
    "adjoint_mc",
    "ssdu",
    "ssdu-bernoulli",
    "weighted_ssdu",
    "noise2inverse",
    "robust_ssdu",
    "ei",
    "adversarial",
)
# Every case runs on noiseless and on noisy physics (SSIBench's noisy scenario, sigma = 0.1).
NOISE = {"noiseless": 0.0, "noisy": 0.1}

# Keys set wherever a loss config has them: the real discriminator is ~1.3 M parameters.
SMALLER = {"discriminator.features": 8, "discriminator.num_blocks": 2}

STEPS, LR = 30, 1e-3


MULTICOIL = ("physics=multicoil", "physics.coils=2")


@cache
def loss_config(case: str, physics: tuple[str, ...] = ()) -> DictConfig:
    cfg = compose_only(["data=phantom", f"data.image_size={SIZE}", *CASES[case], *physics])
    for key, value in SMALLER.items():
        if OmegaConf.select(cfg.loss, key) is not None:
            OmegaConf.update(cfg.loss, key, value)
    return cfg


NOISE_AWARE = [name for name in CASES if instantiate(loss_config(name).loss).requires_noise]


def default_physics(name: str) -> tuple[str, ...]:
    return NOISY if name in NOISE_AWARE else ()


def make_case(name: str, physics_overrides: tuple[str, ...] = ()):
    cfg = loss_config(name, physics_overrides)
    physics, x, y, mask = small_problem(physics=instantiate(cfg.physics))
    torch.manual_seed(0)  # a discriminator's initial weights
    return instantiate(cfg.loss), physics, x, y, acquisition_for(physics, mask)


def case_params(noisy_marks=(), slow_unless: tuple[str, ...] | None = None):
    """Every case in its default physics, then the ``ALSO_NOISY`` ones on noisy physics; cases
    outside ``slow_unless`` (if given) are ``slow``."""
    default = [
        pytest.param(
            (name, default_physics(name)),
            id=name,
            marks=pytest.mark.slow if slow_unless and name not in slow_unless else (),
        )
        for name in CASES
    ]
    noisy = [pytest.param((name, NOISY), id=f"{name}-noisy", marks=noisy_marks) for name in ALSO_NOISY]
    return default + noisy


@pytest.fixture(params=case_params())
def case(request):
    """``(loss, physics, x, y, acq)``: a fresh loss (some keep state) on a 32x32 batch of 4."""
    return make_case(*request.param)


@pytest.fixture(params=case_params(noisy_marks=pytest.mark.slow, slow_unless=FALLS_BY_DEFAULT))
def training_case(request):
    """As :func:`case`, for the (costlier) falls check: ``FALLS_BY_DEFAULT`` only unless ``slow``."""
    return make_case(*request.param)


@pytest.fixture(params=list(CASES))
def multicoil_case(request):
    """As :func:`case`, with 2-coil multi-coil physics (the network then solves DC by CG)."""
    return make_case(request.param, MULTICOIL + default_physics(request.param))


@pytest.mark.parametrize("name", NOISE_AWARE)
def test_noise_aware_losses_refuse_noiseless_physics(name):
    cfg = loss_config(name)
    loss = instantiate(cfg.loss)
    physics, x, y, mask = small_problem(physics=instantiate(cfg.physics))
    assert physics.noise_std == 0
    with pytest.raises(ValueError, match="physics.noise_std"):
        loss(tiny_model(), physics, y, acquisition_for(physics, mask), None, seeded(0))


def test_the_noise_aware_losses_are_found():
    expected = {"ddssl", "ensure", "noise2recon_ssdu", "robust_ei", "robust_mo_ei", "robust_ssdu"}
    assert set(NOISE_AWARE) == expected, NOISE_AWARE


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def truth_for(loss, x: torch.Tensor) -> torch.Tensor:
    """What the training loop hands the loss: the truth if it asks for it, else NaN (never read)."""
    return x if loss.needs_ground_truth else torch.full_like(x, float("nan"))


def test_value_and_gradients_are_finite(case):
    loss, physics, x, y, acq = case
    model = tiny_model()
    # Over a few draws: one draw may hold nothing out (Weighted-SSDU at 32x32), a zero gradient.
    outputs = [loss(model, physics, y, acq, truth_for(loss, x), seeded(seed)) for seed in range(3)]
    for output in outputs:
        assert output.loss.ndim == 0 and torch.isfinite(output.loss), output.loss
        assert output.x_hat.shape == x.shape
    sum(output.loss for output in outputs).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0
    if isinstance(loss, AdversarialLoss):
        assert not any(t.requires_grad for t in outputs[0].cache.values())  # the D step needs no G graph
        d_loss = loss.discriminator_loss(physics, y, acq, outputs[0], seeded(1))
        assert torch.isfinite(d_loss), d_loss
        d_loss.backward()
        grads = [p.grad for p in loss.discriminator.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_reads_the_ground_truth_only_when_it_says_so(case):
    loss, physics, x, y, acq = case
    model = tiny_model()
    nan_truth = torch.full_like(x, float("nan"))
    if loss.needs_ground_truth:
        with pytest.raises(ValueError, match="ground truth"):
            loss(model, physics, y, acq, None, seeded(0))
        assert torch.isnan(loss(model, physics, y, acq, nan_truth, seeded(0)).loss)
    else:
        with_truth = loss(model, physics, y, acq, x, seeded(0)).loss
        torch.testing.assert_close(loss(model, physics, y, acq, nan_truth, seeded(0)).loss, with_truth)


def test_a_few_dozen_adam_steps_lower_it(training_case):
    """The objective on fixed draws (seeds 0-2) falls by 10% over 30 steps on fresh draws.

    An adversarial loss trains as ``ReconstructionModule`` runs it: a generator step, then a
    discriminator step with its own optimiser. Neither objective of a GAN need fall step by step
    (each player's step raises the other's objective), but from a fresh discriminator, whose
    scores are near 0 so that both LSGAN objectives start near 1, a few dozen alternating steps
    lower both: the generator's against the discriminator of its time, and the discriminator's
    on the fakes of its time. Its reconstruction terms need not fall meanwhile (UAIR's cycle MC
    rises while the generator learns to fool D), so they are not asserted.
    """
    loss, physics, x, y, acq = training_case
    model = tiny_model()
    truth = truth_for(loss, x)
    adversarial = isinstance(loss, AdversarialLoss)

    def objectives() -> torch.Tensor:
        values = []
        with torch.no_grad():
            for seed in range(3):
                output = loss(model, physics, y, acq, truth, seeded(seed))
                d_loss = loss.discriminator_loss(physics, y, acq, output, seeded(seed)) if adversarial else 0
                values.append(torch.tensor([float(output.loss), float(d_loss)]))
        return torch.stack(values).mean(0)

    before = objectives()
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    if adversarial:
        d_optimiser = torch.optim.Adam(loss.discriminator.parameters(), lr=LR)
    for step in range(STEPS):
        rng = seeded(100 + step)
        output = loss(model, physics, y, acq, truth, rng)
        optimiser.zero_grad()
        output.loss.backward()
        optimiser.step()
        if adversarial:
            d_loss = loss.discriminator_loss(physics, y, acq, output, rng)
            d_optimiser.zero_grad()
            d_loss.backward()
            d_optimiser.step()
    after = objectives()
    # By 10% of its size: a SURE-type objective subtracts sigma^2 and may be negative.
    assert (before - after >= 0.1 * before.abs()).all(), (before, after)


def test_a_fixed_rng_gives_the_same_value(case):
    loss, physics, x, y, acq = case
    model, truth = tiny_model(), truth_for(loss, x)
    with torch.no_grad():
        first = loss(model, physics, y, acq, truth, seeded(3)).loss
        again = loss(model, physics, y, acq, truth, seeded(3)).loss
        rng = seeded(4)
        other = loss(model, physics, y, acq, truth, rng).loss
    assert torch.equal(first, again)
    if torch.equal(rng.get_state(), seeded(4).get_state()):  # drew nothing (sup, mc)
        assert torch.equal(first, other)
    else:
        assert not torch.equal(first, other), "draws from rng, yet another seed gives the same value"


def test_inference_rule_returns_images_independent_of_batching(case):
    loss, physics, x, y, acq = case
    model = tiny_model().eval()

    def rngs(indices):
        return [seeded(100 + i) for i in indices]

    with torch.no_grad():
        one_rng = loss.reconstruct(model, physics, y, acq, seeded(0))
        per_image = loss.reconstruct(model, physics, y, acq, rngs(range(len(y))))
        again = loss.reconstruct(model, physics, y, acq, rngs(range(len(y))))
        apart = torch.cat(
            [loss.reconstruct(model, physics, y[i : i + 1], acq[i : i + 1], rngs([i])) for i in range(len(y))]
        )
    assert one_rng.shape == per_image.shape == x.shape
    assert torch.isfinite(one_rng).all() and torch.isfinite(per_image).all()
    assert torch.equal(per_image, again)
    torch.testing.assert_close(apart, per_image, rtol=1e-5, atol=1e-6)


def test_multicoil_value_and_gradients_are_finite(multicoil_case):
    loss, physics, x, y, acq = multicoil_case
    assert y.shape == (len(x), 2, 2, SIZE, SIZE) and acq.maps is not None
    test_value_and_gradients_are_finite(multicoil_case)


def test_multicoil_reads_the_ground_truth_only_when_it_says_so(multicoil_case):
    test_reads_the_ground_truth_only_when_it_says_so(multicoil_case)


def test_multicoil_inference_rule_returns_images(multicoil_case):
    test_inference_rule_returns_images_independent_of_batching(multicoil_case)


@pytest.mark.slow
def test_multicoil_a_few_dozen_adam_steps_lower_it(multicoil_case):
    test_a_few_dozen_adam_steps_lower_it(multicoil_case)
