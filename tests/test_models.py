"""U-Net and MoDL: parameter count, any image size, and the exact data-consistency step."""

import pytest
import torch

from ssmri.models import MoDL, UNet, data_consistency
from ssmri.physics import SingleCoilMRI
from ssmri.physics.acquisition import Acquisition


def test_unet_parameter_count_matches_the_benchmark():
    assert sum(p.numel() for p in UNet(2, 2, scales=3).parameters()) == 2_070_082


@pytest.mark.parametrize("size", [(32, 32), (30, 27), (17, 40)])
def test_any_image_size(size):
    model = MoDL(UNet(base_features=4, scales=3), num_iter=2)
    y, mask = torch.randn(2, 2, *size), torch.ones(2, 1, *size)
    assert model(y, Acquisition(mask)).shape == (2, 2, *size)


def _dense_operator(mask_columns: torch.Tensor, height: int) -> torch.Tensor:
    """The matrix of A = M F on vectorised complex images, built column by column."""
    width = len(mask_columns)
    mask = mask_columns.float().expand(1, 1, height, width)
    physics = SingleCoilMRI((height, width), acceleration=1)
    eye = torch.eye(height * width, dtype=torch.complex128)
    columns = []
    for basis in eye:
        image = basis.reshape(1, height, width)
        x = torch.stack((image.real, image.imag), dim=1).float()
        k = physics.A(x, mask).double()
        columns.append(torch.complex(k[0, 0], k[0, 1]).flatten())
    return torch.stack(columns, dim=1)


def test_dc_step_is_the_least_squares_solution(rng):
    height, width, lam = 6, 8, torch.tensor(0.37)
    mask_columns = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0])
    mask = mask_columns.float().expand(1, 1, height, width)
    A = _dense_operator(mask_columns, height)
    z = torch.randn(1, 2, height, width, generator=rng)
    y = SingleCoilMRI((height, width), 1).A(torch.randn(1, 2, height, width), mask)

    # argmin ||Ax - y||² + λ||x - z||²  <=>  (AᴴA + λI) x = Aᴴy + λz, solved densely.
    vec = lambda t: torch.complex(t[0, 0].double(), t[0, 1].double()).flatten()
    lhs = A.conj().T @ A + lam.double() * torch.eye(height * width, dtype=torch.complex128)
    rhs = A.conj().T @ vec(y) + lam.double() * vec(z)
    expected = torch.linalg.solve(lhs, rhs)

    got = vec(data_consistency(z, y, mask, lam))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_modl_output_is_data_consistent_in_paper_order(rng):
    """With λ → 0, the paper-order DC step returns the measurements exactly on the mask."""
    model = MoDL(UNet(base_features=4, scales=2), num_iter=2, lambda_init=1e-6)
    physics = SingleCoilMRI(16, 4)
    mask = physics.sample_mask(2, rng)
    y = physics.A(torch.randn(2, 2, 16, 16), mask)
    torch.testing.assert_close(physics.A(model(y, Acquisition(mask)), mask), y, atol=1e-4, rtol=1e-4)
    # The reference's DC-first order ends on the denoiser: not data consistent.
    model.dc_first = True
    assert (physics.A(model(y, Acquisition(mask)), mask) - y).abs().max() > 1e-2


def test_zero_initialised_output_makes_the_untrained_modl_the_zero_filled_image(rng):
    physics = SingleCoilMRI(16, 4)
    mask = physics.sample_mask(2, rng)
    y = physics.A(torch.randn(2, 2, 16, 16), mask)
    model = MoDL(UNet(base_features=4, scales=2, zero_init_output=True), num_iter=3)
    acq = Acquisition(mask)
    torch.testing.assert_close(model(y, acq), physics.zero_filled(y, acq), atol=1e-6, rtol=0)
    model.denoiser(torch.randn(2, 2, 16, 16)).sum().backward()
    assert model.denoiser.head.weight.grad.abs().sum() > 0  # and it learns from there
    reference = MoDL(UNet(base_features=4, scales=2), num_iter=3)  # PyTorch's init, as the reference
    assert (reference(y, acq) - physics.zero_filled(y, acq)).abs().max() > 1e-3


def test_lambdas_are_positive_and_learnable():
    model = MoDL(UNet(base_features=4, scales=2), num_iter=3, lambda_init=0.05)
    torch.testing.assert_close(model.lambdas, torch.full((3,), 0.05))
    with torch.no_grad():
        model.rho.fill_(-50.0)
    assert (model.lambdas > 0).all()
    y, mask = torch.randn(1, 2, 8, 8), torch.ones(1, 1, 8, 8)
    model(y, Acquisition(mask)).sum().backward()
    assert model.rho.grad is not None and torch.isfinite(model.rho.grad).all()


@pytest.mark.parametrize("bad", [{"num_iter": 0}, {"lambda_init": 0.0}])
def test_bad_modl_arguments(bad):
    with pytest.raises(ValueError):
        MoDL(UNet(base_features=4, scales=2), **bad)
