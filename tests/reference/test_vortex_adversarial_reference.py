"""Cross-check VORTEX, the unsupervised adversarial loss and UAIR against DeepInverse 0.5.

What is compared exactly (same masks, same seeded CPU generator, 1e-5 relative):
- ``RandomPhaseError`` with ``reference_multiplication=True`` replays DeepInverse's
  ``RandomPhaseError`` draw for draw; our default true rotation equals the formula its
  docstring states, ``e^{-iφ_k} y``, evaluated on DeepInverse's own phases.
- ``KspaceNoise`` replays ``RandomNoise``; their chain (SSIBench's
  ``RandomPhaseError(scale=0.1) * RandomNoise()``: phase error first) replays ours.
- ``VORTEXLoss`` equals SSIBench's ``[MCLoss(), AugmentConsistencyLoss(T_i, T_e)]`` with
  ``T_e = Identity`` (value and gradients). With a geometric ``T_e`` no exact comparison is
  possible: DeepInverse feeds the network un-transformed data with the composed operator
  ``A T_e^{-1}``, which our mask-only network cannot take (see ``VORTEXLoss``), and its MoDL's
  closed-form prox then mixes both frames.
- The adversarial losses: DeepInverse 0.5 ships only the single-operator building blocks
  (``UnsupAdversarial{Generator,Discriminator}Loss``, ``UAIRGeneratorLoss``). SSIBench runs the
  multi-operator versions of a later DeepInverse, which draw ``A_g`` from a mask generator and
  the reals from a second data loader. We feed the 0.5 blocks exactly what those versions
  compute (reals ``F^H y'``, fakes ``F^H A_g x̂`` for Adversarial; ``y`` and ``ŷ = A_g x̂`` with
  the operator ``A_g`` for UAIR), using the same fresh masks as ours, and compare generator
  and discriminator objectives and the generator's gradients. ``SkipConvDiscriminator`` is
  not in DeepInverse 0.5, so the same discriminator instance serves both sides; its
  architecture is checked in ``tests/test_adversarial.py``.
"""

import pytest
import torch

deepinv = pytest.importorskip("deepinv")

from ssmri.losses.adversarial import UAIRLoss, UnsupervisedAdversarialLoss  # noqa: E402
from ssmri.losses.augmentation import VORTEXLoss  # noqa: E402
from ssmri.models import MoDL, UNet  # noqa: E402
from ssmri.models.discriminator import SkipConvDiscriminator  # noqa: E402
from ssmri.physics import SingleCoilMRI  # noqa: E402
from ssmri.physics.acquisition import Acquisition  # noqa: E402
from ssmri.transforms.kspace import KspaceCompose, KspaceNoise, RandomPhaseError  # noqa: E402
from tests.helpers.reference import close, model_grads, rng, their_model  # noqa: E402

pytestmark = pytest.mark.reference

SIZE, BATCH = 32, 3


@pytest.fixture
def setup():
    torch.manual_seed(0)
    physics = SingleCoilMRI(SIZE, acceleration=4)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator)
    mask = physics.sample_mask(BATCH, generator)
    model = MoDL(UNet(base_features=8, scales=2), num_iter=2).eval()
    return physics, model, physics.A(x, mask), mask


def test_phase_error_replays_the_reference(setup):
    _, _, y, mask = setup
    theirs = deepinv.transform.RandomPhaseError(scale=0.1, rng=rng())
    ours = RandomPhaseError(scale=0.1, reference_multiplication=True)
    close(ours(y, mask, rng()), theirs(y))
    # The true rotation is the formula of the reference's docstring, on its own phases.
    params = deepinv.transform.RandomPhaseError(scale=0.1, rng=rng()).get_params(y)
    phases = torch.stack((params["se"], params["so"]), dim=1).expand(BATCH, 2)
    phi = phases[:, torch.arange(SIZE) % 2][:, None, :]  # (B, 1, W), broadcast over H
    rotated = torch.complex(y[:, 0], y[:, 1]) * torch.exp(-1j * phi)
    close(RandomPhaseError(scale=0.1)(y, mask, rng()), torch.stack((rotated.real, rotated.imag), 1))


def test_noise_and_the_ssibench_chain_replay_the_reference(setup):
    _, _, y, mask = setup
    close(KspaceNoise(0.1)(y, mask, rng()), deepinv.transform.RandomNoise(sigma=0.1, rng=rng())(y))
    generator = rng()
    theirs = deepinv.transform.RandomPhaseError(scale=0.1, rng=generator) * (
        deepinv.transform.RandomNoise(rng=generator)
    )
    ours = KspaceCompose([RandomPhaseError(0.1, reference_multiplication=True), KspaceNoise(0.1)])
    close(ours(y, mask, rng()), theirs(y))


def test_vortex_matches_ssibench_with_identity_image_transform(setup):
    physics, model, y, mask = setup
    augmentation = KspaceCompose([RandomPhaseError(0.1, reference_multiplication=True), KspaceNoise(0.1)])
    ours = VORTEXLoss(augmentation=augmentation)(model, physics, y, Acquisition(mask), rng=rng()).loss

    generator = rng()
    t_i = deepinv.transform.RandomPhaseError(scale=0.1, rng=generator) * (
        deepinv.transform.RandomNoise(rng=generator)
    )
    their_physics = deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE))
    x_net = model(y, Acquisition(mask))
    mc = deepinv.loss.MCLoss()(y=y, x_net=x_net, physics=their_physics)
    augment = deepinv.loss.AugmentConsistencyLoss(T_i=t_i, T_e=deepinv.transform.Identity())
    theirs = mc.mean() + augment(x_net, y, their_physics, their_model(model)).mean()
    close(ours, theirs)
    for g_ours, g_theirs in zip(model_grads(model, ours), model_grads(model, theirs)):
        close(g_ours, g_theirs, rtol=1e-4)


def test_unsupervised_adversarial_matches_the_reference_blocks(setup):
    physics, model, y, mask = setup
    discriminator = SkipConvDiscriminator(SIZE, features=8, num_blocks=2)
    loss = UnsupervisedAdversarialLoss(discriminator)
    previous_y, previous_mask = y.roll(1, 0), mask.roll(1, 0)  # "another sample" per sample
    with torch.no_grad():
        loss(model, physics, previous_y, Acquisition(previous_mask), rng=rng())
    out = loss(model, physics, y, Acquisition(mask), rng=rng())
    ours_d = loss.discriminator_loss(physics, y, Acquisition(mask), out)

    mask_g = physics.sample_mask(BATCH, rng())
    full = deepinv.physics.MRI(img_size=(SIZE, SIZE))  # SSIBench's physics_like: mask of ones
    x_net = model(y, Acquisition(mask))
    fake = full.A_adjoint(deepinv.physics.MRI(mask=mask_g, img_size=(SIZE, SIZE)).A(x_net))
    real = full.A_adjoint(previous_y)
    g_loss = deepinv.loss.adversarial.UnsupAdversarialGeneratorLoss(D=discriminator)
    d_loss = deepinv.loss.adversarial.UnsupAdversarialDiscriminatorLoss(D=discriminator)
    theirs = g_loss(real, fake)
    close(out.loss, theirs)
    close(ours_d, d_loss(real, fake))
    for g_ours, g_theirs in zip(model_grads(model, out.loss), model_grads(model, theirs)):
        close(g_ours, g_theirs, rtol=1e-4)


@pytest.mark.parametrize("domain", ["kspace", "image"])
def test_uair_matches_the_reference_blocks(setup, domain):
    physics, model, y, mask = setup
    discriminator = SkipConvDiscriminator(SIZE, features=8, num_blocks=2)
    loss = UAIRLoss(discriminator, domain=domain)
    out = loss(model, physics, y, Acquisition(mask), rng=rng())
    ours_d = loss.discriminator_loss(physics, y, Acquisition(mask), out)

    mask_g = physics.sample_mask(BATCH, rng())
    physics_g = deepinv.physics.MRI(mask=mask_g, img_size=(SIZE, SIZE))
    their_physics = deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE))
    y_hat = physics_g(model(y, Acquisition(mask)))
    adv_d = discriminator
    if domain == "image":  # SSIBench's metric_adv="A_adjoint": D sees A^H y and A_g^H y_hat
        adv_d = lambda k: discriminator(  # noqa: E731
            physics_g.A_adjoint(k) if k is y_hat else their_physics.A_adjoint(k)
        )
    g_loss = deepinv.loss.adversarial.UAIRGeneratorLoss(D=adv_d)
    theirs = g_loss(y, y_hat, physics_g, lambda k: model(k, Acquisition(mask_g)))
    real, fake = y, y_hat
    if domain == "image":
        real, fake = their_physics.A_adjoint(y), physics_g.A_adjoint(y_hat)
    d_loss = deepinv.loss.adversarial.UnsupAdversarialDiscriminatorLoss(D=discriminator)
    close(out.loss, theirs)
    close(ours_d, d_loss(real, fake))
    for g_ours, g_theirs in zip(model_grads(model, out.loss), model_grads(model, theirs)):
        close(g_ours, g_theirs, rtol=1e-4)
