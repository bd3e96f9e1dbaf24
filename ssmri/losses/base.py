"""The one interface every training objective shares.

A loss receives the network ``f(y, acq)``, the acquisition physics, the measurements and their
:class:`~ssmri.physics.acquisition.Acquisition` (each sample's mask and, in multi-coil, coil
maps), and returns
the scalar to minimise together with the reconstruction it made. It also owns its method's
inference rule (``reconstruct``), so that e.g. Noise2Inverse can average split
reconstructions at test time while the training loop stays the same for every method.
"""

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from ssmri.physics.acquisition import Acquisition
from ssmri.physics.operator import SingleCoilMRI


class Reconstructor(Protocol):
    """``f(y, A)``: measurements ``(B, 2, H, W)`` (multi-coil ``(B, C, 2, H, W)``) and their
    acquisition -> image ``(B, 2, H, W)``."""

    def __call__(self, y: Tensor, acq: Acquisition) -> Tensor: ...


@dataclass
class LossOutput:
    """What a loss returns.

    Attributes:
        loss: scalar to minimise (for adversarial methods, the generator's objective).
        x_hat: ``(B, 2, H, W)`` the reconstruction made on the way (for logging only).
        terms: named detached parts of ``loss`` for logging, e.g. ``{"mc": ..., "ei": ...}``.
        cache: tensors a second optimiser step needs (adversarial methods), e.g. the fakes.
    """

    loss: Tensor
    x_hat: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    cache: dict[str, Tensor] = field(default_factory=dict)


class ReconstructionLoss(nn.Module):
    """Base class of every training objective.

    Subclasses implement :meth:`forward`. Self-supervised losses must never read ``x``; only
    a loss that sets ``needs_ground_truth = True`` is ever given it by the training loop.
    """

    needs_ground_truth: bool = False
    #: The inference rule draws random numbers; it then gets one seeded random stream (``rng``) per image,
    #: so that results never depend on batching or on the number of ranks.
    random_inference: bool = False
    #: The objective measures the reconstruction, so its value on validation measurements can
    #: choose a checkpoint (``selection=val_loss``); False falls back to the last weights.
    selectable: bool = True

    def forward(
        self,
        model: Reconstructor,
        physics: SingleCoilMRI,
        y: Tensor,
        acq: Acquisition,
        x: Tensor | None = None,
        rng: torch.Generator | None = None,
    ) -> LossOutput:
        """Training objective on one batch.

        Args:
            model: the network ``f(y, acq)``.
            physics: the acquisition (operator, mask law, noise level).
            y: ``(B, 2, H, W)`` measured k-space, zero off the mask; ``(B, C, 2, H, W)`` in
                multi-coil.
            acq: each sample's sampling mask ``(B, 1, H, W)`` and, in multi-coil, coil maps.
            x: ``(B, 2, H, W)`` ground truth, given only when ``needs_ground_truth``.
            rng: CPU random rng for every random choice the loss makes
                (split masks, transforms, fresh operators), seeded per (seed, rank, worker).
        """
        raise NotImplementedError

    def reconstruct(
        self,
        model: Reconstructor,
        physics: SingleCoilMRI,
        y: Tensor,
        acq: Acquisition,
        rng: torch.Generator | list[torch.Generator] | None = None,
    ) -> Tensor:
        """The method's inference rule; ``f(y, A)`` unless the method says otherwise.

        A method with ``random_inference`` accepts one ``rng`` per image of the batch.
        """
        return model(y, acq)


class AdversarialLoss(ReconstructionLoss):
    """A loss with a discriminator trained by its own optimiser, after the generator step.

    Subclasses hold ``self.discriminator`` and implement :meth:`discriminator_loss`, which
    gets the ``LossOutput`` of the generator step (its ``cache`` holds what it needs).
    """

    discriminator: nn.Module
    #: The generator's objective measures how well the critic is fooled, which moves with the
    #: critic: no basis for choosing weights.
    selectable = False

    def discriminator_loss(
        self,
        physics: SingleCoilMRI,
        y: Tensor,
        acq: Acquisition,
        generator_output: LossOutput,
        rng: torch.Generator | None = None,
    ) -> Tensor:
        raise NotImplementedError


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean over all elements of ``(a - b)²``."""
    return torch.mean((a - b) ** 2)
