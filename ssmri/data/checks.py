"""What data must satisfy where it is read: an HDF5 file that opens, images that hold signal.

Each refusal is a :class:`~ssmri.errors.DataError` naming the file or the split and the fix.
"""

import h5py
from torch import Tensor

from ssmri.errors import DataError


def open_hdf5(path, key: str) -> h5py.File:
    """``h5py.File(path, "r")``, or a :class:`DataError` naming the file and the key that led to it."""
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataError(
            f"{path} is not a readable HDF5 file ({error}); remove it from the folder {key} "
            f"names, or replace it with an intact copy"
        ) from None


def check_images(images: Tensor, split: str) -> None:
    """Refuse images whose largest magnitude is zero: PSNR and SSIM have no data range there."""
    peaks = images.pow(2).sum(dim=1).sqrt().amax(dim=(-2, -1))
    empty = (peaks <= 0).nonzero().flatten().tolist()
    if empty:
        raise DataError(
            f"data.images: {len(empty)} {split} image(s) are all zero (indices {empty[:5]}); an "
            f"image without signal has no PSNR/SSIM. Remove those slices from the data"
        )
