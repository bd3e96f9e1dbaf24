"""EI, Diffeo-EI, MOI and MO-EI: what each term computes.

What every loss must do (finite, never reads x, trains, seeded) is in ``test_loss_contract.py``.
"""

import torch

from ssmri.losses.base import mse
from ssmri.losses.equivariance import EILoss, MOEILoss, fresh_masks
from ssmri.physics.acquisition import Acquisition
from ssmri.transforms.image import Rotate
from tests.helpers.models import tiny_model
from tests.helpers.problems import small_problem


def test_ei_term_is_the_equivariance_error_for_a_fixed_rotation():
    physics, _, y, mask = small_problem()
    model = tiny_model()
    loss = EILoss(Rotate(multiples=90, per_sample=True))
    rng = torch.Generator().manual_seed(5)
    acq = Acquisition(mask)
    output = loss(model, physics, y, acq, None, rng)
    angles = Rotate(multiples=90, per_sample=True).sample_params(len(y), torch.Generator().manual_seed(5))
    x_hat = model(y, acq)
    rotated = loss.transform.apply(x_hat, angles)
    expected = mse(physics.A(x_hat, mask), y) + mse(model(physics.A(rotated, mask), acq), rotated)
    torch.testing.assert_close(output.loss, expected)


def test_moei_uses_fresh_masks_from_the_data_law():
    physics, _, y, mask = small_problem()
    rng = torch.Generator().manual_seed(0)
    per_sample = fresh_masks(physics, y, True, rng)
    assert per_sample.shape == mask.shape and not torch.equal(per_sample[0], per_sample[1])
    assert (per_sample[:, 0, 0].sum(-1) == 8).all()  # W // R columns, like the data's masks
    per_batch = fresh_masks(physics, y, False, rng)
    assert all(torch.equal(per_batch[0], m) for m in per_batch)


def test_gradients_flow_through_both_passes():
    physics, _, y, mask = small_problem()
    model = tiny_model()
    output = MOEILoss(Rotate(), mc_weight=0.0)(model, physics, y, Acquisition(mask), None, torch.Generator())
    output.loss.backward()
    assert model.rho.grad.abs().sum() > 0
