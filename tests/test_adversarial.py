"""Adversarial methods: the SkipConv discriminator, the unsupervised adversarial loss and UAIR.

What every loss must do (finite, never reads x, trains, seeded) is in ``test_loss_contract.py``.
"""

import logging

import pytest
import torch

from ssmri.losses.adversarial import UAIRLoss, UnsupervisedAdversarialLoss
from ssmri.models.discriminator import SkipConvDiscriminator
from ssmri.physics import MultiCoilMRI
from ssmri.physics.acquisition import Acquisition
from tests.helpers.models import tiny_model
from tests.helpers.problems import SIZE, acquisition_for, small_problem

LOSSES = {"adversarial": UnsupervisedAdversarialLoss, "uair": UAIRLoss}


def make(name: str, seed: int = 0, **options):
    model = tiny_model(seed)
    discriminator = SkipConvDiscriminator(SIZE, features=8, num_blocks=2)
    return model, LOSSES[name](discriminator, **options)


@pytest.fixture
def batch():
    return small_problem()


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def unchanged(module, before) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), before))


def test_discriminator_matches_the_reference_architecture():
    d = SkipConvDiscriminator((24, 20))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 9 and all(c.bias is None and c.stride == (1, 1) for c in convs)
    expected = 2 * 128 * 9 + 8 * 128 * 128 * 9 + 128 * 24 * 20 + 1  # no downsampling
    assert sum(p.numel() for p in d.parameters()) == expected
    assert d(torch.randn(3, 2, 24, 20)).shape == (3,)
    with pytest.raises(ValueError, match="image_size"):
        d(torch.randn(3, 2, 20, 24))


def test_discriminator_passes_of_fewer_images_give_the_same_logits_and_gradients():
    x = torch.randn(5, 2, 12, 12)
    results = []
    for images_per_pass in (None, 2, 1):
        torch.manual_seed(0)
        d = SkipConvDiscriminator(12, features=8, num_blocks=2, images_per_pass=images_per_pass)
        calls = []
        d.head.register_forward_hook(lambda module, inputs, output, calls=calls: calls.append(len(inputs[0])))
        logits = d(x)
        logits.square().sum().backward()
        assert calls == {None: [5], 2: [2, 2, 1], 1: [1] * 5}[images_per_pass]
        results.append((logits.detach(), [p.grad for p in d.parameters()]))
    for logits, grads in results[1:]:
        torch.testing.assert_close(logits, results[0][0])
        for g, g0 in zip(grads, results[0][1]):
            torch.testing.assert_close(g, g0, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="images_per_pass"):
        SkipConvDiscriminator(12, images_per_pass=0)


def test_each_block_sums_two_parallel_convolutions():
    d = SkipConvDiscriminator(8, features=4, num_blocks=1)
    h = torch.randn(2, 4, 8, 8)
    block = d.blocks[0]
    act = torch.nn.functional.leaky_relu
    expected = act(block.branch[0](h), 0.01) + act(block.skip[0](h), 0.01)
    torch.testing.assert_close(block(h), expected)


@pytest.mark.parametrize("name", LOSSES)
def test_generator_step_leaves_d_alone_and_d_step_leaves_the_model_alone(batch, rng, name):
    physics, _, y, mask = batch
    model, loss_fn = make(name)
    d = loss_fn.discriminator
    opt_g = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)

    d_before, g_before = snapshot(d), snapshot(model)
    out = loss_fn(model, physics, y, Acquisition(mask), rng=rng)
    out.loss.backward()
    opt_g.step()
    assert unchanged(d, d_before) and all(p.grad is None for p in d.parameters())
    assert not unchanged(model, g_before)

    opt_g.zero_grad(set_to_none=True)
    g_before = snapshot(model)
    loss_fn.discriminator_loss(physics, y, Acquisition(mask), out, rng).backward()
    opt_d.step()
    assert unchanged(model, g_before) and all(p.grad is None for p in model.parameters())
    assert not unchanged(d, d_before)


@pytest.mark.parametrize("name", LOSSES)
def test_discriminator_steps_alone_lower_the_discriminator_loss(batch, rng, name):
    physics, _, y, mask = batch
    model, loss_fn = make(name, real_source="current") if name == "adversarial" else make(name)
    out = loss_fn(model, physics, y, Acquisition(mask), rng=rng)
    opt_d = torch.optim.Adam(loss_fn.discriminator.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        opt_d.zero_grad()
        d_loss = loss_fn.discriminator_loss(physics, y, Acquisition(mask), out, rng)
        d_loss.backward()
        opt_d.step()
        losses.append(d_loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", LOSSES)
def test_generator_steps_alone_lower_the_generator_loss_against_a_frozen_d(batch, name):
    physics, _, y, mask = batch
    model, loss_fn = make(name)
    objective = lambda: loss_fn(model, physics, y, Acquisition(mask), rng=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = objective().loss.item()
    d_before = snapshot(loss_fn.discriminator)
    opt_g = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(30):
        opt_g.zero_grad()
        objective().loss.backward()
        opt_g.step()
    with torch.no_grad():
        after = objective().loss.item()
    assert unchanged(loss_fn.discriminator, d_before)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", LOSSES)
def test_alternating_training_on_batches_of_changing_size_stays_finite(batch, name):
    physics, _, y, mask = batch
    model, loss_fn = make(name)
    opt_g = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(loss_fn.discriminator.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(0)
    for step in range(10):  # batches of 2, 2, 2, 1, ...: the previous batch's reals differ in size
        opt_g.zero_grad(set_to_none=True)
        out = loss_fn(model, physics, y[step % 4 :][:2], Acquisition(mask[step % 4 :][:2]), rng=rng)
        out.loss.backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        d_loss = loss_fn.discriminator_loss(physics, y, Acquisition(mask), out, rng)
        d_loss.backward()
        opt_d.step()
        assert torch.isfinite(out.loss) and torch.isfinite(d_loss)


def test_fakes_use_fresh_masks(batch, rng):
    physics, _, y, mask = batch
    model, loss_fn = make("uair")
    fake = loss_fn(model, physics, y, Acquisition(mask), rng=rng).cache["fake"]
    support = (fake.abs().sum(dim=(1, 2)) > 0).float()  # (B, W) sampled columns of each fake
    assert torch.equal(support.sum(1), torch.full((4,), SIZE // 4.0))
    assert not torch.equal(support, mask[:, 0, 0])
    assert not torch.equal(support[0], support[1])  # one fresh mask per sample


def test_uair_image_domain_and_acquisition_noise(rng):
    physics, _, y, mask = small_problem(batch=2, noise_std=0.05)
    model, kspace_loss = make("uair")
    acq = Acquisition(mask)
    fake = kspace_loss(model, physics, y, acq, rng=torch.Generator().manual_seed(1)).cache["fake"]
    mask_g = physics.sample_mask(2, torch.Generator().manual_seed(1))
    with torch.no_grad():
        clean = physics.A(model(y, acq), mask_g)
    noise = fake - clean
    assert noise[(mask_g == 0).expand_as(noise)].abs().max() == 0
    assert 0.03 < noise[mask_g.bool().expand_as(noise)].std() < 0.07
    _, image_loss = make("uair", domain="image")
    out = image_loss(model, physics, y, Acquisition(mask), rng=rng)
    torch.testing.assert_close(out.cache["real"], physics.zero_filled(y, Acquisition(mask)))


def test_reals_come_from_another_sample_even_at_batch_size_one(batch, rng):
    physics, _, y, mask = batch
    model, loss_fn = make("adversarial")
    first = loss_fn(model, physics, y[:1], Acquisition(mask[:1]), rng=rng)
    torch.testing.assert_close(first.cache["real"], physics.zero_filled(y[:1], Acquisition(mask[:1])))
    second = loss_fn(model, physics, y[1:2], Acquisition(mask[1:2]), rng=rng)
    torch.testing.assert_close(second.cache["real"], physics.zero_filled(y[:1], Acquisition(mask[:1])))
    loss_fn.eval()  # evaluation batches never become training reals
    loss_fn(model, physics, y[2:3], Acquisition(mask[2:3]), rng=rng)
    loss_fn.train()
    third = loss_fn(model, physics, y[3:4], Acquisition(mask[3:4]), rng=rng)
    torch.testing.assert_close(third.cache["real"], physics.zero_filled(y[1:2], Acquisition(mask[1:2])))


def test_optional_mc_term_and_bad_options(batch, rng):
    physics, _, y, mask = batch
    model, loss_fn = make("adversarial", mc_weight=1.0)
    out = loss_fn(model, physics, y, Acquisition(mask), rng=rng)
    torch.testing.assert_close(out.loss.detach(), out.terms["adv"] + out.terms["mc"])
    with pytest.raises(ValueError, match="real_source"):
        make("adversarial", real_source="shuffled")
    with pytest.raises(ValueError, match="domain"):
        make("uair", domain="measurement")


def test_uair_says_once_that_multicoil_replaces_the_kspace_domain(rng, caplog):
    physics, _, y, mask = small_problem(batch=2, physics=MultiCoilMRI(SIZE, 4, coils=2))
    acq = acquisition_for(physics, mask)
    model, loss_fn = make("uair")
    with caplog.at_level(logging.WARNING, logger="ssmri.losses.adversarial"):
        for _ in range(2):
            out = loss_fn(model, physics, y, acq, rng=rng)
    assert out.cache["real"].shape == (2, 2, SIZE, SIZE)  # coil-combined images, not coil k-space
    warnings = [r.message for r in caplog.records if "loss.domain=kspace is replaced by image" in r.message]
    assert len(warnings) == 1
    caplog.clear()
    _, image_loss = make("uair", domain="image")
    with caplog.at_level(logging.WARNING, logger="ssmri.losses.adversarial"):
        image_loss(model, physics, y, acq, rng=rng)
    assert not caplog.records
