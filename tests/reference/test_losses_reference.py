"""Cross-check every non-adversarial loss against DeepInverse 0.5, value and gradients.

Each ssmri loss draws its random choices (split masks, angles, fresh masks, noise) from one
CPU generator. The test replays that draw with a generator in the same state and hands
DeepInverse the very same choices: split masks and fresh masks through ``ReplayedMasks``,
rotation angles through ``Rotate(x, theta=...)``, noise through ``GaussianNoise(rng=...)``
left exactly where our loss draws it. Then (1e-5 relative for values, 1e-4 for gradients):
- ``sup``, ``mc``: ``SupLoss``, ``MCLoss``.
- ``ssdu``: ``SplittingLoss`` (with its ``m/m₂`` normalisation) on our ``M₁``, Gaussian and
  Bernoulli splitters; its inference with ``eval_split_input=False`` is ``f(y, A)``.
- ``noise2inverse``: inference equals ``SplittingLoss(eval_split_input=True,
  eval_n_samples=N)``'s average over the same N splits (training is SSDU's).
- ``weighted_ssdu``: ``WeightedSplittingLoss`` on our ``M₁ = M̃ ⊙ M``. DeepInverse estimates
  ``P`` and ``P̃`` from 2000 random masks and ours computes them exactly, so both are given
  our exact probabilities (its ``compute_weight`` then equals our ``column_weight``); the
  estimates themselves agree in law (``test_physics_reference.py``).
- ``ei``: ``[MCLoss(), EILoss(Rotate)]`` with the same integer angle and nearest interpolation;
  noiseless and noisy physics (``EILoss`` re-noises ``A T_g x̂`` as our ``simulate`` does).
- ``moi``, ``mo_ei``: ``[MCLoss(), MOILoss]``, ``[MCLoss(), MOEILoss]`` with the same fresh
  mask, one per batch (``per_sample_masks=False``, the reference's draw) and also one per
  sample (our default; DeepInverse's physics takes a batch of masks just as well).

Not comparable: Diffeo-EI's transform. DeepInverse's ``CPABDiffeomorphism`` needs the
external ``libcpab`` package, and ours (a random stationary velocity field) is a different
diffeomorphism law by design (METHODS 5). The EI arithmetic around it is compared by feeding
DeepInverse's ``EILoss`` our transform with the same draw.
"""

import pytest
import torch

deepinv = pytest.importorskip("deepinv")

from ssmri.losses import MCLoss, SupervisedLoss  # noqa: E402
from ssmri.losses.equivariance import EILoss, MOEILoss, MOILoss  # noqa: E402
from ssmri.losses.splitting import Noise2InverseLoss, SSDULoss, WeightedSSDULoss  # noqa: E402
from ssmri.models import MoDL, UNet  # noqa: E402
from ssmri.physics import SingleCoilMRI  # noqa: E402
from ssmri.physics.acquisition import Acquisition  # noqa: E402
from ssmri.transforms.image import Diffeomorphism, Rotate  # noqa: E402
from ssmri.transforms.split_masks import BernoulliSplitter, GaussianSplitter  # noqa: E402
from tests.helpers.reference import SEED, ReplayedMasks, assert_same_grads, close, rng, their_model  # noqa: E402

pytestmark = pytest.mark.reference

SIZE, BATCH, NOISE = 32, 3, 0.05


def make_problem(noise_std: float = 0.0, dtype: torch.dtype = torch.float32):
    torch.manual_seed(0)
    physics = SingleCoilMRI(SIZE, acceleration=4, noise_std=noise_std)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator)
    mask = physics.sample_mask(BATCH, generator)
    model = MoDL(UNet(base_features=8, scales=2), num_iter=2).eval()
    y = physics.simulate(x, Acquisition(mask), generator)
    return physics, model.to(dtype), x.to(dtype), y.to(dtype), mask.to(dtype)


@pytest.fixture
def problem():
    return make_problem()


def their_physics(mask, noise_std: float = 0.0, generator: torch.Generator | None = None):
    noise = deepinv.physics.GaussianNoise(sigma=noise_std, rng=generator) if noise_std else None
    return deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE), noise_model=noise)


def test_supervised(problem):
    physics, model, x, y, mask = problem
    ours = SupervisedLoss()(model, physics, y, Acquisition(mask), x=x, rng=rng()).loss
    theirs = deepinv.loss.SupLoss()(x_net=model(y, Acquisition(mask)), x=x)
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)


def test_measurement_consistency(problem):
    physics, model, _, y, mask = problem
    ours = MCLoss()(model, physics, y, Acquisition(mask), rng=rng()).loss
    theirs = deepinv.loss.MCLoss()(y=y, x_net=model(y, Acquisition(mask)), physics=their_physics(mask))
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)


@pytest.mark.parametrize(
    "splitter", [GaussianSplitter(0.6), BernoulliSplitter(0.6)], ids=["gaussian", "bernoulli"]
)
def test_ssdu(splitter):
    # In float64: the gradient of MoDL's first lambda is a sum that nearly cancels. Exact
    # (float64, both sides to 8e-12) it is -8.447e-6; in float32 ours gave -8.289e-6 on one
    # thread and -8.327e-6 on two, DeepInverse -8.327e-6, all float32 rounding of that sum.
    physics, model, _, y, mask = make_problem(dtype=torch.float64)
    loss = SSDULoss(splitter)
    ours = loss(model, physics, y, Acquisition(mask), rng=rng())

    reference = deepinv.loss.SplittingLoss(
        mask_generator=ReplayedMasks(splitter.split(mask, rng())), eval_split_input=False
    )
    split_model = reference.adapt_model(their_model(model))
    physics_ref = their_physics(mask)
    x_net = split_model(y, physics_ref, update_parameters=True)
    theirs = reference(x_net=x_net, y=y, physics=physics_ref, model=split_model)
    close(ours.x_hat, x_net)
    close(ours.loss, theirs)
    assert_same_grads(model, ours.loss, theirs)
    with torch.no_grad():
        ours_eval = loss.reconstruct(model, physics, y, Acquisition(mask), rng())
        close(ours_eval, split_model.eval()(y, physics_ref))


def test_noise2inverse_inference_averages_the_same_splits(problem):
    physics, model, _, y, mask = problem
    loss = Noise2InverseLoss(GaussianSplitter(0.6), num_splits=3)

    def generators():  # one stream per image, as evaluation passes them
        return [torch.Generator().manual_seed(SEED + b) for b in range(len(y))]

    with torch.no_grad():
        ours = loss.reconstruct(model, physics, y, Acquisition(mask), generators())
        # Image b's 3 splits come from its own stream; the reference takes split i of every image.
        per_image = [
            loss.splitter.split(mask[b : b + 1].expand(3, -1, -1, -1), g) for b, g in enumerate(generators())
        ]
        splits = [torch.cat([image_splits[i : i + 1] for image_splits in per_image]) for i in range(3)]
        reference = deepinv.loss.SplittingLoss(
            mask_generator=ReplayedMasks(*splits), eval_n_samples=3, eval_split_input=True
        )
        theirs = reference.adapt_model(their_model(model)).eval()(y, their_physics(mask))
    close(ours, theirs)


def test_weighted_ssdu(problem):
    physics, model, _, y, mask = problem
    loss = WeightedSSDULoss()
    ours = loss(model, physics, y, Acquisition(mask), rng=rng())

    p = physics.mask_law.column_probability()
    p_split = loss.splitter.law_for(SIZE, SIZE).column_probability()
    split_masks = ReplayedMasks(loss.splitter.split(mask, rng()), column_probability=p_split, height=SIZE)
    acquisition = ReplayedMasks(column_probability=p, height=SIZE)
    reference = deepinv.loss.mri.WeightedSplittingLoss(split_masks, acquisition)
    weight = deepinv.loss.mri.WeightedSplittingLoss.compute_weight(split_masks, acquisition)
    close(loss.column_weight(physics, SIZE, SIZE).float(), weight.flatten())

    split_model = reference.adapt_model(their_model(model))
    physics_ref = their_physics(mask)
    x_net = split_model(y, physics_ref, update_parameters=True)
    theirs = reference(x_net=x_net, y=y, physics=physics_ref, model=split_model)
    close(ours.x_hat, x_net)
    close(ours.loss, theirs)
    assert_same_grads(model, ours.loss, theirs)


def mc_plus(term, model, y, mask, physics_ref):
    """DeepInverse's loss list ``[MCLoss(), term]`` as the Trainer sums it."""
    x_net = model(y, Acquisition(mask))
    mc = deepinv.loss.MCLoss()(y=y, x_net=x_net, physics=physics_ref)
    return mc + term(x_net=x_net, physics=physics_ref, model=their_model(model))


@pytest.mark.parametrize("noise_std", [0.0, NOISE])
@pytest.mark.parametrize("seed", [7, 8])
def test_ei_with_a_rotation(noise_std, seed):
    physics, model, _, y, mask = make_problem(noise_std)
    transform = Rotate()  # integer degrees, nearest, one angle per batch: the reference's
    ours = EILoss(transform)(model, physics, y, Acquisition(mask), rng=rng(seed)).loss

    generator = rng(seed)
    angle = transform.sample_params(BATCH, generator)[:1].float()  # generator: now at the noise
    rotate = deepinv.transform.Rotate(interpolation_mode="nearest")
    term = deepinv.loss.EILoss(transform=lambda x: rotate(x, theta=angle))
    theirs = mc_plus(term, model, y, mask, their_physics(mask, noise_std, generator))
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)


def test_ei_arithmetic_around_our_diffeomorphism(problem):
    physics, model, _, y, mask = problem
    transform = Diffeomorphism(strength=0.1)
    ours = EILoss(transform)(model, physics, y, Acquisition(mask), rng=rng()).loss

    coefficients = transform.sample_params(BATCH, rng())
    term = deepinv.loss.EILoss(transform=lambda x: transform.apply(x, coefficients))
    theirs = mc_plus(term, model, y, mask, their_physics(mask))
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)


@pytest.mark.parametrize("per_sample", [False, True], ids=["one_mask_per_batch", "per_sample"])
@pytest.mark.parametrize("noise_std", [0.0, NOISE])
def test_moi(per_sample, noise_std):
    physics, model, _, y, mask = make_problem(noise_std)
    ours = MOILoss(per_sample_masks=per_sample)(model, physics, y, Acquisition(mask), rng=rng()).loss

    generator = rng()
    fresh = physics.sample_mask(BATCH if per_sample else 1, generator)
    term = deepinv.loss.MOILoss(physics_generator=ReplayedMasks(fresh))
    theirs = mc_plus(term, model, y, mask, their_physics(mask, noise_std, generator))
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)


@pytest.mark.parametrize("per_sample", [False, True], ids=["one_mask_per_batch", "per_sample"])
@pytest.mark.parametrize("noise_std", [0.0, NOISE])
def test_mo_ei(per_sample, noise_std):
    physics, model, _, y, mask = make_problem(noise_std)
    transform = Rotate()
    loss = MOEILoss(transform, per_sample_masks=per_sample)
    ours = loss(model, physics, y, Acquisition(mask), rng=rng()).loss

    generator = rng()  # ours draws the angle, then the mask, then the noise
    angle = transform.sample_params(BATCH, generator)[:1].float()
    fresh = physics.sample_mask(BATCH if per_sample else 1, generator)
    rotate = deepinv.transform.Rotate(interpolation_mode="nearest")
    term = deepinv.loss.MOEILoss(
        transform=lambda x: rotate(x, theta=angle), physics_generator=ReplayedMasks(fresh)
    )
    theirs = mc_plus(term, model, y, mask, their_physics(mask, noise_std, generator))
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)
