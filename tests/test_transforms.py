"""Image transforms: exact quarter turns, identity at zero, invertible diffeomorphisms, seeds."""

import pytest
import torch

from ssmri.transforms.image import Diffeomorphism, Rotate, Shift, _identity_grid, compose


def test_quarter_turns_are_exact_and_cycle():
    x = torch.randn(3, 2, 24, 24)
    rotate = Rotate(multiples=90)
    for angle in (0, 90, 180, 270):
        turned = rotate.apply(x, torch.full((3,), float(angle)))
        assert torch.equal(turned, torch.rot90(x, angle // 90, dims=(-2, -1)))
    four = x
    for _ in range(4):
        four = rotate.apply(four, torch.full((3,), 90.0))
    assert torch.equal(four, x)
    angles = Rotate(multiples=90, per_sample=True).sample_params(200, torch.Generator().manual_seed(0))
    assert set(angles.tolist()) == {0.0, 90.0, 180.0, 270.0}


def test_interpolated_rotation_matches_quarter_turn_direction():
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 5, 20] = 1.0
    for mode in ("nearest", "bilinear"):
        rotated = Rotate(interpolation=mode).apply(x, torch.tensor([90.0 + 1e-4]))
        torch.testing.assert_close(rotated, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-3, rtol=0)


def test_rotation_per_batch_or_per_sample_and_seeded():
    rotate = Rotate(per_sample=False)
    angles = rotate.sample_params(8, torch.Generator().manual_seed(3))
    assert (angles == angles[0]).all() and angles[0] == angles[0].round()
    per_sample = Rotate(per_sample=True).sample_params(8, torch.Generator().manual_seed(3))
    assert len(set(per_sample.tolist())) > 1
    again = Rotate(per_sample=True).sample_params(8, torch.Generator().manual_seed(3))
    assert torch.equal(per_sample, again)


def test_shift_is_an_exact_invertible_roll():
    x = torch.randn(4, 2, 16, 20)
    shift = Shift(per_sample=True)
    shifts = shift.sample_params(4, torch.Generator().manual_seed(0), (16, 20))
    moved = shift.apply(x, shifts)
    assert torch.equal(shift.apply(moved, -shifts), x)
    assert torch.equal(moved[1], torch.roll(x[1], tuple(shifts[1].tolist()), dims=(-2, -1)))


def test_diffeomorphism_is_identity_at_zero_strength():
    x = torch.randn(2, 2, 32, 32)
    assert torch.equal(Diffeomorphism(strength=0.0)(x, torch.Generator().manual_seed(0)), x)


def test_diffeomorphism_has_zero_boundary_velocity_and_is_smooth():
    transform = Diffeomorphism(strength=0.3)
    coefficients = transform.sample_params(3, torch.Generator().manual_seed(0))
    border = torch.tensor([[-1.0, 0.3], [1.0, -0.2], [0.5, -1.0], [0.1, 1.0], [1.0, 1.0]])
    assert transform.velocity_at(coefficients, border).abs().max() < 1e-6
    inside = transform.velocity(coefficients, 64, 64)
    assert inside.abs().max() > 0.05
    # Smooth (3 sine modes): neighbouring pixels move by nearly the same amount.
    assert (inside[:, 1:] - inside[:, :-1]).abs().max() < 0.15 * inside.abs().max()


@pytest.mark.parametrize("size", [64, 128])
def test_diffeomorphism_is_invertible(size):
    transform = Diffeomorphism()  # default strength 0.03: displacements of several pixels
    coefficients = transform.sample_params(4, torch.Generator().manual_seed(1))
    forward = transform.displacement(coefficients, size, size)
    backward = transform.displacement(-coefficients, size, size)
    assert forward.abs().max() * size / 2 > 2  # moves pixels by more than 2
    identity = _identity_grid(4, size, size, "cpu", torch.float32)
    round_trip = forward + compose(backward, identity + forward)
    assert round_trip.abs().max() < 1e-3 * (128 / size) ** 1, round_trip.abs().max()


def test_diffeomorphism_maps_smooth_images_back():
    axis = torch.linspace(-1, 1, 64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    image = torch.stack((torch.exp(-4 * (xx**2 + yy**2)), torch.sin(2 * xx) * torch.cos(yy)))[None]
    transform = Diffeomorphism()
    coefficients = transform.sample_params(1, torch.Generator().manual_seed(2))
    warped = transform.apply(image, coefficients)
    assert (warped - image).abs().max() > 0.02
    restored = transform.apply(warped, -coefficients)
    assert (restored - image)[..., 4:-4, 4:-4].abs().max() < 1e-2
