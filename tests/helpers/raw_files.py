"""Small ISMRMRD raw-data files written through the ``ismrmrd`` package, as a scanner would."""

from pathlib import Path

import ismrmrd
import numpy as np

from tests.helpers.fastmri_files import write_fastmri_multicoil_volume

_HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
 <experimentalConditions><H1resonanceFrequency_Hz>63500000</H1resonanceFrequency_Hz></experimentalConditions>
 <encoding>
  <encodedSpace><matrixSize><x>{x}</x><y>{y}</y><z>{z}</z></matrixSize>
   <fieldOfView_mm><x>{fov_x}</x><y>200</y><z>5</z></fieldOfView_mm></encodedSpace>
  <reconSpace><matrixSize><x>{recon_x}</x><y>{y}</y><z>1</z></matrixSize>
   <fieldOfView_mm><x>200</x><y>200</y><z>5</z></fieldOfView_mm></reconSpace>
  <encodingLimits>
   <kspace_encoding_step_1><minimum>0</minimum><maximum>{last_line}</maximum><center>{centre}</center></kspace_encoding_step_1>
   <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
   <slice><minimum>0</minimum><maximum>{last_slice}</maximum><center>0</center></slice>
  </encodingLimits>
  <trajectory>{trajectory}</trajectory>
 </encoding>
</ismrmrdHeader>"""


def acquisition(data: np.ndarray, line: int, slice_number: int, flags=()) -> ismrmrd.Acquisition:
    acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data.astype(np.complex64)))
    acq.idx.kspace_encode_step_1 = line
    acq.idx.slice = slice_number
    acq.center_sample = data.shape[1] // 2
    for flag in flags:
        acq.set_flag(flag)
    return acq


def write_ismrmrd(
    path,
    kspace: np.ndarray,
    mask: np.ndarray,
    centre: int,
    recon_x: int,
    trajectory: str = "cartesian",
    z: int = 1,
    repeat=None,
    noise: bool = True,
    calibration=(),
) -> None:
    """``kspace`` ``(S, C, X, W)`` with lines ``mask`` ``(S, W)``; line ``j`` of the array is
    encode step ``j - W//2 + centre``. ``repeat``: ``(slice, column, other data)`` acquired a
    second time; ``noise``: a noise scan of large values first (it must be skipped)."""
    slices, coils, samples, width = kspace.shape
    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dataset.write_xml_header(
        _HEADER.format(
            x=samples,
            y=width,
            z=z,
            fov_x=200 * samples / recon_x,
            recon_x=recon_x,
            last_line=width - 1,
            centre=centre,
            last_slice=slices - 1,
            trajectory=trajectory,
        )
    )
    if noise:
        dataset.append_acquisition(
            acquisition(np.full((coils, samples), 1e3 + 0j), 0, 0, [ismrmrd.ACQ_IS_NOISE_MEASUREMENT])
        )
    for number in range(slices):
        for column in np.flatnonzero(mask[number]):
            flags = [ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING] if column in calibration else []
            line = int(column) - width // 2 + centre
            dataset.append_acquisition(acquisition(kspace[number, :, :, column], line, number, flags))
    if repeat is not None:
        number, column, data = repeat
        dataset.append_acquisition(acquisition(data, int(column) - width // 2 + centre, number))
    dataset.close()


def write_scan_folder(root, scans: int = 3, width: int = 40) -> None:
    """``scans`` 2-slice 4-coil scans in ``root`` that ``data=ismrmrd`` reads with its defaults at
    ``data.image_size=32``: readout oversampled 2x (64 samples for a 32-pixel image), ``width``
    phase lines, every third acquired plus a fully sampled centre of 24 (the default calib_width),
    a different offset per scan so that the masks have a law to estimate."""
    root = Path(root)
    full = root.parent / f"{root.name}-fully-sampled"  # beside the scans, not among them
    for folder in (root, full):
        folder.mkdir(parents=True, exist_ok=True)
    for seed in range(scans):
        kspace = write_fastmri_multicoil_volume(
            full / f"{seed}.h5", slices=2, height=32, width=width, seed=seed
        )
        mask = np.zeros((2, width), bool)
        mask[:, seed::3] = True
        mask[:, width // 2 - 12 : width // 2 + 12] = True
        write_ismrmrd(root / f"scan{seed}.h5", kspace * mask[:, None, None], mask, width // 2, recon_x=32)
