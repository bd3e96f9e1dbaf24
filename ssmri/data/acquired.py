"""Prospectively undersampled k-space: one acquired slice made ready for the cache, without a target.

Shared by every source of scans that were *acquired* undersampled (fastMRI's test layout,
ISMRMRD, Siemens twix). Per slice, with readout along ``H`` and phase encoding along ``W``:

1. readout oversampling removed in image space (inverse FFT along ``H``, keep the central
   rows, FFT back), as fastMRI's own reconstructions do;
2. the central ``image_size x image_size`` block of k-space and of the mask kept;
3. coil maps by ESPIRiT from the fully sampled central block of the mask only: sigpy
   calibrates on a square around the centre, so its width is cut to the acquired block;
4. k-space scaled so that the zero-filled coil-combined image ``Sᴴ Fᴴ y`` peaks at 1.
"""

import logging

import torch

from ssmri.data.fastmri_multicoil import central_crop, centred_fft_1d, espirit_maps
from ssmri.errors import DataError
from ssmri.physics.fft import ifft2c, to_channels, to_complex

log = logging.getLogger(__name__)

#: ESPIRiT's 6x6 kernel needs a few shifts inside the calibration block to estimate anything.
MIN_CALIBRATION_LINES = 8


def crop_readout(kspace: torch.Tensor, rows: int) -> torch.Tensor:
    """``(..., H, W)`` complex k-space -> ``(..., rows, W)``: the central ``rows`` of the image
    along the readout ``H`` (readout oversampling removed), back in k-space."""
    height = kspace.shape[-2]
    if rows == height:
        return kspace
    lines = centred_fft_1d(kspace, dim=-2, inverse=True)
    top = (height - rows) // 2
    return centred_fft_1d(lines[..., top : top + rows, :], dim=-2)


def centred_calibration_width(mask: torch.Tensor) -> int:
    """Width of the widest block of sampled columns centred as sigpy centres its calibration
    region (columns ``W//2 - c//2 ... W//2 - c//2 + c - 1``); 0 if column ``W//2`` is not sampled."""
    sampled = mask.bool().tolist()
    centre = len(sampled) // 2
    if not sampled[centre]:
        return 0
    left = 0  # sampled columns left of the centre, contiguous
    while centre - left - 1 >= 0 and sampled[centre - left - 1]:
        left += 1
    right = 1  # from the centre rightwards, the centre included
    while centre + right < len(sampled) and sampled[centre + right]:
        right += 1
    return max(2 * min(left, right), 2 * min(left, right - 1) + 1)


def check_acquired(kspace: torch.Tensor, mask: torch.Tensor, where: str) -> torch.Tensor:
    """The ``(W,)`` boolean mask of ``(..., H, W)`` k-space, refused unless it matches the data."""
    if mask.dim() != 1 or mask.shape[0] != kspace.shape[-1]:
        raise DataError(
            f"{where}: 'mask' has shape {tuple(mask.shape)} but 'kspace' has {kspace.shape[-1]} "
            f"phase-encoding columns (last axis); the mask must be (W,) = ({kspace.shape[-1]},)"
        )
    values = torch.unique(mask.double())
    if not set(values.tolist()) <= {0.0, 1.0}:
        raise DataError(f"{where}: 'mask' holds {values[:5].tolist()}, expected 0/1 per column")
    mask = mask.bool()
    finite = torch.isfinite(torch.view_as_real(kspace) if kspace.is_complex() else kspace)
    if not finite.all():
        raise DataError(
            f"{where}: 'kspace' holds {int((~finite).sum())} NaN/Inf values; the file is damaged. "
            f"Remove it from data.images.root"
        )
    if not mask.any():
        raise DataError(f"{where}: 'mask' samples no column")
    outside = kspace[..., ~mask].abs().amax() if (~mask).any() else torch.tensor(0.0)
    if outside > 0:
        raise DataError(
            f"{where}: 'kspace' is not zero off 'mask' (largest |k| there {float(outside):.3g}); the "
            f"mask does not match the k-space. Fully sampled files carry no 'mask' dataset"
        )
    return mask


def prepare_acquired(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    image_size: int,
    rows: int,
    calib_width: int,
    threshold: float,
    crop: float,
    where: str,
    coil_maps: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """One acquired slice ``(C, H, W)`` complex with its ``(W,)`` mask ->
    ``(kspace (C, 2, S, S), maps (C, 2, S, S) or None, mask (S,) uint8, scale)``.

    ``rows`` is the readout length without oversampling (``H // 2`` for fastMRI); ``where`` names
    the file and slice in errors. Without ``coil_maps`` (single-coil data) ``C`` is 1, dropped.
    """
    mask = check_acquired(kspace, mask, where)
    kspace = central_crop(crop_readout(kspace.to(torch.complex64), rows), image_size)
    left = (mask.shape[0] - image_size) // 2
    mask = mask[left : left + image_size]
    kspace = kspace * mask  # cropping the readout leaves the unsampled columns zero; keep them so
    block = centred_calibration_width(mask)
    if block == 0:
        raise DataError(
            f"{where}: the centre column {image_size // 2} of the mask is not acquired; the scan has "
            f"no acquired k-space centre to calibrate coil maps or scale the data on"
        )
    maps = None
    if coil_maps:
        if block < MIN_CALIBRATION_LINES:
            raise DataError(
                f"{where}: the fully sampled central block has {block} lines, too few for ESPIRiT "
                f"(at least {MIN_CALIBRATION_LINES}); this scan cannot give coil maps"
            )
        if calib_width > block:
            log.info("%s: calib_width %d reduced to the %d acquired central lines", where, calib_width, block)
        maps = espirit_maps(kspace, min(calib_width, block), threshold, crop)
        if not maps.abs().amax() > 0:  # else the scale below would blow the k-space up by 1e12
            raise DataError(
                f"{where}: ESPIRiT kept no pixel (every eigenvalue under data.images.crop={crop} with "
                f"{min(calib_width, block)} calibration lines), so the coil maps are zero; lower "
                f"data.images.crop (e.g. 0.5) or acquire a wider central block"
            )
        combined = (maps.conj() * to_complex(ifft2c(to_channels(kspace)))).sum(dim=0)
    else:
        kspace = kspace[0]
        combined = to_complex(ifft2c(to_channels(kspace)))
    scale = combined.abs().amax()
    if not scale > 0:
        raise DataError(f"{where}: the acquired k-space is all zero; remove the scan from data.images.root")
    channels = to_channels(kspace) / scale
    return channels, None if maps is None else to_channels(maps), mask.to(torch.uint8), scale
