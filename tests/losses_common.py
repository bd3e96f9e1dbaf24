"""What every loss test needs: small smooth complex images, their measurements, a tiny MoDL."""

import torch

from ssmri.data import PhantomImages
from ssmri.models import MoDL, UNet
from ssmri.physics import SingleCoilMRI

SIZE = 32


def small_problem(batch: int = 4, seed: int = 0, noise_std: float = 0.0):
    """``(physics, x, y, mask)`` on 32x32 phantoms at R = 4."""
    physics = SingleCoilMRI(SIZE, 4, noise_std=noise_std)
    generator = torch.Generator().manual_seed(seed)
    x = PhantomImages(SIZE, seed=seed).images("train", batch)
    mask = physics.sample_mask(batch, generator)
    return physics, x, physics.simulate(x, mask, generator), mask


def tiny_model(seed: int = 0) -> MoDL:
    torch.manual_seed(seed)
    return MoDL(UNet(base_features=8, scales=2), num_iter=2)


def check_loss_contract(loss, steps: int = 30, lr: float = 1e-3) -> None:
    """Finite value and gradients; never reads x; a few Adam steps lower it."""
    physics, x, y, mask = small_problem()
    model = tiny_model()
    nan_truth = torch.full_like(x, float("nan"))
    output = loss(model, physics, y, mask, nan_truth, torch.Generator().manual_seed(1))
    assert torch.isfinite(output.loss), output.loss
    output.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)

    def objective(seed: int) -> float:
        # Same random choices before and after training, so the values are comparable.
        with torch.no_grad():
            return float(loss(model, physics, y, mask, None, torch.Generator().manual_seed(seed)).loss)

    before = sum(objective(s) for s in range(3))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        optimizer.zero_grad()
        loss(model, physics, y, mask, None, torch.Generator().manual_seed(100 + step)).loss.backward()
        optimizer.step()
    after = sum(objective(s) for s in range(3))
    assert after < 0.9 * before, (before, after)
