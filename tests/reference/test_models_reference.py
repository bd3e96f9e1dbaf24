"""Cross-check the U-Net and MoDL against DeepInverse 0.5 (``models.UNet``, ``models.MoDL``).

Compared exactly:
- Parameter counts: our ``UNet()`` and DeepInverse's ``UNet(2, 2, scales=3)`` both have
  2,070,082; DeepInverse's ``MoDL`` around it has 2,070,091, the tutorial's printed count:
  nine trainable scalars, ``stepsize``, ``g_param`` and ``lambda`` per iteration, of which only
  ``stepsize`` acts (a U-Net ignores the noise level ``g_param``, and ``lambda`` only scales
  that level). Ours has one ``λ_k`` per iteration: 2,070,085.
- The U-Net's output with the same weights (names mapped, train and eval mode), at sizes
  divisible by ``2**(scales-1)`` and at sizes that need padding (both replicate-pad bottom
  and right, then crop back).
- MoDL: DeepInverse's ``MoDL`` is unrolled half-quadratic splitting, ``x_k = D(prox(x_{k-1}))``
  from ``x_0 = Aᴴy``, where ``prox`` is ``MRI.prox_l2`` with step ``γ_k``:
  ``argmin_x ½‖Ax − y‖² + 1/(2γ_k)‖x − z‖² = Fᴴ[(My + F z/γ_k)/(M + 1/γ_k)]``, our DC step with
  ``λ_k = 1/γ_k``. So ``MoDL(dc_first=True)`` with ``softplus(ρ_k) = 1/γ_k`` reproduces it, and
  our default paper order (denoiser, then DC; data consistent output) equals the same
  DeepInverse network with ``g_first=True``. Compared to 1e-5 in eval mode and to 1e-4 in
  train mode, where batch statistics amplify the float32 rounding of the two DC formulas.
"""

import pytest
import torch

deepinv = pytest.importorskip("deepinv")

from ssmri.models import MoDL, UNet  # noqa: E402
from ssmri.models.modl import data_consistency  # noqa: E402
from ssmri.physics import SingleCoilMRI  # noqa: E402
from ssmri.physics.acquisition import Acquisition  # noqa: E402
from tests.helpers.reference import close, rng  # noqa: E402

pytestmark = pytest.mark.reference

SIZE, BATCH = 32, 3
FEATURES = [8, 16, 32]
STEPSIZES = [0.5, 2.0, 1.3]


def count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def their_state_dict(unet: UNet) -> dict:
    """Our U-Net's weights under DeepInverse's names (``down.i`` -> ``Conv{i+1}``, ...)."""
    scales = unet.scales
    names = {"down": lambda i: f"Conv{i + 1}", "up": lambda i: f"Up{scales - i}"}
    names["merge"] = lambda i: f"Up_conv{scales - i}"
    state = {}
    for key, value in unet.state_dict().items():
        part, rest = key.split(".", 1)
        if part == "head":
            state[f"Conv_1x1.{rest}"] = value
        else:
            index, rest = rest.split(".", 1)
            state[f"{names[part](int(index))}.{rest}"] = value
    return state


def twin_unets():
    torch.manual_seed(0)
    ours = UNet(base_features=FEATURES[0], scales=len(FEATURES))
    # Non-trivial batch-norm statistics and affine parameters, so that eval mode tests them.
    with torch.no_grad():
        for module in ours.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor in (module.weight, module.bias, module.running_mean):
                    tensor.normal_(0, 0.3, generator=rng())
                module.running_var.uniform_(0.5, 2, generator=rng())
    theirs = deepinv.models.UNet(2, 2, scales=len(FEATURES), channels_per_scale=FEATURES)
    theirs.load_state_dict(their_state_dict(ours))
    return ours, theirs


def problem():
    physics = SingleCoilMRI(SIZE, acceleration=4)
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=rng(1))
    mask = physics.sample_mask(BATCH, rng(2))
    return physics.A(x, mask), mask


def test_parameter_counts():
    assert count(UNet()) == count(deepinv.models.UNet(2, 2, scales=3)) == 2_070_082
    theirs = deepinv.models.MoDL(deepinv.models.UNet(2, 2, scales=3), num_iter=3)
    assert count(theirs) == 2_070_091
    assert count(MoDL(UNet(), num_iter=3)) == 2_070_082 + 3


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_unet_output_with_the_same_weights(mode):
    ours, theirs = twin_unets()
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=rng())
    getattr(ours, mode)(), getattr(theirs, mode)()
    close(ours(x), theirs(x))


def test_unet_padding_for_sizes_not_divisible_by_four():
    ours, theirs = twin_unets()
    x = torch.randn(BATCH, 2, 30, 30, generator=rng())
    close(ours.eval()(x), theirs.eval()(x))


def twin_modls(dc_first: bool):
    unet, their_unet = twin_unets()
    theirs = deepinv.models.MoDL(their_unet, num_iter=3)
    with torch.no_grad():
        for stepsize, value in zip(theirs.params_algo["stepsize"], STEPSIZES):
            stepsize.fill_(value)
    ours = MoDL(unet, num_iter=3, dc_first=dc_first)
    with torch.no_grad():  # softplus(rho) = lambda = 1 / stepsize
        ours.rho.copy_(torch.log(torch.expm1(1 / torch.tensor(STEPSIZES))))
    return ours.eval(), theirs.eval()


@pytest.mark.parametrize("mode,rtol", [("eval", 1e-5), ("train", 1e-4)])
def test_dc_first_modl_reproduces_the_reference(mode, rtol):
    y, mask = problem()
    ours, theirs = twin_modls(dc_first=True)
    getattr(ours, mode)(), getattr(theirs, mode)()
    physics = deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE))
    close(ours(y, Acquisition(mask)), theirs(y, physics), rtol=rtol)


def test_paper_order_modl_is_the_reference_with_denoiser_first():
    y, mask = problem()
    ours, theirs = twin_modls(dc_first=False)
    theirs.fixed_point.iterator.g_first = True
    physics = deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE))
    close(ours(y, Acquisition(mask)), theirs(y, physics))


def test_reference_dc_step_is_our_closed_form():
    y, mask = problem()
    z = torch.randn(BATCH, 2, SIZE, SIZE, generator=rng(4))
    physics = deepinv.physics.MRI(mask=mask, img_size=(SIZE, SIZE))
    data_fidelity = deepinv.optim.data_fidelity.L2()
    for stepsize in STEPSIZES:
        their_dc = data_fidelity.prox(z, y, physics, gamma=stepsize)
        close(data_consistency(z, y, mask, torch.tensor(1 / stepsize)), their_dc)
