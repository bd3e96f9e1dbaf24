"""What a loss does to data: random image transforms, k-space augmentations, splitting masks.

The acquisition itself (FFT, operator, mask laws) lives in :mod:`ssmri.physics`; everything here
is drawn afresh by a loss at each step from the CPU random stream ``rng`` it is given.
"""

from ssmri.transforms.image import Diffeomorphism, Rotate, Shift
from ssmri.transforms.kspace import KspaceCompose, KspaceNoise, RandomPhaseError
from ssmri.transforms.split_masks import BernoulliSplitter, GaussianSplitter, MultiplicativeSplitter

__all__ = [
    "BernoulliSplitter",
    "Diffeomorphism",
    "GaussianSplitter",
    "KspaceCompose",
    "KspaceNoise",
    "MultiplicativeSplitter",
    "RandomPhaseError",
    "Rotate",
    "Shift",
]
