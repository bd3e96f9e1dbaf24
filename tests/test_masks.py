"""Mask rngs: exact column counts, the centre block, seeds, and exact probabilities."""

import pytest
import torch

from ssmri.physics.masks import (
    EquispacedMaskLaw,
    GaussianMaskLaw,
    UniformRandomMaskLaw,
    make_mask_law,
)

GENERATORS = [GaussianMaskLaw, UniformRandomMaskLaw, EquispacedMaskLaw]


@pytest.mark.parametrize("kind", GENERATORS)
@pytest.mark.parametrize("width, acceleration", [(128, 4), (128, 8), (96, 6), (37, 3), (64, 1)])
def test_exact_column_count_and_centre(kind, width, acceleration, rng):
    masks = kind((20, width), acceleration).sample(50, rng)
    assert masks.shape == (50, 1, 20, width)
    columns = masks[:, 0, 0, :]
    assert (columns.sum(dim=1) == width // acceleration).all()
    # Cartesian: constant along H.
    assert (masks == masks[:, :, :1, :]).all()
    centre_fraction = 0.08 if acceleration < 8 else 0.04
    count = int(centre_fraction * width)
    start = width // 2 - count // 2
    assert (columns[:, start : start + count] == 1).all()


def test_reference_numbers_at_128_and_r4(rng):
    mask = GaussianMaskLaw(128, 4).sample(1, rng)
    assert int(mask[0, 0, 0].sum()) == 32
    assert mask[0, 0, 0, 59:69].all()  # int(0.08 * 128) = 10 centre columns from 64 - 5


def test_reproducible_from_seed():
    draw = lambda seed: GaussianMaskLaw(64, 4).sample(3, torch.Generator().manual_seed(seed))
    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


@pytest.mark.parametrize("kind", GENERATORS)
@pytest.mark.parametrize("acceleration", [4, 2])
def test_column_probability_matches_5000_draws(kind, acceleration):
    mask_law = kind(128, acceleration)
    exact = mask_law.column_probability()
    assert exact.shape == (128,)
    assert abs(float(exact.sum()) - 128 // acceleration) < 1e-6
    draws = 5000
    empirical = mask_law.sample_columns(draws, torch.Generator().manual_seed(0)).double().mean(0)
    spread = (exact * (1 - exact) / draws).sqrt().clamp_min(1e-3)
    z = ((empirical - exact) / spread).abs()
    # 128 columns: a correct probability stays within 4.5 standard errors; a wrong law does not.
    assert z.max() < 4.5, (z.max(), int(z.argmax()))


def test_probability_is_not_the_normalised_weight():
    """Sampling without replacement is not proportional to the weights: the exact law differs."""
    mask_law = GaussianMaskLaw(128, 4)
    weights = mask_law.outer_weights()
    naive = weights / weights.sum() * mask_law.num_outer
    exact = mask_law.column_probability()[mask_law.outer_columns]
    assert (naive - exact).abs().max() > 0.05


@pytest.mark.parametrize("acceleration", [0.5, 0, -2, 129])
def test_bad_acceleration_is_refused(acceleration):
    with pytest.raises(ValueError, match="acceleration must lie in"):
        GaussianMaskLaw(128, acceleration)


def test_unknown_pattern_is_refused():
    with pytest.raises(ValueError, match="unknown sampling pattern 'radial'"):
        make_mask_law("radial", 64, 4)
