"""A small reconstruction problem: phantom images, their masks and measurements."""

import torch

from ssmri.data import PhantomImages
from ssmri.physics import Acquisition, SingleCoilMRI

SIZE = 32


def acquisition_for(physics, mask: torch.Tensor) -> Acquisition:
    """The acquisition of ``mask`` with the physics' simulated coil maps if it is multi-coil."""
    maps = physics.sensitivity_maps(len(mask)) if hasattr(physics, "sensitivity_maps") else None
    return Acquisition(mask, maps)


def small_problem(batch: int = 4, seed: int = 0, noise_std: float = 0.0, physics=None):
    """``(physics, x, y, mask)``: ``batch`` phantoms, 32x32 at R = 4 unless ``physics`` is given.

    ``x`` is ``(B, 2, H, W)``, ``y`` too (``(B, C, 2, H, W)`` for multi-coil physics, with its
    birdcage maps: :func:`acquisition_for`), ``mask`` is ``(B, 1, H, W)``; masks and noise come
    from ``seed``.
    """
    physics = physics if physics is not None else SingleCoilMRI(SIZE, 4, noise_std=noise_std)
    rng = torch.Generator().manual_seed(seed)
    x = PhantomImages(physics.image_size[0], seed=seed).images("train", batch)
    mask = physics.sample_mask(batch, rng)
    return physics, x, physics.simulate(x, acquisition_for(physics, mask), rng), mask
