"""MRI physics, the acquisition only: Fourier transforms, the operator and the mask laws (plain torch)."""

from ssmri.physics.fft import fft2c, ifft2c, magnitude, to_channels, to_complex
from ssmri.physics.masks import (
    CartesianMaskLaw,
    EquispacedMaskLaw,
    GaussianMaskLaw,
    UniformRandomMaskLaw,
    make_mask_law,
)
from ssmri.physics.operator import SingleCoilMRI

__all__ = [
    "CartesianMaskLaw",
    "EquispacedMaskLaw",
    "GaussianMaskLaw",
    "SingleCoilMRI",
    "UniformRandomMaskLaw",
    "fft2c",
    "ifft2c",
    "magnitude",
    "make_mask_law",
    "to_channels",
    "to_complex",
]
