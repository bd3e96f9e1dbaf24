"""SSDU-Consistency and MOC-SSDU: what each term equals in the cases that define it."""

import torch

from ssmri.losses import MOCSSDULoss, SSDUConsistencyLoss, SSDULoss
from ssmri.losses.base import mse
from ssmri.physics import Acquisition
from ssmri.transforms import BernoulliSplitter
from tests.helpers.problems import small_problem


class Oracle(torch.nn.Module):
    """A network that returns the truth whatever it is given: exactly consistent with every split."""

    def __init__(self, x):
        super().__init__()
        self.x, self.scale = x, torch.nn.Parameter(torch.ones(()))

    def forward(self, y, acq):
        return self.scale * self.x


def test_ssdu_consistency_vanishes_for_a_split_invariant_consistent_network():
    physics, x, y, mask = small_problem()
    loss = SSDUConsistencyLoss(BernoulliSplitter(0.6))
    output = loss(Oracle(x), physics, y, Acquisition(mask), rng=torch.Generator())
    assert float(output.loss.detach()) < 1e-10 and float(output.terms["consistency"]) < 1e-10


def test_ssdu_consistency_agreement_is_the_unmeasured_kspace_difference():
    physics, x, y, mask = small_problem()
    acq = Acquisition(mask)
    seen = []

    def model(y_in, acq_in):  # remembers its input masks; depends on them
        seen.append(acq_in.mask)
        return physics.backproject(y_in, acq_in) * 1.5

    loss = SSDUConsistencyLoss(BernoulliSplitter(0.6))
    output = loss(model, physics, y, acq, rng=torch.Generator().manual_seed(0))
    first, second = (physics.backproject(y, acq.with_mask(m)) * 1.5 for m in seen)
    assert not torch.equal(seen[0], seen[1])  # two independent splits
    unmeasured = acq.with_mask(1 - mask)
    expected = mse(physics.measure(first, unmeasured), physics.measure(second, unmeasured))
    torch.testing.assert_close(output.terms["consistency"], expected)
    fit = mse(physics.measure(first, acq), y) + mse(physics.measure(second, acq), y)
    torch.testing.assert_close(output.terms["mc"], fit)


def test_moc_ssdu_consistency_vanishes_for_an_exact_network_and_equals_ssdu_otherwise():
    physics, x, y, mask = small_problem()
    acq = Acquisition(mask)
    output = MOCSSDULoss(BernoulliSplitter(0.6))(Oracle(x), physics, y, acq, rng=torch.Generator())
    assert float(output.terms["moc"]) < 1e-10 and float(output.terms["ssdu"]) < 1e-10

    def zero_filled(y_in, acq_in):
        return physics.backproject(y_in, acq_in)

    loss = MOCSSDULoss(BernoulliSplitter(0.6), split_second_pass=False)
    output = loss(zero_filled, physics, y, acq, rng=torch.Generator().manual_seed(1))
    # The SSDU term is SSDU's on the same first split (SSDU draws it first from the same stream).
    ssdu = SSDULoss(BernoulliSplitter(0.6))
    ssdu = ssdu(zero_filled, physics, y, acq, rng=torch.Generator().manual_seed(1))
    torch.testing.assert_close(output.terms["ssdu"], ssdu.loss)
    # Zero-filled twice through A_g then A: MSE(A Ag^H Ag A1^H y1, y), computed by hand.
    rng = torch.Generator().manual_seed(1)
    split = loss.splitter.split(mask, rng)
    fresh = physics.sample_mask(len(y), rng)
    x1 = physics.backproject(y * split, acq.with_mask(split))
    cycle = physics.backproject(physics.measure(x1, acq.with_mask(fresh)), acq.with_mask(fresh))
    torch.testing.assert_close(output.terms["moc"], mse(physics.measure(cycle, acq), y))
