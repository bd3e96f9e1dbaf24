"""MRI physics, the acquisition only: Fourier transforms, the operator and the mask laws (plain torch)."""

from ssmri.physics.acquisition import Acquisition, apply_mask
from ssmri.physics.fastmri_masks import (
    FastMRIEquispacedFractionMaskLaw,
    FastMRIMagicFractionMaskLaw,
    FastMRIRandomMaskLaw,
)
from ssmri.physics.fft import fft2c, ifft2c, magnitude, to_channels, to_complex
from ssmri.physics.masks import (
    CartesianMaskLaw,
    EquispacedMaskLaw,
    FixedCountEquispacedMaskLaw,
    FixedCountUniformMaskLaw,
    GaussianMaskLaw,
    UniformRandomMaskLaw,
    make_mask_law,
)
from ssmri.physics.multicoil import MultiCoilMRI, birdcage_maps
from ssmri.physics.operator import SingleCoilMRI

__all__ = [
    "Acquisition",
    "MultiCoilMRI",
    "birdcage_maps",
    "apply_mask",
    "CartesianMaskLaw",
    "EquispacedMaskLaw",
    "FastMRIEquispacedFractionMaskLaw",
    "FastMRIMagicFractionMaskLaw",
    "FastMRIRandomMaskLaw",
    "FixedCountEquispacedMaskLaw",
    "FixedCountUniformMaskLaw",
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
