"""Small files in both fastMRI layouts: the tutorial's slice tensor and single-coil HDF5 volumes."""

import h5py
import numpy as np
import torch

from ssmri.physics.fft import fft2c


def write_slice_tensor(path, count: int = 20, size: int = 64) -> torch.Tensor:
    """A ``(count, size, size)`` tensor of real slices, each with maximum 1, saved at ``path``."""
    rng = torch.Generator().manual_seed(0)
    slices = torch.rand(count, size, size, generator=rng)
    slices = slices / slices.amax(dim=(1, 2), keepdim=True)
    torch.save(slices, path)
    return slices


def write_fastmri_volume(
    path, slices: int = 4, height: int = 40, width: int = 36, seed: int = 0
) -> np.ndarray:
    """A fastMRI-layout single-coil file: complex kspace (S, H, W) and a 32x32 reconstruction."""
    rng = np.random.default_rng(seed)
    image = rng.random((slices, height, width)).astype(np.float32)
    kspace = fft2c(torch.stack((torch.from_numpy(image), torch.zeros(slices, height, width)), dim=1))
    with h5py.File(path, "w") as file:
        file["kspace"] = (kspace[:, 0] + 1j * kspace[:, 1]).numpy().astype(np.complex64)
        file["reconstruction_esc"] = image[:, 4:36, 2:34]
        file["ismrmrd_header"] = np.bytes_(b"<ismrmrdHeader/>")
    return image
