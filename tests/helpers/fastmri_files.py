"""Small files in the fastMRI layouts: the tutorial's slice tensor, single- and multi-coil HDF5 volumes."""

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


def write_fastmri_multicoil_volume(
    path, slices: int = 2, coils: int = 4, height: int = 32, width: int = 40, seed: int = 0
) -> np.ndarray:
    """A fastMRI-layout multi-coil file: kspace ``(S, C, 2 * height, width)`` complex64.

    The object (smooth, complex) fills the central ``height`` rows of a readout field of view
    of ``2 * height``, as with fastMRI's 2x readout oversampling; each coil sees it through a
    smooth Gaussian sensitivity with a linear phase. Returns the k-space written.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(-2, 2, 2 * height), np.linspace(-1, 1, width), indexing="ij")
    kspace = np.empty((slices, coils, 2 * height, width), dtype=np.complex64)
    for number in range(slices):
        a, b = rng.uniform(0.7, 0.9), rng.uniform(0.7, 0.9)
        inside = (rows / a) ** 2 + (cols / b) ** 2
        magnitude = np.clip(1.2 - inside, 0, None) * (1 + 0.2 * np.cos(3 * rows + 2 * cols))
        image = magnitude * np.exp(1j * rng.uniform(0.3, 1.0) * rows)
        for coil in range(coils):
            angle = 2 * np.pi * coil / coils
            centre = (1.2 * np.cos(angle), 1.2 * np.sin(angle))
            profile = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / 1.5)
            coil_image = profile * np.exp(1j * 0.5 * (rows * np.sin(angle) + cols)) * image
            shifted = np.fft.ifftshift(coil_image)
            kspace[number, coil] = np.fft.fftshift(np.fft.fft2(shifted, norm="ortho"))
    with h5py.File(path, "w") as file:
        file["kspace"] = kspace
        file["reconstruction_rss"] = np.abs(kspace[:, :, :height]).sum(axis=1).astype(np.float32)
        file["ismrmrd_header"] = np.bytes_(b"<ismrmrdHeader/>")
        file.attrs["acquisition"] = "CORPD_FBK"
    return kspace
