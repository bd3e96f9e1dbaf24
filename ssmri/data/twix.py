"""Siemens raw data (``.dat``, read with ``twixtools``, MIT): 2-D Cartesian scans, as ISMRMRD.

The last measurement of a (multi-raid) file is the image scan. Lines are placed by their
``Lin`` counter around the header's centre line (``CenterLin``), slices by ``Slc``; repeated
lines averaged. twixtools' ``is_image_scan`` skips noise, phase-correction, feedback, sync
and phase-stabilisation readouts; reference lines (``PATREFSCAN``) are acquired lines of the
same scan and kept. ``REFLECT`` readouts are reversed; readout length without oversampling
is ``sKSpace.lBaseResolution``.
"""

from pathlib import Path

import numpy as np

from ssmri.data.scan_files import RawVolume, ScanFiles, place_lines
from ssmri.errors import DataError

_CARTESIAN, _TWO_D = 1, 2  # sKSpace.ucTrajectory and sKSpace.ucDimension of 2-D Cartesian scans


def read_twix(path: Path) -> RawVolume:
    """One Siemens ``.dat`` file -> :class:`RawVolume`; refuses non-Cartesian and 3-D scans."""
    import twixtools

    check_complete(path)
    try:
        measurement = twixtools.read_twix(str(path), verbose=False)[-1]
        protocol = measurement["hdr"]["MeasYaps"]
        kspace_protocol = protocol["sKSpace"]
    except (KeyError, IndexError) as error:
        raise DataError(
            f"{path}: the twix header has no {error} entry; not a Siemens raw-data scan"
        ) from None
    except Exception as error:  # noqa: BLE001 - twixtools raises many kinds on a damaged file
        raise DataError(
            f"{path} is not a readable Siemens twix file ({type(error).__name__}: {error})"
        ) from None
    trajectory = kspace_protocol.get("ucTrajectory", _CARTESIAN)
    if trajectory != _CARTESIAN:
        raise DataError(
            f"{path}: sKSpace.ucTrajectory={trajectory} (not 1, Cartesian); "
            f"ssmri reads 2-D Cartesian scans only"
        )
    if kspace_protocol.get("ucDimension", _TWO_D) != _TWO_D:
        raise DataError(
            f"{path}: sKSpace.ucDimension={kspace_protocol.get('ucDimension')} (a 3-D scan); "
            f"ssmri reads 2-D scans only"
        )
    width, rows = int(kspace_protocol["lPhaseEncodingLines"]), int(kspace_protocol["lBaseResolution"])
    readouts = [mdb for mdb in measurement["mdb"] if mdb.is_image_scan() or mdb.is_flag_set("PATREFSCAN")]
    if not readouts:
        raise DataError(f"{path}: no imaging readouts in the last measurement")
    coils, samples = readouts[0].data.shape
    lines, calibration = [], 0
    for mdb in readouts:
        if mdb.cPar or mdb.cEco or mdb.cSet or mdb.cPhs:
            raise DataError(
                f"{path}: readouts with Par={mdb.cPar}, Eco={mdb.cEco}, Set={mdb.cSet}, Phs={mdb.cPhs}; "
                f"ssmri reads one 2-D image per slice"
            )
        data = np.asarray(mdb.data)
        if mdb.is_flag_set("REFLECT"):
            data = data[:, ::-1]
        calibration += mdb.is_flag_set("PATREFSCAN")
        lines.append((mdb.cSlc, mdb.cLin - mdb.mdh.CenterLin + width // 2, data))
    slices = 1 + max(number for number, _, _ in lines)
    kspace, mask = place_lines(slices, coils, samples, width, lines, str(path))
    geometry = protocol.get("sSliceArray", {}).get("asSlice", [{}])[0]
    voxel = None
    if {"dReadoutFOV", "dPhaseFOV"} <= set(geometry):
        thickness = float(geometry.get("dThickness", 0))
        voxel = (geometry["dReadoutFOV"] / rows, geometry["dPhaseFOV"] / width, thickness)
    return RawVolume(kspace, mask, rows, voxel, calibration)


def check_complete(path: Path) -> None:
    """Refuse a file cut short (a copy interrupted): twixtools stops quietly at its end, and
    the lines it kept would pass for a prospectively undersampled scan.

    VD/VE files open with a multi-raid header saying where each measurement ends (twixtools'
    own test for it: a first word under 10000 and at most 64 measurements); VB files and
    files that are no twix at all have none, and are left to the parser.
    """
    from twixtools.hdr_def import MultiRaidFileHeader

    with open(path, "rb") as handle:
        start = handle.read(MultiRaidFileHeader.itemsize)
    words = np.frombuffer(start[:8], dtype="<u4")
    if len(words) < 2 or not (words[0] < 10000 and 0 < words[1] <= 64):
        return
    size = path.stat().st_size
    end = MultiRaidFileHeader.itemsize
    if len(start) == end:
        header = np.frombuffer(start, dtype=MultiRaidFileHeader)[0]
        entries = header["entry"][: int(header["hdr"]["count_"])]
        end = max(int(entry["off_"]) + int(entry["len_"]) for entry in entries)
    if end > size:
        raise DataError(
            f"{path} is truncated: its header says the scan ends at byte {end} but the file has {size} "
            f"bytes; copy the file again from the scanner"
        )


class TwixFiles(ScanFiles):
    """Siemens ``.dat`` raw data of 2-D Cartesian scans (:func:`read_twix`); no target."""

    suffixes = (".dat",)
    source = "twix"

    def read_volume(self, path: Path) -> RawVolume:
        return read_twix(path)


__all__ = ["TwixFiles", "check_complete", "read_twix"]
