"""fastMRI's test/challenge layout: the file's own mask, no target, and one-line refusals of bad files."""

import h5py
import numpy as np
import pytest

from ssmri.data import FastMRIMultiCoilFiles, MRIDataModule
from ssmri.errors import DataError
from ssmri.physics import MultiCoilMRI
from tests.helpers.fastmri_files import write_fastmri_multicoil_volume

SIZE = 24


def test_file(path, seed=0, mask=None, kspace_off_mask=False):
    """Write fastMRI's test layout from a fully sampled volume; returns the mask."""
    full = write_fastmri_multicoil_volume(path, slices=2, seed=seed)
    if mask is None:
        mask = np.zeros(full.shape[-1], np.float32)
        mask[::3] = 1
        mask[14:26] = 1
    with h5py.File(path, "w") as file:
        applied = mask if len(mask) == full.shape[-1] else np.ones(full.shape[-1], np.float32)
        file["kspace"] = full if kspace_off_mask else full * applied
        file["mask"] = mask
        file.attrs["acceleration"], file.attrs["num_low_frequency"] = 3, 12
    return mask


test_file.__test__ = False


def test_the_files_masks_are_cached_and_no_target(tmp_path):
    root = tmp_path / "test"
    root.mkdir()
    masks = [test_file(root / f"file{i}.h5", seed=i) for i in range(3)]
    images = FastMRIMultiCoilFiles(str(root), image_size=SIZE, calib_width=12, train_fraction=0.67)
    assert images.acquired and not images.ground_truth
    datamodule = MRIDataModule(images, MultiCoilMRI(SIZE, 8, coils=4), SIZE, cache_dir=tmp_path)
    datamodule.prepare_data()
    datamodule.setup()
    assert not datamodule.val_ground_truth
    with h5py.File(datamodule.cache_path) as file:
        assert "target" not in file["train"] and "target" not in file["test"]
        np.testing.assert_array_equal(file["train/mask"][0], masks[0][8:32])  # never a simulated mask
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.x is None and batch.maps.shape == (2, 4, 2, SIZE, SIZE)
    law = datamodule.physics.mask_law  # estimated from the training masks, not physics.acceleration=8
    assert abs(law.acceleration - 24 / masks[0][8:32].sum()) < 1e-9
    np.testing.assert_array_equal(law.column_probability().numpy(), masks[0][8:32])


@pytest.mark.parametrize("case, message", [
    ("short mask", r"file0.h5: 'mask' has shape \(30,\) but 'kspace' .* has 40 columns"),
    ("kspace off mask", r"file0.h5 slice 0: 'kspace' is not zero off 'mask'"),
    ("no centre", r"file0.h5 slice 0: the centre column 12 of the mask is not acquired"),
])
def test_bad_test_layout_files_name_the_file_and_the_key(tmp_path, case, message):
    mask = {"short mask": np.ones(30, np.float32), "no centre": (np.arange(40) % 2 == 1).astype(np.float32)}
    test_file(tmp_path / "file0.h5", mask=mask.get(case), kspace_off_mask=case == "kspace off mask")
    test_file(tmp_path / "file1.h5", seed=1)
    with pytest.raises((DataError, ValueError), match=message):
        FastMRIMultiCoilFiles(str(tmp_path), image_size=SIZE, calib_width=12).load([(0, 0)])


def test_a_folder_mixing_layouts_is_refused(tmp_path):
    test_file(tmp_path / "file0.h5")
    write_fastmri_multicoil_volume(tmp_path / "file1.h5", slices=1)
    with pytest.raises(ValueError, match=r"mixes fastMRI test-layout files .* keep one kind"):
        assert FastMRIMultiCoilFiles(str(tmp_path), image_size=SIZE).acquired
