"""Siemens twix on twixtools' real 2-coil GRE phantom: line placement and oversampling removal."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ssmri.data.twix import TwixFiles, read_twix
from ssmri.errors import DataError

GRE = Path(__file__).parent / "data" / "twix" / "gre.dat"


def test_lines_are_placed_by_their_counter_around_the_centre_line():
    import twixtools

    readouts = [m for m in twixtools.read_twix(str(GRE), verbose=False)[-1]["mdb"] if m.is_image_scan()]
    raw = read_twix(GRE)
    assert raw.kspace.shape == (1, 2, 320, 160) and raw.rows == 160 and raw.mask.all()
    assert raw.voxel_size == (1.25, 1.25, 4.0)
    for mdb in readouts[::37]:
        column = mdb.cLin - mdb.mdh.CenterLin + 80
        np.testing.assert_array_equal(raw.kspace[0, :, :, column], mdb.data)


def test_oversampling_removal_and_crop_match_numpy():
    raw = read_twix(GRE)
    data = TwixFiles(str(GRE), image_size=64, calib_width=24).load([(0, 0)])
    assert data.kspace.shape == data.maps.shape == (1, 2, 2, 64, 64) and data.target is None
    kspace = raw.kspace[0].astype(np.complex128)
    shift, unshift = np.fft.fftshift, np.fft.ifftshift
    image_rows = shift(np.fft.ifft(unshift(kspace, axes=1), axis=1, norm="ortho"), axes=1)[:, 80:240]
    expected = shift(np.fft.fft(unshift(image_rows, axes=1), axis=1, norm="ortho"), axes=1)[:, 48:112, 48:112]
    ours = data.kspace[0].double().numpy()
    ours = (ours[:, 0] + 1j * ours[:, 1]) * float(data.scale[0])
    np.testing.assert_allclose(ours, expected, atol=1e-5 * np.abs(expected).max())
    # Most of the energy sits in the central half of the oversampled readout field of view.
    profile = (np.abs(np.fft.ifftshift(np.fft.ifft(kspace, axis=1), axes=1)) ** 2).sum(axis=(0, 2))
    assert profile[80:240].sum() > 0.9 * profile.sum()
    assert torch.equal(data.mask[0], torch.ones(64, dtype=torch.uint8))


@pytest.mark.parametrize("cut", [20_000, 800_000, 1_200_000])  # in the header, in the lines, near the end
def test_a_truncated_copy_is_refused_not_read_as_undersampled(tmp_path, cut):
    copy = tmp_path / "gre.dat"
    copy.write_bytes(GRE.read_bytes()[:cut])
    size = GRE.stat().st_size - 480  # the measurement's end the header gives; 480 bytes of padding follow
    message = rf"gre.dat is truncated: .* ends at byte {size} but the file has {cut} bytes"
    with pytest.raises(DataError, match=message):
        read_twix(copy)


@pytest.mark.parametrize("content", [b"not a scan\n" * 100, b"\x89HDF\r\n\x1a\n" + bytes(4000)])
def test_a_file_that_is_no_twix_is_named(tmp_path, content):
    (tmp_path / "other.dat").write_bytes(content)
    with pytest.raises(DataError, match=r"other.dat: the twix header has no 'Dicom' entry; not a Siemens"):
        TwixFiles(str(tmp_path / "other.dat"), image_size=64).load([(0, 0)])
