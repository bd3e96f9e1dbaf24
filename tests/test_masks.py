"""Mask laws: ssmri's fixed-count laws, fastMRI 0.3.0's laws, centres, counts, seeds and exact probabilities.

The ``reference`` tests compare the fastMRI laws with the ``fastmri`` package itself (skipped
where it is not installed: ``.venv-reference``, or ``pip install --no-deps fastmri==0.3.0``).
"""

import math

import pytest
import torch

from ssmri.physics.masks import (
    MASK_LAWS,
    EquispacedMaskLaw,
    FastMRIEquispacedFractionMaskLaw,
    FastMRIMagicFractionMaskLaw,
    FastMRIRandomMaskLaw,
    FixedCountEquispacedMaskLaw,
    FixedCountUniformMaskLaw,
    GaussianMaskLaw,
    UniformRandomMaskLaw,
    make_mask_law,
)

FIXED_COUNT = [GaussianMaskLaw, FixedCountUniformMaskLaw, FixedCountEquispacedMaskLaw]
FASTMRI = [FastMRIRandomMaskLaw, FastMRIEquispacedFractionMaskLaw, FastMRIMagicFractionMaskLaw]
SIZES = [(320, 4), (320, 8), (368, 4), (37, 3), (64, 2), (33, 2.5)]


def assert_probability_matches_draws(mask_law, draws: int = 5000):
    """Each column's frequency in ``draws`` masks lies within 4.5 standard errors of its exact probability."""
    exact = mask_law.column_probability()
    assert exact.shape == (mask_law.width,) and exact.dtype == torch.float64
    empirical = mask_law.sample_columns(draws, torch.Generator().manual_seed(0)).double().mean(0)
    spread = (exact * (1 - exact) / draws).sqrt().clamp_min(1e-3)
    z = ((empirical - exact) / spread).abs()
    # A few hundred columns: a correct probability stays within 4.5 standard errors; a wrong law does not.
    assert z.max() < 4.5, (z.max(), int(z.argmax()))


def assert_offset_masks_drawn(mask_law, masks: torch.Tensor):
    """Every drawn mask is one of the law's, each as often as the share of offsets that give it."""
    distinct, index = torch.unique(mask_law.masks_by_offset, dim=0, return_inverse=True)
    probability = torch.bincount(index, minlength=len(distinct)).double() / len(index)
    matches = (masks[:, None, :] == distinct[None]).all(-1)  # (draws, distinct masks)
    assert matches.any(1).all(), "a mask outside the law was drawn"
    spread = (probability * (1 - probability) / len(masks)).sqrt()
    assert ((matches.double().mean(0) - probability).abs() <= 4.5 * spread + 1e-12).all()


@pytest.mark.parametrize("kind", FIXED_COUNT)
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


@pytest.mark.parametrize("sampling", sorted(MASK_LAWS))
def test_reproducible_from_seed(sampling):
    draw = lambda seed: make_mask_law(sampling, 64, 4).sample(8, torch.Generator().manual_seed(seed))
    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


@pytest.mark.parametrize("kind", FIXED_COUNT)
@pytest.mark.parametrize("acceleration", [4, 2])
def test_column_probability_matches_5000_draws(kind, acceleration):
    mask_law = kind(128, acceleration)
    assert abs(float(mask_law.column_probability().sum()) - 128 // acceleration) < 1e-6
    assert_probability_matches_draws(mask_law)


def test_probability_is_not_the_normalised_weight():
    """Sampling without replacement is not proportional to the weights: the exact law differs."""
    mask_law = GaussianMaskLaw(128, 4)
    weights = mask_law.outer_weights()
    naive = weights / weights.sum() * mask_law.num_outer
    exact = mask_law.column_probability()[mask_law.outer_columns]
    assert (naive - exact).abs().max() > 0.05


@pytest.mark.parametrize(
    "old, new", [("uniform", "fixed_count_uniform"), ("equispaced", "fixed_count_equispaced")]
)
def test_old_names_build_the_same_law(old, new):
    """Configs, caches and checkpoints that name ``uniform``/``equispaced`` get the same masks as before."""
    old_law, new_law = make_mask_law(old, 96, 4), make_mask_law(new, 96, 4)
    assert type(old_law) is type(new_law)
    draw = lambda law: law.sample(6, torch.Generator().manual_seed(3))
    assert torch.equal(draw(old_law), draw(new_law))
    assert UniformRandomMaskLaw is FixedCountUniformMaskLaw
    assert EquispacedMaskLaw is FixedCountEquispacedMaskLaw


@pytest.mark.parametrize("kind", FASTMRI)
@pytest.mark.parametrize("acceleration, centre", [(4, 26), (8, 13)])
def test_fastmri_centre_is_rounded_not_truncated(kind, acceleration, centre, rng):
    """fastMRI rounds ``c W``: 0.08 * 320 = 25.6 -> 26 columns, 0.04 * 320 = 12.8 -> 13 (ours truncate)."""
    mask_law = kind(320, acceleration)
    assert mask_law.num_center == centre
    assert FixedCountUniformMaskLaw(320, acceleration).num_center == centre - 1
    start = (320 - centre + 1) // 2
    assert torch.equal(mask_law.center_columns, torch.arange(start, start + centre))
    assert mask_law.sample_columns(200, rng)[:, mask_law.center_columns].all()
    assert (mask_law.column_probability()[mask_law.center_columns] == 1).all()


def test_fastmri_centre_of_an_odd_width_with_an_even_count():
    """fastMRI starts the block at ``(W - n_c + 1) // 2``: one column right of ssmri's ``W//2 - n_c//2``."""
    assert FastMRIRandomMaskLaw(37, 4, 0.06).center_columns.tolist() == [18, 19]
    assert FixedCountUniformMaskLaw(37, 4, 0.06).center_columns.tolist() == [17, 18]


def test_fastmri_random_count_is_binomial():
    """``n_c + Binomial(W - n_c, p)`` columns, ``p = (W/R - n_c) / (W - n_c)``: W/R on average only."""
    mask_law, draws = FastMRIRandomMaskLaw(320, 4), 20000
    counts = mask_law.sample_columns(draws, torch.Generator().manual_seed(0)).sum(1).double()
    outer, p = 320 - 26, (80 - 26) / (320 - 26)
    assert mask_law.outer_probability == pytest.approx(p, rel=1e-12)
    mean, variance = 26 + outer * p, outer * p * (1 - p)
    assert abs(float(counts.mean()) - mean) < 4.5 * math.sqrt(variance / draws)
    assert float(counts.var()) == pytest.approx(variance, rel=0.05)
    # The count spreads as wide as fastMRI's does (its masks hold 54-105 columns at W = 320, R = 4).
    assert counts.min() <= 62 and counts.max() >= 98
    pmf = torch.tensor([math.comb(outer, k) * p**k * (1 - p) ** (outer - k) for k in range(outer + 1)])
    observed = torch.bincount(counts.long() - 26, minlength=outer + 1).double() / draws
    assert (observed - pmf).abs().max() < 0.01


@pytest.mark.parametrize("kind", FASTMRI)
@pytest.mark.parametrize("width, acceleration", SIZES)
def test_fastmri_column_probability_matches_5000_draws(kind, width, acceleration):
    mask_law = kind((4, width), acceleration)
    assert_probability_matches_draws(mask_law)


@pytest.mark.parametrize("width, acceleration", SIZES)
def test_fastmri_random_expects_w_over_r_columns(width, acceleration):
    expected = FastMRIRandomMaskLaw(width, acceleration).column_probability().sum()
    assert float(expected) == pytest.approx(width / acceleration, rel=1e-12)


@pytest.mark.parametrize("kind", [FastMRIEquispacedFractionMaskLaw, FastMRIMagicFractionMaskLaw])
@pytest.mark.parametrize("width, acceleration", [(320, 4), (320, 8)])
def test_offset_laws_draw_every_offset_equally_often(kind, width, acceleration):
    mask_law = kind(width, acceleration)
    assert_offset_masks_drawn(mask_law, mask_law.sample_columns(6000, torch.Generator().manual_seed(0)))


def test_equispaced_fraction_spacing_and_offsets():
    """W = 320, R = 4: ``a = 4 (26 - 320) / (26·4 - 320) = 5.44``, offsets 0-4, columns ``round(o + i a)``."""
    mask_law = FastMRIEquispacedFractionMaskLaw(320, 4)
    spacing = 4 * (26 - 320) / (26 * 4 - 320)
    assert mask_law.spacing == pytest.approx(spacing) and len(mask_law.masks_by_offset) == round(spacing)
    columns = mask_law.offset_columns(2)
    assert columns[0] == 2 and columns[1] == round(2 + spacing) and columns[-1] < 319
    assert (columns.diff() >= 5).all() and (columns.diff() <= 6).all()


def test_magic_fraction_offsets_the_two_half_planes():
    """Even offset ``o``: frequencies ``o + 1 + i a`` and ``-(o + 3 + i a)``; the pattern is not mirrored."""
    mask_law = FastMRIMagicFractionMaskLaw(320, 4)
    assert mask_law.spacing == round(320 / (80 - 26))
    frequencies = mask_law.offset_columns(0) - 160
    positive, negative = frequencies[frequencies >= 0], -frequencies[frequencies < 0]
    assert positive[:2].tolist() == [1, 1 + mask_law.spacing]
    assert negative[:2].tolist() == [3, 3 + mask_law.spacing]
    assert not set(positive.tolist()) & set(negative.tolist())


@pytest.mark.parametrize("acceleration", [0.5, 0, -2, 129])
def test_bad_acceleration_is_refused(acceleration):
    with pytest.raises(ValueError, match="acceleration must lie in"):
        GaussianMaskLaw(128, acceleration)


def test_fastmri_laws_refuse_what_fastmri_cannot_draw():
    """fastMRI 0.3.0 itself raises here (division by zero, an empty offset range)."""
    with pytest.raises(ValueError, match="fastmri_equispaced_fraction needs fewer than W/R = 8 centre"):
        FastMRIEquispacedFractionMaskLaw(64, 8, center_fraction=0.125)
    with pytest.raises(ValueError, match="fastmri_magic_fraction has no columns left"):
        FastMRIMagicFractionMaskLaw(16, 16)


def test_unknown_pattern_is_refused():
    with pytest.raises(ValueError, match="unknown sampling pattern 'radial'"):
        make_mask_law("radial", 64, 4)


# ----- against fastMRI 0.3.0 itself -------------------------------------------------------------


REFERENCE = {
    FastMRIRandomMaskLaw: "RandomMaskFunc",
    FastMRIEquispacedFractionMaskLaw: "EquispacedMaskFractionFunc",
    FastMRIMagicFractionMaskLaw: "MagicMaskFractionFunc",
}


def fastmri_mask_func(mask_law):
    """fastMRI's mask function of the same law, centre fraction and acceleration, seeded."""
    subsample = pytest.importorskip("fastmri.data.subsample", reason="fastmri is not installed")
    kind = getattr(subsample, REFERENCE[type(mask_law)])
    return kind([mask_law.center_fraction], [mask_law.acceleration], seed=0)


def fastmri_columns(mask_func, width: int, offset: int | None = None) -> tuple[torch.Tensor, int]:
    mask, num_center = mask_func((1, width, 1), offset=offset)
    return mask.flatten() > 0, num_center


@pytest.mark.reference
@pytest.mark.parametrize("kind", FASTMRI)
@pytest.mark.parametrize("width, acceleration", SIZES)
def test_centre_is_fastmris(kind, width, acceleration):
    mask_law = kind((4, width), acceleration)
    mask_func = fastmri_mask_func(mask_law)
    _, num_center = fastmri_columns(mask_func, width)
    centre = torch.from_numpy(mask_func.calculate_center_mask((1, width, 1), num_center)) > 0
    assert num_center == mask_law.num_center
    assert torch.equal(torch.nonzero(centre).flatten(), mask_law.center_columns)


@pytest.mark.reference
@pytest.mark.parametrize("kind", [FastMRIEquispacedFractionMaskLaw, FastMRIMagicFractionMaskLaw])
@pytest.mark.parametrize("width, acceleration", SIZES)
def test_offset_masks_are_fastmris(kind, width, acceleration):
    """The same mask at every offset, and fastMRI's own draws fall on the same masks as often."""
    mask_law = kind((4, width), acceleration)
    mask_func = fastmri_mask_func(mask_law)
    for offset, ours in enumerate(mask_law.masks_by_offset):
        assert torch.equal(fastmri_columns(mask_func, width, offset)[0], ours), offset
    theirs = torch.stack([fastmri_columns(mask_func, width)[0] for _ in range(2000)])
    assert_offset_masks_drawn(mask_law, theirs)


@pytest.mark.reference
@pytest.mark.parametrize("width, acceleration", SIZES)
def test_random_law_is_fastmris(width, acceleration):
    """Per-column frequency of fastMRI's masks and their count's mean and variance, against our exact law."""
    mask_law, draws = FastMRIRandomMaskLaw((4, width), acceleration), 4000
    mask_func = fastmri_mask_func(mask_law)
    theirs = torch.stack([fastmri_columns(mask_func, width)[0] for _ in range(draws)]).double()
    exact = mask_law.column_probability()
    spread = (exact * (1 - exact) / draws).sqrt().clamp_min(1e-3)
    assert ((theirs.mean(0) - exact) / spread).abs().max() < 4.5
    p, outer = mask_law.outer_probability, width - mask_law.num_center
    counts = theirs.sum(1)
    assert abs(float(counts.mean()) - float(exact.sum())) < 4.5 * math.sqrt(outer * p * (1 - p) / draws)
    assert float(counts.var()) == pytest.approx(outer * p * (1 - p), rel=0.1)
