"""SSDU, Noise2Inverse and Weighted-SSDU: split masks, weights, the inference rule.

What every loss must do (finite, never reads x, trains, seeded) is in ``test_loss_contract.py``.
"""

import pytest
import torch

from ssmri.losses.splitting import Noise2InverseLoss, SSDULoss, WeightedSSDULoss
from ssmri.physics import GaussianMaskLaw, SingleCoilMRI
from ssmri.physics.acquisition import Acquisition
from ssmri.transforms.split_masks import BernoulliSplitter, GaussianSplitter, MultiplicativeSplitter
from tests.helpers.models import tiny_model
from tests.helpers.problems import small_problem


@pytest.mark.parametrize("splitter", [GaussianSplitter(), BernoulliSplitter(), GaussianSplitter(0.4)])
def test_split_masks_are_disjoint_inside_and_of_the_right_size(splitter):
    physics = SingleCoilMRI(64, 4)
    mask = physics.sample_mask(6, torch.Generator().manual_seed(0))
    input_mask = splitter.split(mask, torch.Generator().manual_seed(1))
    held_out = mask - input_mask
    assert set(input_mask.unique().tolist()) <= {0.0, 1.0} and (held_out >= 0).all()
    assert ((input_mask * held_out) == 0).all()  # disjoint, and M1 inside M since M2 >= 0
    acquired = mask.sum(dim=(1, 2, 3))
    # M2 holds out ceil((1 - rho) |M|) points, so |M1| = floor(rho |M|) as in the reference.
    assert torch.equal(input_mask.sum(dim=(1, 2, 3)), torch.floor(splitter.split_ratio * acquired))
    assert not torch.equal(input_mask[0], input_mask[1])  # one split per sample


def test_gaussian_split_keeps_the_centre_block():
    mask = torch.ones(3, 1, 32, 32)
    splitter = GaussianSplitter(split_ratio=0.2, center_block=(8, 8))
    for seed in range(5):
        input_mask = splitter.split(mask, torch.Generator().manual_seed(seed))
        assert input_mask[:, :, 12:20, 12:20].all()
    # and holds out the centre of k-space (outside the block) more often than the edges
    held_out = torch.stack([mask - splitter.split(mask, torch.Generator().manual_seed(s)) for s in range(20)])
    frequency = held_out.mean(0)
    ring = frequency[..., 9:23, 9:23].sum() - frequency[..., 12:20, 12:20].sum()  # 14x14 minus the block
    assert ring / (14 * 14 - 8 * 8) > 2 * frequency[..., :4, :].mean()


def test_multiplicative_split_is_cartesian_inside_the_mask():
    physics = SingleCoilMRI(64, 4)
    mask = physics.sample_mask(4, torch.Generator().manual_seed(0))
    input_mask = MultiplicativeSplitter().split(mask, torch.Generator().manual_seed(1))
    assert (input_mask <= mask).all() and (input_mask == input_mask[:, :, :1, :]).all()


def test_weighted_ssdu_weight_matches_monte_carlo_k():
    physics = SingleCoilMRI(64, 4)
    loss = WeightedSSDULoss()
    exact_k = loss.column_k(physics, 64, 64)
    draws, rng = 40000, torch.Generator().manual_seed(0)
    measured = physics.mask_law.sample_columns(draws, rng).double()
    second = GaussianMaskLaw(64, 2).sample_columns(draws, rng).double()
    # K = E[1 - M] / E[1 - M~ M] per column (M and M~ independent).
    k = (1 - measured).mean(0) / (1 - second * measured).mean(0).clamp_min(1e-12)
    assert (k - exact_k).abs().max() < 0.01, (k - exact_k).abs().max()
    weight = loss.column_weight(physics, 64, 64)
    torch.testing.assert_close(weight, (1 - exact_k).rsqrt())
    centre = physics.mask_law.column_probability() == 1
    assert torch.allclose(weight[centre], torch.ones(int(centre.sum()), dtype=torch.float64))
    # The reference's estimate from 2000 masks lands near the exact weights.
    estimated = WeightedSSDULoss(estimate_with=2000).column_k(physics, 64, 64)
    assert (estimated - exact_k).abs().max() < 0.05


def test_noise2inverse_with_one_replayed_split_is_one_forward_pass():
    physics, _, y, mask = small_problem()
    model = tiny_model().eval()
    loss = Noise2InverseLoss(num_splits=1)
    with torch.no_grad():
        averaged = loss.reconstruct(model, physics, y, Acquisition(mask), torch.Generator().manual_seed(7))
        input_mask = loss.splitter.split(mask, torch.Generator().manual_seed(7))
        single = model(input_mask * y, Acquisition(input_mask))
    torch.testing.assert_close(averaged, single)


def test_noise2inverse_groups_splits_into_passes_without_changing_the_result():
    physics, _, y, mask = small_problem(batch=3)
    model = tiny_model().eval()
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    results = {}
    cases = {
        "splits_per_pass": ((1, [1] * 15), (4, [4, 4, 4, 3]), (15, [15]), (None, [1] * 15)),
        "images_per_pass": ((1, [5, 5, 5]), (2, [10, 5])),
    }  # the older knob, as checkpoints hold it
    with torch.no_grad():
        for knob, values in cases.items():
            for value, passes in values:
                calls.clear()
                loss = Noise2InverseLoss(num_splits=5, **{knob: value})
                rng = torch.Generator().manual_seed(0)
                results[knob, value] = loss.reconstruct(model, physics, y, Acquisition(mask), rng)
                assert calls == passes, (knob, value)  # None on a CPU: one split at a time
    for key, result in results.items():
        torch.testing.assert_close(result, results["splits_per_pass", 15], rtol=1e-5, atol=1e-6, msg=str(key))
    with pytest.raises(ValueError, match="not both"):
        Noise2InverseLoss(splits_per_pass=2, images_per_pass=1)
    with pytest.raises(ValueError, match="loss.splits_per_pass"):
        Noise2InverseLoss(splits_per_pass=0)


def test_noise2inverse_takes_all_splits_at_once_on_cuda_and_halves_after_running_out_of_memory():
    loss = Noise2InverseLoss(num_splits=5)
    assert loss.pass_size(40, torch.device("cuda")) == 40 and loss.pass_size(40, torch.device("cpu")) == 1
    assert Noise2InverseLoss(num_splits=5, splits_per_pass=8).pass_size(40, torch.device("cuda")) == 8
    physics, _, y, mask = small_problem(batch=2)
    model, calls = tiny_model().eval(), []

    def too_large(module, inputs):
        calls.append(len(inputs[0]))
        if len(inputs[0]) > 3:
            raise torch.OutOfMemoryError("fake: out of memory")

    model.register_forward_pre_hook(too_large)
    loss.pass_size = lambda total, device: total  # as on CUDA
    with torch.no_grad():
        halved = loss.reconstruct(model, physics, y, Acquisition(mask), torch.Generator().manual_seed(0))
    assert calls == [10, 5, 3, 3, 3, 1]
    fixed = Noise2InverseLoss(num_splits=5, splits_per_pass=10)
    with pytest.raises(torch.OutOfMemoryError):  # a number the user chose is never changed
        fixed.reconstruct(model, physics, y, Acquisition(mask), torch.Generator().manual_seed(0))
    calls.clear()
    with torch.no_grad():
        reference = Noise2InverseLoss(num_splits=5).reconstruct(
            model, physics, y, Acquisition(mask), torch.Generator().manual_seed(0)
        )
    torch.testing.assert_close(halved, reference, rtol=1e-5, atol=1e-6)


def test_ssdu_normalises_by_the_held_out_fraction():
    physics, _, y, mask = small_problem()
    loss = SSDULoss(BernoulliSplitter())
    output = loss(tiny_model(), physics, y, Acquisition(mask), None, torch.Generator().manual_seed(0))
    input_mask = BernoulliSplitter().split(mask, torch.Generator().manual_seed(0))
    held_out = mask - input_mask
    residual = held_out * (physics.A(output.x_hat, mask) - y)
    expected = residual.pow(2).sum() / (2 * held_out.sum())  # mean over held-out real entries
    torch.testing.assert_close(output.loss, expected, rtol=1e-5, atol=0)


def test_noise2inverse_with_one_generator_per_image_does_not_depend_on_the_batch():
    physics, _, y, mask = small_problem(batch=4)
    model = tiny_model().eval()
    loss = Noise2InverseLoss(num_splits=4)

    def rngs(indices):
        return [torch.Generator().manual_seed(100 + i) for i in indices]

    with torch.no_grad():
        together = loss.reconstruct(model, physics, y, Acquisition(mask), rngs(range(4)))
        apart = [
            loss.reconstruct(model, physics, y[i : i + 1], Acquisition(mask[i : i + 1]), rngs([i]))
            for i in range(4)
        ]
        shuffled = loss.reconstruct(model, physics, y[[2, 0]], Acquisition(mask[[2, 0]]), rngs([2, 0]))
    torch.testing.assert_close(together, torch.cat(apart), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(shuffled, together[[2, 0]], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="3 rngs for 4 images"):
        loss.reconstruct(model, physics, y, Acquisition(mask), rngs(range(3)))
