"""Multi-coil physics: the operator's adjointness and normalisation, birdcage maps, CG data consistency."""

import math

import numpy as np
import pytest
import torch

from ssmri.models import MoDL, UNet
from ssmri.models.cg import conjugate_gradient
from ssmri.models.modl import data_consistency, multicoil_data_consistency
from ssmri.physics import Acquisition, MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssmri.physics.fft import to_channels, to_complex


def inner(a, b):
    """Real part of the complex inner product of two real/imaginary-channel tensors."""
    return (a.double() * b.double()).sum()


def random_maps(batch, coils, size, seed=0):
    return torch.randn(batch, coils, 2, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("coils", [1, 3])
def test_adjointness_for_random_maps_and_masks(coils):
    physics = MultiCoilMRI(16, 4, coils=coils)
    rng = torch.Generator().manual_seed(1)
    mask = physics.sample_mask(3, rng)
    maps = random_maps(3, coils, 16)
    x = torch.randn(3, 2, 16, 16, generator=rng)
    y = torch.randn(3, coils, 2, 16, 16, generator=rng)
    lhs, rhs = inner(physics.A(x, mask, maps), y), inner(x, physics.A_adjoint(y, mask, maps))
    assert abs(float(lhs - rhs)) < 1e-4 * abs(float(lhs)), (lhs, rhs)
    assert physics.A(x, mask, maps).shape == (3, coils, 2, 16, 16)
    unsampled = (mask == 0).unsqueeze(1).expand(3, coils, 2, 16, 16)
    assert physics.A(x, mask, maps)[unsampled].abs().max() == 0  # the mask is shared by the coils


def test_normalised_maps_and_a_full_mask_give_the_identity():
    physics = MultiCoilMRI(24, 1, coils=4)
    maps = physics.sensitivity_maps(2)
    x = torch.randn(2, 2, 24, 24, generator=torch.Generator().manual_seed(0))
    full = torch.ones(2, 1, 24, 24)
    normal = physics.A_adjoint(physics.A(x, full, maps), full, maps)
    torch.testing.assert_close(normal, x, atol=1e-5, rtol=1e-5)


def test_birdcage_maps_follow_the_formula_and_are_normalised():
    coils, height, width = 4, 20, 24
    maps = birdcage_maps(coils, (height, width))
    assert maps.shape == (coils, 2, height, width) and maps.dtype == torch.float32
    sensitivity = to_complex(maps)
    torch.testing.assert_close(sensitivity.abs().pow(2).sum(0), torch.ones(height, width), atol=1e-5, rtol=0)
    # The formula, written out independently in NumPy (sigpy's mri.birdcage_maps for 2-D shapes).
    c, y, x = np.mgrid[:coils, :height, :width]
    u = (x - width / 2) / (width / 2) - 1.5 * np.cos(2 * np.pi * c / coils)
    v = (y - height / 2) / (height / 2) - 1.5 * np.sin(2 * np.pi * c / coils)
    expected = np.exp(1j * (np.arctan2(u, -v) - 2 * np.pi * c / coils)) / np.hypot(u, v)
    expected /= np.sqrt((np.abs(expected) ** 2).sum(0))
    expected = torch.from_numpy(expected.astype(np.complex64))
    torch.testing.assert_close(sensitivity, expected, atol=1e-5, rtol=1e-5)
    # Each coil sees most near itself: coil 0 sits at +x (right), coil 1 at +y (bottom) for 4 coils.
    magnitude = sensitivity.abs()
    assert magnitude[0, :, -1].mean() > magnitude[0, :, 0].mean()
    assert magnitude[1, -1, :].mean() > magnitude[1, 0, :].mean()


def test_one_coil_of_ones_is_single_coil():
    single, multi = SingleCoilMRI(16, 4), MultiCoilMRI(16, 4, coils=1)
    mask = single.sample_mask(2, torch.Generator().manual_seed(0))
    ones = to_channels(torch.ones(2, 1, 16, 16, dtype=torch.complex64))
    x = torch.randn(2, 2, 16, 16)
    torch.testing.assert_close(multi.A(x, mask, ones)[:, 0], single.A(x, mask))
    y = single.A(torch.randn(2, 2, 16, 16), mask)
    torch.testing.assert_close(multi.A_adjoint(y[:, None], mask, ones), single.A_adjoint(y, mask))


def test_noise_only_at_sampled_entries_of_every_coil():
    physics = MultiCoilMRI(16, 4, noise_std=0.1, coils=2)
    rng = torch.Generator().manual_seed(0)
    acq = Acquisition(physics.sample_mask(2, rng), physics.sensitivity_maps(2))
    x = torch.randn(2, 2, 16, 16)
    noise = physics.simulate(x, acq, rng) - physics.measure(x, acq)
    sampled = (acq.mask == 1).unsqueeze(1).expand_as(noise)
    assert noise[~sampled].abs().max() == 0
    assert abs(float(noise[sampled].std()) - 0.1) < 0.02


def test_physics_refuses_the_wrong_kind_of_acquisition():
    mask = torch.ones(1, 1, 8, 8)
    with pytest.raises(ValueError, match="physics=multicoil"):
        SingleCoilMRI(8, 1).A(torch.zeros(1, 2, 8, 8), mask, torch.ones(1, 2, 2, 8, 8))
    with pytest.raises(ValueError, match="coil sensitivity maps"):
        MultiCoilMRI(8, 1).A(torch.zeros(1, 2, 8, 8), mask)
    with pytest.raises(ValueError, match="coil maps must be"):
        Acquisition(mask, torch.ones(1, 2, 2, 8, 4))


def test_acquisition_keeps_the_maps_through_new_masks_and_slices():
    maps = random_maps(3, 2, 8)
    acq = Acquisition(torch.ones(3, 1, 8, 8), maps)
    other = acq.with_mask(torch.zeros(3, 1, 8, 8))
    assert other.maps is maps and other.mask.sum() == 0
    assert torch.equal(acq[1].maps, maps[1:2]) and len(acq[1:]) == 2
    repeated = acq.repeat_interleave(2)
    assert torch.equal(repeated.maps[2], maps[1]) and len(repeated) == 6


def dense_normal_matrix(mask, maps, lam):
    """``AᴴA + λI`` as a real ``(2HW, 2HW)`` matrix, column by column."""
    size = mask.shape[-1]
    basis = torch.eye(2 * size * size, dtype=torch.float32).reshape(-1, 2, size, size)
    physics = MultiCoilMRI(size, 1, coils=maps.shape[1])
    columns = [physics.A_adjoint(physics.A(e[None], mask, maps), mask, maps) + lam * e[None] for e in basis]
    return torch.stack([c.flatten() for c in columns], dim=1).double()


def test_cg_reaches_the_dense_solution():
    size, coils, lam = 6, 3, torch.tensor(0.05)
    rng = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, 1, 1, size, generator=rng) > 0.5).float().expand(1, 1, size, size)
    maps = random_maps(1, coils, size, seed=2)
    y = MultiCoilMRI(size, 1, coils=coils).A(torch.randn(1, 2, size, size, generator=rng), mask, maps)
    z = torch.randn(1, 2, size, size, generator=rng)
    rhs = MultiCoilMRI(size, 1, coils=coils).A_adjoint(y, mask, maps) + lam * z
    exact = torch.linalg.solve(dense_normal_matrix(mask, maps, lam), rhs.flatten().double())
    solved = multicoil_data_consistency(
        z, y, Acquisition(mask, maps), lam, iterations=2 * 2 * size * size, tolerance=0.0
    )
    torch.testing.assert_close(solved.flatten().double(), exact, atol=1e-4, rtol=1e-4)
    few = multicoil_data_consistency(z, y, Acquisition(mask, maps), lam, iterations=2, tolerance=0.0)
    assert (few.flatten().double() - exact).abs().max() > 1e-3  # the test can tell a short solve


def test_cg_with_one_coil_of_ones_equals_the_closed_form():
    physics = SingleCoilMRI(16, 4)
    rng = torch.Generator().manual_seed(3)
    mask = physics.sample_mask(2, rng)
    y = physics.A(torch.randn(2, 2, 16, 16, generator=rng), mask)
    z = torch.randn(2, 2, 16, 16, generator=rng)
    ones = to_channels(torch.ones(2, 1, 16, 16, dtype=torch.complex64))
    lam = torch.tensor(0.3)
    closed = data_consistency(z, y, mask, lam)
    # AᴴA is a projection here, so CG converges in two steps.
    solved = multicoil_data_consistency(z, y[:, None], Acquisition(mask, ones), lam, 3, 0.0)
    torch.testing.assert_close(solved, closed, atol=1e-5, rtol=1e-5)


def test_cg_stops_a_converged_sample_and_is_differentiable():
    diagonal = torch.tensor([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])
    rhs = torch.ones(2, 3, requires_grad=True)
    x = conjugate_gradient(lambda v: diagonal * v, rhs, torch.zeros(2, 3), iterations=5, tolerance=1e-6)
    torch.testing.assert_close(x, rhs.detach() / diagonal)
    x.sum().backward()
    torch.testing.assert_close(rhs.grad, 1 / diagonal)


def test_modl_in_multicoil_is_data_consistent_and_runs_float32_under_autocast():
    physics = MultiCoilMRI(16, 4, coils=2)
    rng = torch.Generator().manual_seed(0)
    acq = Acquisition(physics.sample_mask(2, rng), physics.sensitivity_maps(2))
    y = physics.measure(torch.randn(2, 2, 16, 16, generator=rng), acq)
    torch.manual_seed(0)
    model = MoDL(UNet(base_features=4, scales=2), num_iter=2, lambda_init=1e-4, cg_iterations=30)
    x_hat = model(y, acq)
    assert x_hat.shape == (2, 2, 16, 16) and x_hat.dtype == torch.float32
    # With λ → 0 the DC step fits the measurements.
    assert float((physics.measure(x_hat.detach(), acq) - y).norm() / y.norm()) < 1e-2
    x_hat.sum().backward()
    assert torch.isfinite(model.rho.grad).all() and model.rho.grad.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(y, acq).dtype == torch.float32
    assert math.isfinite(float(model(y, acq).sum()))
