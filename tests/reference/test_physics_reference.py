"""Cross-check the MRI operator, the mask generators and the splitters against DeepInverse 0.5.

Compared exactly (1e-5 relative):
- ``fft2c``/``ifft2c`` against ``MRIMixin.fft``/``ifft`` (centred, orthonormal), odd sizes too.
- ``SingleCoilMRI.A``/``A_adjoint`` against ``deepinv.physics.MRI`` with the same mask, in both
  layouts: our ``(B, 1, H, W)`` mask becomes DeepInverse's ``(B, 2, H, W)`` (one copy per
  real/imaginary channel), and DeepInverse's masks are ours after ``mask[:, :1]``.
- ``simulate`` against ``MRI(noise_model=GaussianNoise(σ))`` fed the same generator: the same
  noise, added at sampled entries only.
- The variable-density law's column weights (``GaussianMaskLaw``/``RandomMaskGenerator``
  ``get_pdf`` with the centre zeroed) and the centre columns; the Gaussian splitter's weights
  and protected block (``GaussianSplittingMaskGenerator``); how many points each splitter
  keeps, ``|M₁| = |M| - ⌈(1 - ρ)|M|⌉``, for split ratio 0.6 on many masks.

Compared in law only (Monte-Carlo tolerance): the masks themselves. Both sides draw with
``torch.multinomial``, but over different index sets (DeepInverse over all columns with zero
weight at the centre, float32; ours over the outer columns, float64), so the same seed gives
different masks. We compare ours' exact column probabilities with DeepInverse's
``average()`` of 2000 masks, and the held-out frequency of the splitters' ``M₂``. For split
ratios whose ``(1 - ρ)|M|`` is an integer, DeepInverse's float32 arithmetic can hold out one
point more than the exact count (e.g. ρ = 0.4); we keep the exact count.
"""

import pytest
import torch

deepinv = pytest.importorskip("deepinv")

from ssmri.physics import SingleCoilMRI  # noqa: E402
from ssmri.physics.acquisition import Acquisition  # noqa: E402
from ssmri.physics.fft import fft2c, ifft2c  # noqa: E402
from ssmri.physics.masks import make_mask_law  # noqa: E402
from ssmri.transforms.split_masks import BernoulliSplitter, GaussianSplitter  # noqa: E402
from tests.helpers.reference import close, rng  # noqa: E402

pytestmark = pytest.mark.reference

MRIMixin = deepinv.utils.mixins.MRIMixin
REFERENCE_MASKS = {
    "gaussian": deepinv.physics.generator.GaussianMaskGenerator,
    "uniform": deepinv.physics.generator.RandomMaskGenerator,
}


@pytest.mark.parametrize("shape", [(32, 32), (31, 33)])
def test_centred_orthonormal_fft(shape):
    x = torch.randn(3, 2, *shape, generator=rng())
    close(fft2c(x), MRIMixin.from_torch_complex(MRIMixin.fft(MRIMixin.to_torch_complex(x))))
    close(ifft2c(x), MRIMixin.from_torch_complex(MRIMixin.ifft(MRIMixin.to_torch_complex(x))))


def test_operator_and_adjoint_with_our_masks():
    physics = SingleCoilMRI(32, acceleration=4)
    generator = rng()
    x, k = torch.randn(2, 3, 2, 32, 32, generator=generator)
    mask = physics.sample_mask(3, generator)
    theirs = deepinv.physics.MRI(mask=mask, img_size=(32, 32))
    assert torch.equal(theirs.mask, torch.cat([mask, mask], dim=1))  # (B,1,H,W) -> (B,2,H,W)
    close(physics.A(x, mask), theirs.A(x))
    close(physics.A_adjoint(k, mask), theirs.A_adjoint(k))  # also masks unmasked k-space
    close(physics.zero_filled(physics.A(x, mask), Acquisition(mask)), theirs.A_adjoint(theirs.A(x)))


def test_operator_with_their_masks():
    generator = deepinv.physics.generator.GaussianMaskGenerator((2, 32, 32), acceleration=4, rng=rng())
    their_mask = generator.step(batch_size=3)["mask"]  # (B, 2, H, W), channels equal
    assert torch.equal(their_mask[:, :1], their_mask[:, 1:])
    mask = their_mask[:, :1]
    x = torch.randn(3, 2, 32, 32, generator=rng(1))
    theirs = deepinv.physics.MRI(mask=their_mask, img_size=(32, 32))
    physics = SingleCoilMRI(32, acceleration=4)
    close(physics.A(x, mask), theirs.A(x))
    close(physics.A_adjoint(theirs.A(x), mask), theirs.A_adjoint(theirs.A(x)))


def test_noisy_measurements_replay_the_reference():
    physics = SingleCoilMRI(32, acceleration=4, noise_std=0.05)
    mask = physics.sample_mask(3, rng(1))
    x = torch.randn(3, 2, 32, 32, generator=rng(2))
    noise = deepinv.physics.GaussianNoise(sigma=0.05, rng=rng())
    theirs = deepinv.physics.MRI(mask=mask, img_size=(32, 32), noise_model=noise)
    y = physics.simulate(x, Acquisition(mask), rng())
    close(y, theirs(x))
    assert (y[(mask == 0).expand_as(y)] == 0).all()


@pytest.mark.parametrize("sampling", ["gaussian", "uniform"])
@pytest.mark.parametrize("width,acceleration", [(32, 4), (128, 4), (320, 6), (128, 8), (32, 2)])
def test_mask_law_weights_and_centre_columns(sampling, width, acceleration):
    ours = make_mask_law(sampling, (8, width), acceleration)
    theirs = REFERENCE_MASKS[sampling]((8, width), acceleration=acceleration)
    pdf = theirs.get_pdf(width).double()
    centre = torch.zeros(width, dtype=torch.bool)
    centre[width // 2 - theirs.n_center // 2 : width // 2 - (-theirs.n_center // 2)] = True
    assert torch.equal(torch.nonzero(centre).flatten(), ours.center_columns)
    assert theirs.n_lines + theirs.n_center == ours.num_columns
    if sampling == "gaussian":
        weights = ours.outer_weights()
        close(weights / weights.sum(), pdf[~centre] / pdf[~centre].sum())
    masks = theirs.step(batch_size=4)["mask"]
    assert (masks[..., 0, :].sum(-1) == ours.num_columns).all()


@pytest.mark.parametrize("sampling", ["gaussian", "uniform"])
@pytest.mark.parametrize("acceleration", [4, 2])
def test_exact_column_probability_matches_the_reference_average(sampling, acceleration):
    theirs = REFERENCE_MASKS[sampling]((1, 32), acceleration=acceleration, rng=rng())
    estimate = theirs.average(n=2000, batch_size=2000)["mask"].flatten().double()
    exact = make_mask_law(sampling, 32, acceleration).column_probability()
    assert (estimate - exact).abs().max() < 0.05, (estimate - exact).abs().max()


@pytest.mark.parametrize("shape", [(32, 32), (31, 33), (64, 48)])
def test_gaussian_split_weights_and_protected_block(shape):
    ours = GaussianSplitter(0.6)
    theirs = deepinv.physics.generator.GaussianSplittingMaskGenerator((1, *shape), split_ratio=0.6)
    pdf = theirs.get_pdf(shape).double()
    height, width = shape
    block = torch.zeros(shape, dtype=torch.bool)
    block[height // 2 - 4 : height // 2 + 4, width // 2 - 4 : width // 2 + 4] = True  # theirs, (8, 8)
    assert torch.equal(ours.protected(*shape), block)
    close(ours.weights(*shape), pdf)


def _input_masks(count: int = 12) -> torch.Tensor:
    """Point masks of many densities, so that many different ``|M|`` are tried."""
    generator = rng(3)
    density = torch.linspace(0.05, 0.9, count)[:, None, None, None]
    return (torch.rand(count, 1, 32, 32, generator=generator) < density).float()


@pytest.mark.parametrize("name", ["bernoulli", "gaussian"])
def test_splitters_keep_as_many_points_as_the_reference(name):
    masks = torch.cat([_input_masks(), SingleCoilMRI(32, 4).sample_mask(4, rng())])
    if name == "bernoulli":
        ours = BernoulliSplitter(0.6)
        theirs = deepinv.physics.generator.BernoulliSplittingMaskGenerator((1, 32, 32), 0.6, rng=rng())
    else:
        ours = GaussianSplitter(0.6)
        theirs = deepinv.physics.generator.GaussianSplittingMaskGenerator((1, 32, 32), 0.6, rng=rng())
    their_split = theirs.step(batch_size=len(masks), input_mask=masks)["mask"]
    our_split = ours.split(masks, rng())
    assert (their_split <= masks).all() and (our_split <= masks).all()
    assert torch.equal(our_split.sum(dim=(1, 2, 3)), their_split.sum(dim=(1, 2, 3)))


@pytest.mark.parametrize("name", ["bernoulli", "gaussian"])
def test_held_out_points_follow_the_reference_law(name):
    draws = 200
    mask = SingleCoilMRI(32, 4).sample_mask(1, rng()).expand(draws, 1, 32, 32).contiguous()
    if name == "bernoulli":
        ours = BernoulliSplitter(0.6)
        theirs = deepinv.physics.generator.BernoulliSplittingMaskGenerator((1, 32, 32), 0.6, rng=rng())
    else:
        ours = GaussianSplitter(0.6)
        theirs = deepinv.physics.generator.GaussianSplittingMaskGenerator((1, 32, 32), 0.6, rng=rng())
    their_held_out = mask - theirs.step(batch_size=draws, input_mask=mask)["mask"]
    our_held_out = mask - ours.split(mask, rng())

    def frequency(held_out):  # per 4x4 block, so that Monte-Carlo noise averages out
        return torch.nn.functional.avg_pool2d(held_out.mean(0, keepdim=True), 4)

    difference = (frequency(our_held_out) - frequency(their_held_out)).abs().max()
    assert difference < 0.06, difference
