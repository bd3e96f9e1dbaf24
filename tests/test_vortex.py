"""VORTEX: k-space augmentations (noise, phase error) and the augmentation-consistency loss."""

import math

import pytest
import torch

from ssmri.losses.augmentation import VORTEXLoss
from ssmri.models import MoDL, UNet
from ssmri.physics import SingleCoilMRI
from ssmri.physics.kspace_augment import KspaceCompose, KspaceNoise, RandomPhaseError

SIZE = 32


def smooth_images(batch: int, generator: torch.Generator, size: int = SIZE) -> torch.Tensor:
    """``(B, 2, H, W)`` complex images: a few Gaussian blobs with a smooth phase, max |x| = 1."""
    grid = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    images = []
    for _ in range(batch):
        params = torch.rand(4, 4, generator=generator)
        magnitude = sum(
            a * torch.exp(-((xx - (c - 0.5)) ** 2 + (yy - (d - 0.5)) ** 2) / (0.05 + 0.2 * w))
            for a, c, d, w in params
        )
        phase = math.pi * (params[0, 0] * xx + params[1, 1] * yy) / 2
        z = magnitude * torch.exp(1j * phase)
        images.append(torch.stack((z.real, z.imag)) / z.abs().max())
    return torch.stack(images).float()


def tiny_model() -> MoDL:
    torch.manual_seed(0)
    return MoDL(UNet(base_features=8, scales=2), num_iter=2)


@pytest.fixture
def batch(generator):
    physics = SingleCoilMRI(SIZE, acceleration=4)
    x = smooth_images(4, generator)
    mask = physics.sample_mask(4, generator)
    return physics, x, physics.A(x, mask), mask


def test_phase_error_preserves_every_kspace_magnitude_and_the_support(batch, generator):
    physics, _, y, mask = batch
    augmented = RandomPhaseError(scale=0.1)(y, mask, generator)
    magnitude = lambda k: k.pow(2).sum(1).sqrt()
    torch.testing.assert_close(magnitude(augmented), magnitude(y), rtol=1e-6, atol=1e-7)
    assert augmented[(mask == 0).expand_as(y)].abs().max() == 0
    assert (augmented - y).abs().max() > 1e-3  # it did change the phase
    # The reference's channel-wise cos / -sin product is not a rotation: magnitudes change.
    reference = RandomPhaseError(scale=0.1, reference_multiplication=True)(y, mask, generator)
    assert (magnitude(reference) - magnitude(y)).abs().max() > 1e-2


@pytest.mark.parametrize("per_sample", [False, True])
def test_phase_error_law_even_and_odd_columns(batch, generator, per_sample):
    physics, _, y, mask = batch
    ones = torch.zeros_like(y)
    ones[:, 0] = 1.0  # y = 1 everywhere: the output is e^{-iφ} itself
    transform = RandomPhaseError(scale=0.1, per_sample=per_sample)
    out = transform(ones, torch.ones_like(mask), generator)
    phase = -torch.atan2(out[:, 1], out[:, 0])  # (B, H, W)
    even, odd = phase[..., 0::2], phase[..., 1::2]
    assert torch.allclose(even, even[..., :1, :1].expand_as(even), atol=1e-6)
    assert torch.allclose(odd, odd[..., :1, :1].expand_as(odd), atol=1e-6)
    assert phase.abs().max() <= 0.1 * math.pi + 1e-6
    per_image = phase[:, 0, :2]  # (B, 2): (φ_even, φ_odd) of each sample
    assert torch.equal(per_image[0] == per_image[1:], torch.full((3, 2), not per_sample))
    # Many draws fill [-0.1π, 0.1π] uniformly: mean ≈ 0, variance ≈ (0.2π)² / 12.
    draws = transform.sample_phases(4000, torch.Generator().manual_seed(0)) if per_sample else (
        torch.cat([transform.sample_phases(1, generator) for _ in range(4000)])
    )
    assert abs(draws.mean()) < 0.01
    assert abs(draws.var() / ((0.2 * math.pi) ** 2 / 12) - 1) < 0.1


def test_noise_lands_only_on_sampled_entries_with_the_right_std(generator):
    physics = SingleCoilMRI(64, acceleration=2)
    mask = physics.sample_mask(8, generator)
    y = physics.A(smooth_images(8, generator, 64), mask)
    noise = KspaceNoise(sigma=0.1)(y, mask, generator) - y
    sampled = mask.bool().expand_as(noise)
    assert noise[~sampled].abs().max() == 0
    assert abs(noise[sampled].std() / 0.1 - 1) < 0.02


def test_augmentations_are_reproducible_from_the_generator(batch):
    physics, _, y, mask = batch
    augment = KspaceCompose()
    a = augment(y, mask, torch.Generator().manual_seed(3))
    b = augment(y, mask, torch.Generator().manual_seed(3))
    c = augment(y, mask, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert [type(t) for t in augment.augmentations] == [RandomPhaseError, KspaceNoise]


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="sigma"):
        KspaceNoise(-1)
    with pytest.raises(ValueError, match="scale"):
        RandomPhaseError(-0.1)


def test_vortex_loss_finite_grads_and_never_reads_x(batch, generator):
    physics, x, y, mask = batch
    model, loss_fn = tiny_model(), VORTEXLoss()
    out = loss_fn(model, physics, y, mask, x=torch.full_like(x, float("nan")), generator=generator)
    out.loss.backward()
    assert torch.isfinite(out.loss) and set(out.terms) == {"mc", "vortex"}
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(out.loss.detach(), out.terms["mc"] + out.terms["vortex"])


def test_target_is_detached(batch):
    physics, _, y, mask = batch
    model = tiny_model()
    loss = VORTEXLoss(mc_weight=0.0)
    seed = lambda: torch.Generator().manual_seed(5)
    grad_of = lambda fn: torch.autograd.grad(fn(model, physics, y, mask, generator=seed()).loss,
                                             model.rho)[0]
    # Through the augmented branch only: equal to an explicitly frozen target.
    y_aug = loss.augmentation(y, mask, seed())
    frozen = torch.autograd.grad(((model(y_aug, mask) - model(y, mask).detach()) ** 2).mean(),
                                 model.rho)[0]
    torch.testing.assert_close(grad_of(loss), frozen)
    both = grad_of(VORTEXLoss(mc_weight=0.0, detach_target=False))
    assert not torch.allclose(both, frozen)


def test_image_transform_maps_input_and_target_with_one_draw(batch, generator):
    physics, _, y, mask = batch

    def roll_rows(images, generator=None):
        # A random circular shift along H commutes with a Cartesian (column) mask.
        shift = int(torch.randint(1, SIZE, (1,), generator=generator))
        return torch.roll(images, shift, dims=-2)

    zero_filled = lambda y, mask: physics.A_adjoint(y, mask)  # f(y, A) = Aᴴy is shift equivariant
    loss = VORTEXLoss(augmentation=KspaceCompose([]), image_transform=roll_rows)
    out = loss(zero_filled, physics, y, mask, generator=generator)
    assert out.terms["vortex"] < 1e-10
    # The shift was not trivial: the augmented reconstruction differs from the untransformed one.
    shifted = physics.A(roll_rows(physics.A_adjoint(y, mask), generator), mask)
    assert (zero_filled(shifted, mask) - zero_filled(y, mask)).pow(2).mean() > 1e-4


def test_adam_steps_lower_the_objective(batch):
    physics, _, y, mask = batch
    model, loss_fn = tiny_model(), VORTEXLoss()
    objective = lambda: loss_fn(model, physics, y, mask, generator=torch.Generator().manual_seed(9)).loss
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        before = objective().item()
    generator = torch.Generator().manual_seed(1)
    for _ in range(30):
        optimiser.zero_grad()
        loss_fn(model, physics, y, mask, generator=generator).loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = objective().item()
    assert after < 0.7 * before, (before, after)
