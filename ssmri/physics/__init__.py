"""MRI physics: Fourier transforms, the single-coil operator and sampling masks (plain torch)."""

from ssmri.physics.fft import fft2c, ifft2c, magnitude, to_channels, to_complex
from ssmri.physics.kspace_augment import KspaceCompose, KspaceNoise, RandomPhaseError
from ssmri.physics.masks import (
    CartesianMaskGenerator,
    EquispacedMaskGenerator,
    GaussianMaskGenerator,
    UniformRandomMaskGenerator,
    make_mask_generator,
)
from ssmri.physics.operator import SingleCoilMRI

__all__ = [
    "CartesianMaskGenerator",
    "EquispacedMaskGenerator",
    "GaussianMaskGenerator",
    "KspaceCompose",
    "KspaceNoise",
    "RandomPhaseError",
    "SingleCoilMRI",
    "UniformRandomMaskGenerator",
    "fft2c",
    "ifft2c",
    "magnitude",
    "make_mask_generator",
    "to_channels",
    "to_complex",
]
