"""ISMRMRD raw data (the vendor-neutral format, read with the ``ismrmrd`` package): 2-D Cartesian scans.

Each imaging line is placed by ``idx.kspace_encode_step_1`` around the centre the header's
``encodingLimits`` give, slices by ``idx.slice``; repeated lines (averages, repetitions) are
averaged. Noise, navigator, phase-correction, feedback, dummy and phase-stabilisation
acquisitions are skipped; parallel-imaging calibration lines are acquired lines of the same
scan and kept. Readout length from ``encodedSpace`` (with oversampling) and ``reconSpace``.
"""

from pathlib import Path

import numpy as np

from ssmri.data.scan_files import RawVolume, ScanFiles, place_lines
from ssmri.errors import DataError

_SKIPPED = (
    "ACQ_IS_NOISE_MEASUREMENT",
    "ACQ_IS_NAVIGATION_DATA",
    "ACQ_IS_PHASECORR_DATA",
    "ACQ_IS_RTFEEDBACK_DATA",
    "ACQ_IS_HPFEEDBACK_DATA",
    "ACQ_IS_DUMMYSCAN_DATA",
    "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA",
    "ACQ_IS_PHASE_STABILIZATION_REFERENCE",
    "ACQ_IS_PHASE_STABILIZATION",
)
_CALIBRATION = ("ACQ_IS_PARALLEL_CALIBRATION", "ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING")


def read_header(dataset, path: Path):
    """The parsed XML header of an open ``ismrmrd.Dataset``."""
    import ismrmrd.xsd

    try:
        return ismrmrd.xsd.CreateFromDocument(dataset.read_xml_header())
    except LookupError:
        raise DataError(f"{path}: no 'dataset/xml' header; not an ISMRMRD raw-data file") from None
    except Exception as error:  # noqa: BLE001 - any XML the schema refuses is the same user problem
        raise DataError(f"{path}: 'dataset/xml' is not a valid ISMRMRD header ({error})") from None


def read_ismrmrd(path: Path) -> RawVolume:
    """One ISMRMRD file -> :class:`RawVolume`; refuses non-Cartesian and 3-D encodings."""
    import ismrmrd

    try:
        dataset = ismrmrd.Dataset(str(path), "dataset", mode="r")
    except OSError as error:
        raise DataError(f"{path} is not a readable HDF5 file ({error}); remove it or replace it") from None
    with dataset:
        header = read_header(dataset, path)
        encoding = header.encoding[0]
        trajectory = getattr(encoding.trajectory, "value", encoding.trajectory)
        if trajectory != "cartesian":
            raise DataError(
                f"{path}: encoding/trajectory is {trajectory!r}; ssmri reads 2-D Cartesian scans only"
            )
        encoded, recon = encoding.encodedSpace.matrixSize, encoding.reconSpace.matrixSize
        limits = encoding.encodingLimits
        step2 = limits.kspace_encoding_step_2
        if encoded.z > 1 or (step2 is not None and step2.maximum > 0):
            raise DataError(
                f"{path}: encodedSpace matrixSize z={encoded.z} (kspace_encoding_step_2): a 3-D "
                f"'cartesian' encoding; ssmri reads 2-D scans only"
            )
        if limits.kspace_encoding_step_1 is None:
            raise DataError(
                f"{path}: encodingLimits/kspace_encoding_step_1 is missing; the line centre is unknown"
            )
        centre, width = limits.kspace_encoding_step_1.center, encoded.y
        slices = (limits.slice.maximum + 1) if limits.slice is not None else 1
        try:
            count = dataset.number_of_acquisitions()
        except LookupError:
            raise DataError(f"{path}: no 'dataset/data' acquisitions") from None
        lines, coils, calibration = [], None, 0
        for number in range(count):
            acquisition = dataset.read_acquisition(number)
            if any(acquisition.is_flag_set(getattr(ismrmrd, flag)) for flag in _SKIPPED):
                continue
            idx = acquisition.idx
            if idx.contrast or idx.phase or idx.set or idx.kspace_encode_step_2:
                raise DataError(
                    f"{path}: acquisition {number} has idx contrast={idx.contrast}, phase={idx.phase}, "
                    f"set={idx.set}, kspace_encode_step_2={idx.kspace_encode_step_2}; ssmri reads one "
                    f"2-D image per slice"
                )
            data = np.asarray(acquisition.data)
            if acquisition.number_of_samples != encoded.x:
                raise DataError(
                    f"{path}: acquisition {number} has {acquisition.number_of_samples} samples but "
                    f"encodedSpace matrixSize x is {encoded.x}; partial-echo readouts are not supported"
                )
            if acquisition.is_flag_set(ismrmrd.ACQ_IS_REVERSE):
                data = data[:, ::-1]
            calibration += any(acquisition.is_flag_set(getattr(ismrmrd, flag)) for flag in _CALIBRATION)
            coils = coils or data.shape[0]
            lines.append((idx.slice, idx.kspace_encode_step_1 - centre + width // 2, data))
        if not lines:
            raise DataError(
                f"{path}: no imaging acquisitions (all {count} are noise, navigator or other scans)"
            )
        kspace, mask = place_lines(slices, coils, encoded.x, width, lines, str(path))
        field = encoding.reconSpace.fieldOfView_mm
        voxel = (field.x / recon.x, encoding.encodedSpace.fieldOfView_mm.y / width, field.z)
    # Readout along H: (S, C, samples, W) is already (slices, coils, readout, phase encoding).
    return RawVolume(kspace, mask, int(recon.x), voxel, calibration)


class ISMRMRDFiles(ScanFiles):
    """ISMRMRD ``.h5``/``.mrd`` raw data of 2-D Cartesian scans (:func:`read_ismrmrd`); no target."""

    suffixes = (".h5", ".mrd", ".hdf5")
    source = "ismrmrd"

    def read_volume(self, path: Path) -> RawVolume:
        return read_ismrmrd(path)


__all__ = ["ISMRMRDFiles", "read_ismrmrd"]
