"""EI, Diffeo-EI, MOI and MO-EI: the loss contract and what each term computes."""

import pytest
import torch
from losses_common import check_loss_contract, small_problem, tiny_model

from ssmri.losses.base import mse
from ssmri.losses.equivariance import EILoss, MOEILoss, MOILoss, fresh_masks
from ssmri.physics.transforms import Diffeomorphism, Rotate


@pytest.mark.parametrize(
    "loss",
    [EILoss(Rotate()), EILoss(Diffeomorphism()), MOILoss(), MOILoss(per_sample_masks=False),
     MOEILoss(Rotate())],
    ids=["ei", "diffeo_ei", "moi", "moi_batch_mask", "mo_ei"],
)
def test_loss_contract(loss):
    check_loss_contract(loss)


def test_ei_term_is_the_equivariance_error_for_a_fixed_rotation():
    physics, _, y, mask = small_problem()
    model = tiny_model()
    loss = EILoss(Rotate(multiples=90, per_sample=True))
    generator = torch.Generator().manual_seed(5)
    output = loss(model, physics, y, mask, None, generator)
    angles = Rotate(multiples=90, per_sample=True).sample_params(len(y), torch.Generator().manual_seed(5))
    x_hat = model(y, mask)
    rotated = loss.transform.apply(x_hat, angles)
    expected = mse(physics.A(x_hat, mask), y) + mse(model(physics.A(rotated, mask), mask), rotated)
    torch.testing.assert_close(output.loss, expected)


def test_moei_uses_fresh_masks_from_the_data_law():
    physics, _, y, mask = small_problem()
    generator = torch.Generator().manual_seed(0)
    per_sample = fresh_masks(physics, y, True, generator)
    assert per_sample.shape == mask.shape and not torch.equal(per_sample[0], per_sample[1])
    assert (per_sample[:, 0, 0].sum(-1) == 8).all()  # W // R columns, like the data's masks
    per_batch = fresh_masks(physics, y, False, generator)
    assert all(torch.equal(per_batch[0], m) for m in per_batch)


def test_gradients_flow_through_both_passes():
    physics, _, y, mask = small_problem()
    model = tiny_model()
    output = MOEILoss(Rotate(), mc_weight=0.0)(model, physics, y, mask, None, torch.Generator())
    output.loss.backward()
    assert model.rho.grad.abs().sum() > 0
