"""fastMRI's test/challenge layout: the file's own mask, no target, and one-line refusals of bad files."""

import h5py
import numpy as np
import pytest
import torch

from ssmri.data import FastMRIMultiCoilFiles, FastMRISingleCoilFiles, MRIDataModule
from ssmri.errors import DataError
from ssmri.physics import MultiCoilMRI, SingleCoilMRI
from tests.helpers.fastmri_files import write_fastmri_multicoil_volume, write_fastmri_volume

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


@pytest.mark.parametrize(
    "case, message",
    [
        ("short mask", r"file0.h5: 'mask' has shape \(30,\) but 'kspace' .* has 40 columns"),
        ("kspace off mask", r"file0.h5 slice 0: 'kspace' is not zero off 'mask'"),
        ("no centre", r"file0.h5 slice 0: the centre column 12 of the mask is not acquired"),
    ],
)
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


def single_coil_test_file(path, seed=0):
    """fastMRI's single-coil test layout: ``kspace`` (S, 64, 40) zero off a (40,) mask, no target.
    Returns the fully sampled k-space and the mask."""
    full = write_fastmri_multicoil_volume(path, slices=2, coils=1, seed=seed)[:, 0]
    mask = np.zeros(full.shape[-1], bool)
    mask[1::3] = True  # column 20, the centre, is among them
    mask[16:24] = True
    with h5py.File(path, "w") as file:
        file["kspace"] = full * mask
        file["mask"] = mask  # fastMRI's test files store it as bool
        file.attrs["acceleration"], file.attrs["num_low_frequency"] = 4, 8
    return full, mask


def test_single_coil_test_layout_is_acquired_k_space_with_the_files_mask(tmp_path):
    from tests.test_ismrmrd import as_complex, numpy_acquired

    full, mask = single_coil_test_file(tmp_path / "file0.h5")
    single_coil_test_file(tmp_path / "file1.h5", seed=1)
    images = FastMRISingleCoilFiles(str(tmp_path), image_size=SIZE, train_fraction=0.5)
    assert images.acquired and not images.ground_truth
    data = images.load([(0, 0), (0, 1)])
    assert data.kspace.shape == (2, 2, SIZE, SIZE) and data.maps is None and data.target is None
    np.testing.assert_array_equal(data.mask.numpy(), np.stack([mask[8:32]] * 2))
    for number in range(2):  # oversampling removed to H // 2 = 32 rows, central square, nothing resized
        expected = numpy_acquired(full[number].astype(np.complex128) * mask, 32, SIZE)
        np.testing.assert_allclose(
            as_complex(data.kspace[number]) * float(data.scale[number]),
            expected,
            atol=2e-5 * np.abs(expected).max(),
        )
    datamodule = MRIDataModule(images, SingleCoilMRI(SIZE, 8), SIZE, cache_dir=tmp_path / "cache")
    datamodule.prepare_data()
    datamodule.setup()
    with h5py.File(datamodule.cache_path) as file:
        assert all("target" not in file[split] for split in ("train", "val", "test"))
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.x is None and batch.maps is None
    assert torch.equal(batch.mask[:, 0, 0].bool(), torch.from_numpy(mask[8:32]).expand(2, SIZE))


def test_single_coil_folder_mixing_layouts_or_too_small_is_refused(tmp_path):
    single_coil_test_file(tmp_path / "file0.h5")
    write_fastmri_volume(tmp_path / "file1.h5")
    with pytest.raises(ValueError, match=r"mixes fastMRI test-layout files .* keep one kind"):
        assert FastMRISingleCoilFiles(str(tmp_path), image_size=SIZE).acquired
    (tmp_path / "file1.h5").unlink()
    with pytest.raises(DataError, match=r"file0.h5: 'kspace' of 64x40 \(readout 32 .* data.image_size=36"):
        assert FastMRISingleCoilFiles(str(tmp_path), image_size=36).acquired


@pytest.mark.parametrize("source", [FastMRIMultiCoilFiles, FastMRISingleCoilFiles])
@pytest.mark.parametrize("damage", ["text", "truncated"])
def test_non_hdf5_and_truncated_files_are_named(tmp_path, source, damage):
    if source is FastMRIMultiCoilFiles:
        test_file(tmp_path / "file0.h5")
    else:
        single_coil_test_file(tmp_path / "file0.h5")
    whole = (tmp_path / "file0.h5").read_bytes()
    (tmp_path / "file1.h5").write_bytes(b"not hdf5" if damage == "text" else whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"file1.h5 is not a readable HDF5 file .* data.images.root"):
        source(str(tmp_path), image_size=SIZE).load([(0, 0)])


def test_non_finite_acquired_k_space_is_named(tmp_path):
    """NaN in a test-layout file would pass the off-mask check (NaN > 0 is false) and reach ESPIRiT."""
    test_file(tmp_path / "file0.h5")
    test_file(tmp_path / "file1.h5", seed=1)
    with h5py.File(tmp_path / "file0.h5", "r+") as file:
        kspace = file["kspace"][()]
        kspace[0, 0, 3, 20] = np.nan
        file["kspace"][...] = kspace
    with pytest.raises(DataError, match=r"file0.h5 slice 0: 'kspace' holds 1 NaN/Inf values"):
        FastMRIMultiCoilFiles(str(tmp_path), image_size=SIZE, calib_width=12).load([(0, 0)])


def test_multicoil_scan_specific_split_trains_on_one_file(tmp_path):
    test_file(tmp_path / "only.h5")
    images = FastMRIMultiCoilFiles(str(tmp_path), image_size=SIZE, calib_width=12, split="scan")
    assert images.keys("train", None) == images.keys("test", None) == [(0, 0), (0, 1)]
    assert images.describe()["split"] == "scan"
    assert (
        "split" not in FastMRIMultiCoilFiles(str(tmp_path), image_size=SIZE).describe()
    )  # caches keep names
