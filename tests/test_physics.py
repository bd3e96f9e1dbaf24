"""The MRI operator: adjointness, unitarity, projection property and noise placement."""

import torch

from ssmri.physics import SingleCoilMRI, fft2c, ifft2c
from ssmri.physics.acquisition import Acquisition


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of the complex inner product <a, b> of (B, 2, H, W) tensors."""
    return (a.double() * b.double()).sum()


def test_fft_is_unitary_and_centred():
    x = torch.randn(3, 2, 24, 20)
    k = fft2c(x)
    torch.testing.assert_close(k.pow(2).sum(), x.pow(2).sum(), rtol=1e-5, atol=0)
    torch.testing.assert_close(ifft2c(k), x, rtol=1e-5, atol=1e-5)
    # A constant image puts all its energy at the centre of k-space.
    flat = torch.zeros(1, 2, 16, 16)
    flat[:, 0] = 1.0
    centre = fft2c(flat)[0, 0, 8, 8]
    assert torch.isclose(centre, torch.tensor(16.0)), centre


def test_adjointness_and_projection(rng):
    physics = SingleCoilMRI(32, acceleration=4)
    mask = physics.sample_mask(4, rng)
    x, y = torch.randn(4, 2, 32, 32), torch.randn(4, 2, 32, 32) * mask
    lhs, rhs = inner(physics.A(x, mask), y), inner(x, physics.A_adjoint(y, mask))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs), (lhs, rhs)
    Ax = physics.A(x, mask)
    torch.testing.assert_close(physics.A(physics.A_adjoint(Ax, mask), mask), Ax, atol=1e-5, rtol=1e-5)


def test_noise_only_at_sampled_entries(rng):
    physics = SingleCoilMRI(32, acceleration=4, noise_std=0.1)
    mask = physics.sample_mask(2, rng)
    x = torch.randn(2, 2, 32, 32)
    noise = physics.simulate(x, Acquisition(mask), rng) - physics.A(x, mask)
    assert noise[(mask == 0).expand_as(noise)].abs().max() == 0
    sampled = noise[(mask == 1).expand_as(noise)]
    assert 0.08 < sampled.std() < 0.12, sampled.std()


def test_zero_filled_is_the_adjoint(rng):
    physics = SingleCoilMRI(16, acceleration=2)
    mask = physics.sample_mask(1, rng)
    y = physics.A(torch.randn(1, 2, 16, 16), mask)
    torch.testing.assert_close(physics.zero_filled(y, Acquisition(mask)), physics.A_adjoint(y, mask))


def test_ffts_and_dc_run_in_float32_under_bf16_autocast(monkeypatch, rng):
    from ssmri.models import MoDL, UNet

    seen = []
    for name in ("fft2", "ifft2"):
        original = getattr(torch.fft, name)

        def spy(z, *args, _original=original, **kwargs):
            seen.append(z.dtype)
            return _original(z, *args, **kwargs)

        monkeypatch.setattr(torch.fft, name, spy)
    physics = SingleCoilMRI(16, 4)
    mask = physics.sample_mask(2, rng)
    y = physics.A(torch.randn(2, 2, 16, 16), mask)
    model = MoDL(UNet(base_features=4, scales=2), num_iter=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_hat = model(y, Acquisition(mask))
        loss = (physics.A(x_hat, mask) - y).pow(2).mean()
    loss.backward()
    assert seen and set(seen) == {torch.complex64}, set(seen)
    assert x_hat.dtype == torch.float32 and torch.isfinite(loss)
