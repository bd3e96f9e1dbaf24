"""VORTEX: k-space augmentations (noise, phase error) and the augmentation-consistency loss.

What every loss must do (finite, never reads x, trains, seeded) is in ``test_loss_contract.py``.
"""

import math

import pytest
import torch

from ssmri.data import PhantomImages
from ssmri.losses.augmentation import VORTEXLoss
from ssmri.physics import SingleCoilMRI
from ssmri.physics.acquisition import Acquisition
from ssmri.transforms.kspace import KspaceCompose, KspaceNoise, RandomPhaseError
from tests.helpers.models import tiny_model
from tests.helpers.problems import SIZE, small_problem


@pytest.fixture
def batch():
    return small_problem()


def test_phase_error_preserves_every_kspace_magnitude_and_the_support(batch, rng):
    physics, _, y, mask = batch
    augmented = RandomPhaseError(scale=0.1)(y, mask, rng)
    magnitude = lambda k: k.pow(2).sum(1).sqrt()
    torch.testing.assert_close(magnitude(augmented), magnitude(y), rtol=1e-6, atol=1e-7)
    assert augmented[(mask == 0).expand_as(y)].abs().max() == 0
    assert (augmented - y).abs().max() > 1e-3  # it did change the phase
    # The reference's channel-wise cos / -sin product is not a rotation: magnitudes change.
    reference = RandomPhaseError(scale=0.1, reference_multiplication=True)(y, mask, rng)
    assert (magnitude(reference) - magnitude(y)).abs().max() > 1e-2


@pytest.mark.parametrize("per_sample", [False, True])
def test_phase_error_law_even_and_odd_columns(batch, rng, per_sample):
    physics, _, y, mask = batch
    ones = torch.zeros_like(y)
    ones[:, 0] = 1.0  # y = 1 everywhere: the output is e^{-iφ} itself
    transform = RandomPhaseError(scale=0.1, per_sample=per_sample)
    out = transform(ones, torch.ones_like(mask), rng)
    phase = -torch.atan2(out[:, 1], out[:, 0])  # (B, H, W)
    even, odd = phase[..., 0::2], phase[..., 1::2]
    assert torch.allclose(even, even[..., :1, :1].expand_as(even), atol=1e-6)
    assert torch.allclose(odd, odd[..., :1, :1].expand_as(odd), atol=1e-6)
    assert phase.abs().max() <= 0.1 * math.pi + 1e-6
    per_image = phase[:, 0, :2]  # (B, 2): (φ_even, φ_odd) of each sample
    assert torch.equal(per_image[0] == per_image[1:], torch.full((3, 2), not per_sample))
    # Many draws fill [-0.1π, 0.1π] uniformly: mean ≈ 0, variance ≈ (0.2π)² / 12.
    draws = (
        transform.sample_phases(4000, torch.Generator().manual_seed(0))
        if per_sample
        else (torch.cat([transform.sample_phases(1, rng) for _ in range(4000)]))
    )
    assert abs(draws.mean()) < 0.01
    assert abs(draws.var() / ((0.2 * math.pi) ** 2 / 12) - 1) < 0.1


def test_noise_lands_only_on_sampled_entries_with_the_right_std(rng):
    physics = SingleCoilMRI(64, acceleration=2)
    mask = physics.sample_mask(8, rng)
    y = physics.A(PhantomImages(64).images("train", 8), mask)
    noise = KspaceNoise(sigma=0.1)(y, mask, rng) - y
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


def test_vortex_loss_is_mc_plus_the_augmentation_consistency(batch, rng):
    physics, _, y, mask = batch
    out = VORTEXLoss()(tiny_model(), physics, y, Acquisition(mask), rng=rng)
    assert set(out.terms) == {"mc", "vortex"}
    torch.testing.assert_close(out.loss.detach(), out.terms["mc"] + out.terms["vortex"])


def test_target_is_detached(batch):
    physics, _, y, mask = batch
    model = tiny_model()
    loss = VORTEXLoss(mc_weight=0.0)
    seed = lambda: torch.Generator().manual_seed(5)
    grad_of = lambda fn: torch.autograd.grad(
        fn(model, physics, y, Acquisition(mask), rng=seed()).loss, model.rho
    )[0]
    # Through the augmented branch only: equal to an explicitly frozen target.
    y_aug = loss.augmentation(y, mask, seed())
    acq = Acquisition(mask)
    frozen = torch.autograd.grad(((model(y_aug, acq) - model(y, acq).detach()) ** 2).mean(), model.rho)[0]
    torch.testing.assert_close(grad_of(loss), frozen)
    both = grad_of(VORTEXLoss(mc_weight=0.0, detach_target=False))
    assert not torch.allclose(both, frozen)


def test_image_transform_maps_input_and_target_with_one_draw(batch, rng):
    physics, _, y, mask = batch

    def roll_rows(images, rng=None):
        # A random circular shift along H commutes with a Cartesian (column) mask.
        shift = int(torch.randint(1, SIZE, (1,), generator=rng))
        return torch.roll(images, shift, dims=-2)

    zero_filled = lambda y, acq: physics.backproject(y, acq)  # f(y, A) = Aᴴy is shift equivariant
    loss = VORTEXLoss(augmentation=KspaceCompose([]), image_transform=roll_rows)
    out = loss(zero_filled, physics, y, Acquisition(mask), rng=rng)
    assert out.terms["vortex"] < 1e-10
    # The shift was not trivial: the augmented reconstruction differs from the untransformed one.
    shifted = physics.A(roll_rows(physics.A_adjoint(y, mask), rng), mask)
    assert (zero_filled(shifted, Acquisition(mask)) - zero_filled(y, Acquisition(mask))).pow(2).mean() > 1e-4
