"""Adversarial self-supervision: a discriminator compares measured data with re-measured reconstructions.

Both methods are least-squares GANs (Mao et al., 2017): the generator minimises
``MSE(D(fake), 1)`` (plus its own terms) and the discriminator, in its own optimiser step after
the generator's, minimises ``MSE(D(real), 1) + MSE(D(sg[fake]), 0)`` on the tensors the
generator step left in ``LossOutput.cache``.
"""

import logging

import torch
from torch import Tensor, nn

from ssmri.losses.base import AdversarialLoss, LossOutput, mse
from ssmri.losses.consistency import measurement_consistency
from ssmri.transforms.kspace import KspaceNoise

log = logging.getLogger(__name__)


def generator_adversarial(discriminator: nn.Module, fake: Tensor) -> Tensor:
    """``MSE(D(fake), 1)`` with gradients to ``fake`` only, never to the discriminator."""
    parameters = [p for p in discriminator.parameters() if p.requires_grad]
    for p in parameters:
        p.requires_grad_(False)  # the generator step must leave no gradient on D
    try:
        scores = discriminator(fake)
    finally:
        for p in parameters:
            p.requires_grad_(True)
    return mse(scores, torch.ones_like(scores))


def discriminator_objective(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """LSGAN discriminator loss ``MSE(D(real), 1) + MSE(D(sg[fake]), 0)``."""
    real_scores = discriminator(real.detach())
    fake_scores = discriminator(fake.detach())
    return mse(real_scores, torch.ones_like(real_scores)) + mse(fake_scores, torch.zeros_like(fake_scores))


def fresh_mask(physics, like: Tensor, rng: torch.Generator | None) -> Tensor:
    """``(B, 1, H, W)`` new masks, one per sample, from the data's mask law."""
    return physics.sample_mask(like.shape[0], rng).to(device=like.device, dtype=like.dtype)


class UnsupervisedAdversarialLoss(AdversarialLoss):
    r"""Unsupervised adversarial loss (AmbientGAN-style): zero-filled data vs re-measured output.

    .. math::
        \mathcal{L}_G = w\,\mathrm{MSE}(D(A_g^H A_g \hat x), 1) + w_{mc}\,\mathrm{MSE}(A\hat x, y),
        \qquad \mathcal{L}_D = \mathrm{MSE}(D(A'^H y'), 1) + \mathrm{MSE}(D(\mathrm{sg}[A_g^H A_g \hat x]), 0)

    with :math:`\hat x = f(y, A)`, :math:`A_g` a fresh mask per sample and :math:`A'^H y'` the
    zero-filled image of another training sample. The discriminator sees images. Cole et al.,
    "Fast Unsupervised MRI Reconstruction Without Fully-Sampled Ground Truth Data Using
    Generative Adversarial Networks", ICCVW 2021; Bora et al., AmbientGAN, ICLR 2018. The
    reference (SSIBench, DeepInverse ``MultiOperatorUnsupAdversarial*Loss``) has no MC term.

    "Another sample": the reference draws the reals from a second, independently shuffled
    loader of training measurements. Here ``real_source="previous"`` uses the zero-filled
    images of the previous training batch (with shuffling, other random samples; batch size 1
    works), falling back to the current batch on the first step. ``"current"`` uses the
    current batch; the LSGAN losses are means over reals and fakes separately, so the pairing
    within a batch never matters.

    Args:
        discriminator: ``D``, image ``(B, 2, H, W)`` -> ``(B,)`` logits.
        adversarial_weight: weight ``w`` of the generator's adversarial term.
        mc_weight: weight of an optional measurement-consistency term (0: the reference).
        real_source: ``"previous"`` or ``"current"`` batch for the reals, see above.
    """

    def __init__(
        self,
        discriminator: nn.Module,
        adversarial_weight: float = 1.0,
        mc_weight: float = 0.0,
        real_source: str = "previous",
    ):
        super().__init__()
        if real_source not in ("previous", "current"):
            raise ValueError(f"real_source must be 'previous' or 'current', got {real_source!r}")
        self.discriminator = discriminator
        self.adversarial_weight = float(adversarial_weight)
        self.mc_weight = float(mc_weight)
        self.real_source = real_source
        self._previous_real: Tensor | None = None

    def get_extra_state(self) -> dict:
        # Saved in checkpoints, so a resumed run judges the same reals as an uninterrupted one.
        return {"previous_real": self._previous_real}

    def set_extra_state(self, state: dict) -> None:
        self._previous_real = state.get("previous_real")

    def real_images(self, physics, y: Tensor, acq) -> Tensor:
        """The reals of this step; remembers this batch's zero-filled images when training."""
        current = physics.zero_filled(y, acq).detach()
        previous = self._previous_real
        if self.training:
            self._previous_real = current
        if self.real_source == "previous" and previous is not None:
            if previous.shape[1:] == current.shape[1:]:
                return previous.to(current.device)
        return current

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat = model(y, acq)
        acq_g = acq.with_mask(fresh_mask(physics, acq.mask, rng))
        fake = physics.backproject(physics.measure(x_hat, acq_g), acq_g)
        adversarial = generator_adversarial(self.discriminator, fake)
        loss = self.adversarial_weight * adversarial
        terms = {"adv": adversarial.detach()}
        if self.mc_weight:
            mc = measurement_consistency(physics, x_hat, y, acq)
            loss = loss + self.mc_weight * mc
            terms["mc"] = mc.detach()
        cache = {"real": self.real_images(physics, y, acq), "fake": fake.detach()}
        return LossOutput(loss, x_hat, terms, cache)

    def discriminator_loss(self, physics, y, acq, generator_output, rng=None) -> Tensor:
        cache = generator_output.cache
        return discriminator_objective(self.discriminator, cache["real"], cache["fake"])


class UAIRLoss(AdversarialLoss):
    r"""Unsupervised adversarial image reconstruction (UAIR).

    .. math::
        \hat y = A_g \hat x + M_g\epsilon,\quad \tilde x = f(\hat y, A_g),\quad
        \mathcal{L}_G = w\,\mathrm{MSE}(D(\hat y), 1) + w_{mc}\,\mathrm{MSE}(A_g\tilde x, \hat y),
        \quad \mathcal{L}_D = \mathrm{MSE}(D(y), 1) + \mathrm{MSE}(D(\mathrm{sg}[\hat y]), 0)

    with :math:`\hat x = f(y, A)`, :math:`A_g` a fresh mask per sample and :math:`\epsilon` the
    acquisition's own noise (none when noiseless). Weights 0.5 and 1 as the paper and reference.
    The discriminator sees k-space in the reference (DeepInverse ``UAIRGeneratorLoss`` with
    ``metric_adv=None``, SSIBench single coil); ``domain="image"`` shows it zero-filled images
    :math:`A^H y` and :math:`A_g^H \hat y` instead. In multi-coil the discriminator always sees
    images (``domain`` is then ignored): multi-coil k-space does not fit an image discriminator,
    and the benchmark takes the adversarial metric after :math:`A^H` there (SSIBench
    ``metric_adv="A_adjoint"``). Pajot et al., "Unsupervised Adversarial Image Reconstruction",
    ICLR 2019.

    Args:
        discriminator: ``D``, ``(B, 2, H, W)`` -> ``(B,)`` logits.
        adversarial_weight: weight ``w`` of the generator's adversarial term (0.5).
        mc_weight: weight ``w_mc`` of the cycle measurement consistency (1).
        domain: ``"kspace"`` (the reference) or ``"image"``: what the discriminator sees.
    """

    def __init__(
        self,
        discriminator: nn.Module,
        adversarial_weight: float = 0.5,
        mc_weight: float = 1.0,
        domain: str = "kspace",
    ):
        super().__init__()
        if domain not in ("kspace", "image"):
            raise ValueError(f"domain must be 'kspace' or 'image', got {domain!r}")
        self.discriminator = discriminator
        self.adversarial_weight = float(adversarial_weight)
        self.mc_weight = float(mc_weight)
        self.domain = domain
        self._said_image_domain = False

    def _view(self, physics, kspace: Tensor, acq) -> Tensor:
        if self.domain == "kspace" and acq.maps is None:
            return kspace
        if self.domain == "kspace" and not self._said_image_domain:
            log.warning(
                "UAIR: loss.domain=kspace is replaced by image in multi-coil: the "
                "discriminator sees the coil-combined A^H y (set loss.domain=image to say so)"
            )
            self._said_image_domain = True
        return physics.backproject(kspace, acq)

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        x_hat = model(y, acq)
        acq_g = acq.with_mask(fresh_mask(physics, acq.mask, rng))
        # Simulate the acquisition with its own noise law, so noise level cannot give fakes away.
        y_hat = physics.measure(x_hat, acq_g)
        if physics.noise_std > 0:
            y_hat = KspaceNoise(physics.noise_std)(y_hat, acq_g.mask, rng)
        x_tilde = model(y_hat, acq_g)
        mc = measurement_consistency(physics, x_tilde, y_hat, acq_g)
        fake = self._view(physics, y_hat, acq_g)
        adversarial = generator_adversarial(self.discriminator, fake)
        loss = self.adversarial_weight * adversarial + self.mc_weight * mc
        terms = {"adv": adversarial.detach(), "mc": mc.detach()}
        cache = {"real": self._view(physics, y, acq).detach(), "fake": fake.detach()}
        return LossOutput(loss, x_hat, terms, cache)

    def discriminator_loss(self, physics, y, acq, generator_output, rng=None) -> Tensor:
        cache = generator_output.cache
        return discriminator_objective(self.discriminator, cache["real"], cache["fake"])


__all__ = ["UAIRLoss", "UnsupervisedAdversarialLoss", "discriminator_objective"]
