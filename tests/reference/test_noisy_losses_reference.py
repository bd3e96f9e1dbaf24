"""Cross-check the SSIBench noise-aware losses against DeepInverse 0.5: value and gradients.

The same random choices are handed to both sides: DeepInverse's losses draw their probes and
noise from a ``torch.Generator`` passed in the state ours is in at that draw; split masks go
through ``ReplayedMasks``; mask densities are our exact ones on both sides.
- ``robust_ei``: ``[SureGaussianLoss(sigma, rng), EILoss(Rotate)]`` (probe, angle, then noise).
- ``ensure``: ``mri.ENSURELoss(sigma, physics_generator, rng)``.
- ``robust_ssdu``: ``mri.RobustSplittingLoss(split, physics_generator, GaussianNoise(sigma))``.
- ``ddssl``: ``R2RLoss``'s arithmetic on our recorruption ``y₁`` (its Gaussian corruptor draws
  from the global stream at every k-space entry; ours at the sampled ones, which the network
  never reads off the mask and which then leaves ``y₂`` zero there, as ours).
ENSURE, SURE and R2R are not SSIBench-only: MOC-SSDU and SSDU-Consistency are, and have
property tests instead (tests/test_split_consistency.py).
"""

import pytest
import torch

deepinv = pytest.importorskip("deepinv")

from ssmri.losses import DDSSLLoss, ENSURELoss, RobustEILoss, RobustSSDULoss  # noqa: E402
from ssmri.models import MoDL, UNet  # noqa: E402
from ssmri.physics import SingleCoilMRI  # noqa: E402
from ssmri.physics.acquisition import Acquisition  # noqa: E402
from ssmri.transforms.image import Rotate  # noqa: E402
from tests.helpers.reference import ReplayedMasks, assert_same_grads, close, rng, their_model  # noqa: E402

pytestmark = pytest.mark.reference
SIZE, BATCH, SIGMA = 32, 3, 0.1


def make_problem(noise_std: float):
    torch.manual_seed(0)
    physics = SingleCoilMRI(SIZE, acceleration=4, noise_std=noise_std)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator)
    mask = physics.sample_mask(BATCH, generator)
    model = MoDL(UNet(base_features=8, scales=2), num_iter=2).eval()
    return physics, model, x, physics.simulate(x, Acquisition(mask), generator), mask


def their_physics(mask, noise_std: float = 0.0, generator: torch.Generator | None = None):
    noise = deepinv.physics.GaussianNoise(sigma=noise_std, rng=generator) if noise_std else None
    return deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE), noise_model=noise)


def test_robust_ei_is_sure_plus_ei():
    physics, model, _, y, mask = make_problem(SIGMA)
    transform = Rotate()
    ours = RobustEILoss(transform)(model, physics, y, Acquisition(mask), rng=rng()).loss

    after_probe = rng()
    torch.randn(y.shape, generator=after_probe)
    angle = transform.sample_params(BATCH, after_probe)[:1].float()  # now at the EI noise
    physics_ref = their_physics(mask, SIGMA, after_probe)
    x_net = model(y, Acquisition(mask))
    sure = deepinv.loss.SureGaussianLoss(sigma=SIGMA, rng=rng())(
        y=y, x_net=x_net, physics=physics_ref, model=their_model(model)
    ).mean()
    rotate = deepinv.transform.Rotate(interpolation_mode="nearest")
    ei = deepinv.loss.EILoss(transform=lambda x: rotate(x, theta=angle))(
        x_net=x_net, physics=physics_ref, model=their_model(model)
    )
    close(ours, sure + ei)
    assert_same_grads(model, ours, sure + ei)


def test_ensure():
    physics, model, _, y, mask = make_problem(SIGMA)
    ours = ENSURELoss()(model, physics, y, Acquisition(mask), rng=rng()).loss

    density = ReplayedMasks(column_probability=physics.mask_law.column_probability(), height=SIZE)
    reference = deepinv.loss.mri.ENSURELoss(sigma=SIGMA, physics_generator=density, rng=rng())
    theirs = reference(
        y=y, x_net=model(y, Acquisition(mask)), physics=their_physics(mask), model=their_model(model)
    ).mean()
    close(ours, theirs)
    assert_same_grads(model, ours, theirs)


def test_robust_ssdu():
    physics, model, _, y, mask = make_problem(SIGMA)
    loss = RobustSSDULoss()
    ours = loss(model, physics, y, Acquisition(mask), rng=rng())

    generator = rng()
    split = loss.splitter.split(mask, generator)  # generator: now at the noisier noise
    p = physics.mask_law.column_probability()
    p_split = loss.splitter.law_for(SIZE, SIZE).column_probability()
    reference = deepinv.loss.mri.RobustSplittingLoss(
        ReplayedMasks(split, column_probability=p_split, height=SIZE),
        ReplayedMasks(column_probability=p, height=SIZE),
        deepinv.physics.GaussianNoise(sigma=SIGMA, rng=generator),
    )
    split_model = reference.adapt_model(their_model(model))
    physics_ref = their_physics(mask)
    x_net = split_model(y, physics_ref, update_parameters=True)
    theirs = reference(x_net=x_net, y=y, physics=physics_ref, model=split_model)
    close(ours.x_hat, x_net)
    close(ours.loss, theirs)
    assert_same_grads(model, ours.loss, theirs)


def test_ddssl_r2r_term():
    physics, model, _, y, mask = make_problem(SIGMA)
    loss = DDSSLLoss(alpha=0.5)
    ours = loss(model, physics, y, Acquisition(mask), rng=rng())

    y1 = loss.recorrupt(y, Acquisition(mask), SIGMA, rng())
    x_net = model(y1, Acquisition(mask))

    class Recorrupted:  # what R2RModel hands R2RLoss: the corrupted input of this pass
        def get_corruption(self):
            return y1

    reference = deepinv.loss.R2RLoss(noise_model=deepinv.physics.GaussianNoise(SIGMA), alpha=0.5)
    theirs = reference(x_net=x_net, y=y, physics=their_physics(mask), model=Recorrupted())
    close(ours.terms["r2r"], theirs)
    close(ours.x_hat, x_net)
