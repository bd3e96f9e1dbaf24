"""Real-data loaders on small files the tests write in both fastMRI formats."""

import h5py
import numpy as np
import pytest
import torch

from ssmri.data import FastMRISingleCoilFiles, FastMRISliceTensor
from ssmri.errors import DataError
from tests.helpers.fastmri_files import write_fastmri_volume, write_slice_tensor


def test_slice_tensor_follows_the_tutorial_split(tmp_path):
    slices = write_slice_tensor(tmp_path / "knee.pt")
    source = FastMRISliceTensor(str(tmp_path / "knee.pt"), image_size=32, max_test=3)
    train, test, val = source.images("train", None), source.images("test", None), source.images("val", None)
    assert train.shape == (16, 2, 32, 32) and test.shape == (3, 2, 32, 32)
    assert torch.equal(val, test)  # the tutorial evaluates on its test split
    assert torch.allclose(train[:, 0].amax(dim=(1, 2)), torch.ones(16)) and train[:, 1].abs().max() == 0
    same_size = FastMRISliceTensor(str(tmp_path / "knee.pt"), image_size=64, max_test=50)
    torch.testing.assert_close(same_size.images("test", None)[:, 0], slices[16:])
    held_out = FastMRISliceTensor(str(tmp_path / "knee.pt"), image_size=32, num_val=2)
    assert held_out.images("train", None).shape[0] == 14 and held_out.images("val", None).shape[0] == 2


def test_slice_tensor_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FastMRISliceTensor(str(tmp_path / "missing.pt"))
    torch.save({"not": "a tensor"}, tmp_path / "dict.pt")
    with pytest.raises(ValueError, match=r"expected a tensor \(N, H, W\)"):
        FastMRISliceTensor(str(tmp_path / "dict.pt")).images("train", None)
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(ValueError, match="cannot read"):
        FastMRISliceTensor(str(tmp_path / "junk.pt")).images("train", None)


def test_fastmri_h5_volumes_split_by_volume(tmp_path):
    images = [write_fastmri_volume(tmp_path / f"file{i}.h5", seed=i) for i in range(5)]
    source = FastMRISingleCoilFiles(str(tmp_path), image_size=32, crop_size=32)
    train, test = source.images("train", None), source.images("test", None)
    assert train.shape == (16, 2, 32, 32) and test.shape == (4, 2, 32, 32)
    expected = torch.from_numpy(images[4][:, 4:36, 2:34])
    torch.testing.assert_close(test[:, 0], expected / expected.amax(dim=(1, 2), keepdim=True))
    from_kspace = FastMRISingleCoilFiles(str(tmp_path), image_size=32, target="kspace", crop_size=32)
    torch.testing.assert_close(from_kspace.images("test", None), test, atol=1e-5, rtol=1e-5)


def test_fastmri_h5_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .h5 files"):
        FastMRISingleCoilFiles(str(tmp_path))
    write_fastmri_volume(tmp_path / "a.h5")
    write_fastmri_volume(tmp_path / "b.h5")
    with pytest.raises(ValueError, match="no 'reconstruction_rss' dataset"):
        FastMRISingleCoilFiles(str(tmp_path), target="reconstruction_rss").images("test", None)


@pytest.mark.parametrize(
    "name, data, layout",
    [
        ("reconstruction_esc", np.array([b"slice0", b"slice1"]), r"shape \(2,\) and dtype \|S6"),
        ("reconstruction_esc", np.ones((32, 32), np.float32), r"shape \(32, 32\) and dtype float32"),
        ("kspace", np.ones((2, 40, 36), np.float32), r"shape \(2, 40, 36\) and dtype float32"),
        ("kspace", np.ones((40, 36), np.complex64), r"shape \(40, 36\) and dtype complex64"),
    ],
)
def test_a_dataset_of_the_wrong_layout_is_refused_naming_the_file(tmp_path, name, data, layout):
    write_fastmri_volume(tmp_path / "a.h5")
    with h5py.File(tmp_path / "b.h5", "w") as file:
        file[name] = data
    with pytest.raises(DataError, match=rf"b\.h5: '{name}' has {layout}, expected \(slices,") as raised:
        FastMRISingleCoilFiles(str(tmp_path), image_size=32, crop_size=32, target=name).images("test", None)
    assert "\n" not in str(raised.value)


def test_a_symlink_loop_or_a_folder_among_the_volumes_is_refused_by_name(tmp_path):
    write_fastmri_volume(tmp_path / "a.h5")
    (tmp_path / "x.h5").symlink_to(tmp_path / "y.h5")
    (tmp_path / "y.h5").symlink_to(tmp_path / "x.h5")
    with pytest.raises(DataError, match=r"x\.h5 is not a readable volume \(Too many levels of symbolic"):
        FastMRISingleCoilFiles(str(tmp_path))
    for link in ("x.h5", "y.h5"):
        (tmp_path / link).unlink()
    (tmp_path / "z.h5").mkdir()
    with pytest.raises(DataError, match=r"z\.h5 is not a readable volume \(a folder, not a file\)"):
        FastMRISingleCoilFiles(str(tmp_path))
