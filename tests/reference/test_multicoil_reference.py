"""Cross-check multi-coil physics and losses against DeepInverse 0.5 (``make test-reference``).

DeepInverse's ``MultiCoilMRI`` holds complex coil maps ``(B, C, H, W)`` and k-space
``(B, 2, C, H, W)`` (real/imaginary first); ours are ``(B, C, 2, H, W)``, hence the transposes.
Its birdcage maps come from sigpy, which the reference environment installs.
"""

import pytest
import torch

deepinv = pytest.importorskip("deepinv")
pytest.importorskip("sigpy")

from ssmri.losses import AdjointMCLoss, MCLoss  # noqa: E402
from ssmri.physics import Acquisition, MultiCoilMRI, birdcage_maps  # noqa: E402
from ssmri.physics.fft import to_complex  # noqa: E402
from tests.helpers.models import tiny_model  # noqa: E402
from tests.helpers.reference import close, rng  # noqa: E402

pytestmark = pytest.mark.reference
SIZE, COILS, BATCH = 32, 4, 2


def theirs_for(acq: Acquisition):
    return deepinv.physics.MultiCoilMRI(mask=acq.mask, coil_maps=to_complex(acq.maps), img_size=(SIZE, SIZE))


def problem():
    physics = MultiCoilMRI(SIZE, 4, coils=COILS)
    generator = rng()
    acq = Acquisition(physics.sample_mask(BATCH, generator), physics.sensitivity_maps(BATCH))
    x = torch.randn(BATCH, 2, SIZE, SIZE, generator=generator)
    return physics, acq, x


def test_birdcage_maps_match_deepinverse_and_sigpy():
    theirs = deepinv.physics.MultiCoilMRI(img_size=(SIZE, SIZE)).simulate_birdcage_csm(COILS)
    close(to_complex(birdcage_maps(COILS, SIZE)), theirs)


def test_forward_and_adjoint_match_deepinverse():
    physics, acq, x = problem()
    theirs = theirs_for(acq)
    ours_y = physics.measure(x, acq)
    close(ours_y, theirs.A(x).transpose(1, 2))
    close(physics.backproject(ours_y, acq), theirs.A_adjoint(ours_y.transpose(1, 2)))


def test_mc_and_adjoint_mc_match_deepinverse_on_multicoil():
    physics, acq, x = problem()
    y = physics.measure(x, acq)
    model = tiny_model()
    x_net = model(y, acq)
    theirs = theirs_for(acq)
    their_y = y.transpose(1, 2)
    # SSIBench's AdjointMCLoss: metric(Aᴴ A x_net, Aᴴ y) with DeepInverse's default MSE.
    adjoint = torch.nn.functional.mse_loss(theirs.A_adjoint(theirs.A(x_net)), theirs.A_adjoint(their_y))
    close(AdjointMCLoss()(model, physics, y, acq, rng=rng()).loss, adjoint)
    close(MCLoss()(model, physics, y, acq, rng=rng()).loss, adjoint)  # MC is the adjoint form here
    plain = deepinv.loss.MCLoss()(y=their_y, x_net=x_net, physics=theirs)
    assert not torch.allclose(plain.mean(), adjoint)  # the two forms differ in multi-coil
