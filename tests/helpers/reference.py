"""For the DeepInverse cross-checks in ``tests/reference``: the tolerance, and call-convention adapters.

DeepInverse calls ``model(y, physics)`` and draws its random choices inside its own objects;
ssmri calls ``model(y, acq)`` and draws from one CPU generator. The adapters here let one
network serve both sides and hand DeepInverse exactly the masks that ssmri drew.
"""

import torch

from ssmri.physics.acquisition import Acquisition
from ssmri.physics.fft import ifft2c

SEED = 7


def close(ours, theirs, rtol=1e-5):
    """Relative agreement; tensors may also differ by ``rtol`` of their largest entry."""
    scale = float(theirs.detach().abs().max()) if theirs.numel() > 1 else 0.0
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=rtol, atol=rtol * scale)


def rng(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mask_of(physics, like: torch.Tensor) -> torch.Tensor:
    """The ``(B, 1, H, W)`` sampling mask of any DeepInverse single-coil physics.

    Works for ``MRI`` and for compositions such as SplittingLoss's ``Inpainting(M₁) * MRI``:
    the operator applied to the image whose spectrum is all ones returns its mask.
    """
    spectrum = torch.zeros_like(like)
    spectrum[:, 0] = 1.0
    return physics.A(ifft2c(spectrum))[:, :1].round()


def their_model(model):
    """Our network ``f(y, acq)`` in DeepInverse's convention ``f(y, physics)`` (single-coil)."""
    return lambda y, physics, **kwargs: model(y, Acquisition(mask_of(physics, y)))


def model_grads(model, loss):
    return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])


def assert_same_grads(model, ours, theirs, rtol=1e-4):
    for g_ours, g_theirs in zip(model_grads(model, ours), model_grads(model, theirs)):
        close(g_ours, g_theirs, rtol=rtol)


class ReplayedMasks:
    """A DeepInverse mask generator that replays given masks, one per ``step``.

    ``average`` (what ``WeightedSplittingLoss`` estimates its probabilities with) returns the
    given per-column probability ``(W,)`` as a ``(1, 1, H, W)`` mask, so that both sides
    weight with the same numbers.
    """

    def __init__(self, *masks: torch.Tensor, column_probability: torch.Tensor | None = None, height=None):
        self.masks = list(masks)
        self.column_probability, self.height = column_probability, height

    def step(self, batch_size=1, input_mask=None, **kwargs) -> dict:
        return {"mask": self.masks.pop(0)}

    def average(self, **kwargs) -> dict:
        width = len(self.column_probability)
        return {"mask": self.column_probability.float().expand(1, 1, self.height, width).clone()}
