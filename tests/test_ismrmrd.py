"""ISMRMRD raw data: line placement, repeats, skipped scans, oversampling, maps, refusals, a run."""

import logging

import numpy as np
import pytest
import torch

from ssmri.data.acquired import centred_calibration_width
from ssmri.data.fastmri_multicoil import espirit_maps
from ssmri.data.ismrmrd import ISMRMRDFiles, read_ismrmrd
from ssmri.errors import DataError
from tests.helpers.fastmri_files import write_fastmri_multicoil_volume
from tests.helpers.raw_files import write_ismrmrd

WIDTH, CENTRE, SIZE = 36, 20, 24
# ESPIRiT's eigenvalue threshold: on these 24x24 scans with 10-12 calibration lines no eigenvalue
# reaches sigpy's 0.95 (the maps would be all zero, which the source refuses).
CROP = 0.5


def scan(tmp_path, name="scan.h5", seed=0, block=(12, 24), offset=0, **options):
    """A 2-slice 4-coil scan at R = 3 (every 3rd line from ``offset``) plus a centre block;
    returns (path, full k-space, mask)."""
    (tmp_path / "full").mkdir(exist_ok=True)  # beside the scans, not among them
    full = write_fastmri_multicoil_volume(tmp_path / "full" / name, slices=2, seed=seed)[..., :WIDTH]
    mask = np.zeros((2, WIDTH), bool)
    mask[:, offset::3] = True
    mask[:, block[0] : block[1]] = True
    write_ismrmrd(tmp_path / name, full * mask[:, None, None], mask, CENTRE, recon_x=32, **options)
    return tmp_path / name, full, mask


def numpy_acquired(kspace: np.ndarray, rows: int, size: int) -> np.ndarray:
    """Readout oversampling removed (image space along H, central rows, back), central crop."""
    shift, unshift = np.fft.fftshift, np.fft.ifftshift
    lines = shift(np.fft.ifft(unshift(kspace, axes=-2), axis=-2, norm="ortho"), axes=-2)
    top = (kspace.shape[-2] - rows) // 2
    lines = unshift(lines[..., top : top + rows, :], axes=-2)
    kspace = shift(np.fft.fft(lines, axis=-2, norm="ortho"), axes=-2)
    top, left = (kspace.shape[-2] - size) // 2, (kspace.shape[-1] - size) // 2
    return kspace[..., top : top + size, left : left + size]


def as_complex(channels: torch.Tensor) -> np.ndarray:
    array = channels.double().numpy()
    return array[..., 0, :, :] + 1j * array[..., 1, :, :]


def test_lines_are_placed_repeats_averaged_and_noise_skipped(tmp_path):
    full = write_fastmri_multicoil_volume(tmp_path / "full.h5", slices=2, seed=3)[..., :WIDTH]
    mask = np.zeros((2, WIDTH), bool)
    mask[0, 10:26] = True
    mask[1, ::2] = True
    mask[1, 12:24] = True
    again = 3 * full[1, :, :, 18]
    write_ismrmrd(tmp_path / "a.h5", full * mask[:, None, None], mask, CENTRE, 32, repeat=(1, 18, again))
    raw = read_ismrmrd(tmp_path / "a.h5")
    expected = full * mask[:, None, None]
    expected[1, :, :, 18] = (full[1, :, :, 18] + again) / 2  # the repeated line, averaged
    assert raw.kspace.shape == (2, 4, 64, WIDTH) and raw.rows == 32
    np.testing.assert_array_equal(raw.mask, mask)
    np.testing.assert_allclose(raw.kspace, expected, rtol=1e-6, atol=1e-6)  # the 1e3 noise scan is not in it


def test_load_matches_numpy_oversampling_removal_and_crop(tmp_path):
    path, full, mask = scan(tmp_path)
    data = ISMRMRDFiles(str(path), image_size=SIZE, calib_width=12, crop=CROP).load([(0, 0), (0, 1)])
    assert data.target is None and data.has_target is False and data.acquired
    assert data.kspace.shape == data.maps.shape == (2, 4, 2, SIZE, SIZE)
    left = (WIDTH - SIZE) // 2
    np.testing.assert_array_equal(data.mask.numpy(), mask[:, left : left + SIZE])
    for number in range(2):
        expected = numpy_acquired(full[number].astype(np.complex128) * mask[number], 32, SIZE)
        np.testing.assert_allclose(
            as_complex(data.kspace[number]) * float(data.scale[number]),
            expected,
            atol=2e-5 * np.abs(expected).max(),
        )


def test_calibration_block_and_maps_come_from_acquired_lines_only(tmp_path, caplog):
    path, full, mask = scan(tmp_path, block=(13, 23))
    row = torch.from_numpy(mask[0, 6:30])  # the 24 central columns the source keeps
    assert centred_calibration_width(row) == 10
    with caplog.at_level(logging.INFO):
        data = ISMRMRDFiles(str(path), image_size=SIZE, calib_width=20, crop=CROP).load([(0, 0)])
    assert "calib_width 20 reduced to the 10 acquired central lines" in caplog.text
    # ESPIRiT on the fully sampled k-space with the same 10 central lines gives the same maps:
    # nothing outside the acquired block entered them.
    fully = torch.from_numpy(numpy_acquired(full[0].astype(np.complex128), 32, SIZE).astype(np.complex64))
    reference = espirit_maps(fully, 10, 0.02, CROP)
    assert reference.abs().amax() > 0.9  # maps, not zeros
    np.testing.assert_allclose(as_complex(data.maps[0]), reference.numpy(), atol=1e-4)


def test_zero_maps_are_refused_not_scaled_by_1e12(tmp_path):
    path, _, _ = scan(tmp_path)
    with pytest.raises(DataError, match=r"scan.h5 slice 0: ESPIRiT kept no pixel .* lower data.images.crop"):
        ISMRMRDFiles(str(path), image_size=SIZE, calib_width=12, crop=0.95).load([(0, 0)])


def test_a_block_too_small_for_espirit_names_the_file_and_the_lines(tmp_path):
    path, _, _ = scan(tmp_path, block=(16, 21))  # with the every-3rd lines 15 and 21: 15..21
    with pytest.raises(DataError, match=r"scan.h5 slice 0: the fully sampled central block has 7 lines"):
        ISMRMRDFiles(str(path), image_size=SIZE).load([(0, 0)])


def test_no_acquired_centre_is_refused(tmp_path):
    full = write_fastmri_multicoil_volume(tmp_path / "full.h5", slices=1, seed=0)[..., :WIDTH]
    mask = np.zeros((1, WIDTH), bool)
    mask[:, 1::2] = True  # the centre column 18 is never acquired
    write_ismrmrd(tmp_path / "off.h5", full * mask[:, None, None], mask, CENTRE, 32)
    with pytest.raises(DataError, match=r"off.h5 slice 0: the centre column 12 of the mask is not acquired"):
        ISMRMRDFiles(str(tmp_path / "off.h5"), image_size=SIZE).load([(0, 0)])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"trajectory": "radial"}, r"bad.h5: encoding/trajectory is 'radial'; ssmri reads 2-D Cartesian"),
        ({"z": 8}, r"bad.h5: encodedSpace matrixSize z=8 .* 3-D"),
    ],
)
def test_non_cartesian_and_3d_files_are_refused(tmp_path, options, message):
    scan(tmp_path, name="bad.h5", **options)
    with pytest.raises(DataError, match=message):
        read_ismrmrd(tmp_path / "bad.h5")


def test_non_hdf5_and_files_without_header_are_named(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DataError, match=r"text.h5 is not a readable HDF5 file"):
        read_ismrmrd(tmp_path / "text.h5")
    import h5py

    with h5py.File(tmp_path / "empty.h5", "w") as file:
        file.create_group("dataset")
    with pytest.raises(DataError, match=r"empty.h5: no 'dataset/xml' header"):
        read_ismrmrd(tmp_path / "empty.h5")


def scan_folder(tmp_path):
    root = tmp_path / "scans"
    root.mkdir()
    for seed in range(3):  # three different masks: a law to draw fresh ones from
        scan(root, name=f"scan{seed}.h5", seed=seed, offset=seed)
    return root


RUN = [
    "data=ismrmrd",
    "data.image_size=24",
    "data.images.calib_width=12",
    f"data.images.crop={CROP}",
    "data.images.train_fraction=0.67",
    "physics=multicoil",
    "model.denoiser.base_features=8",
    "model.cg_iterations=2",
    "trainer.accelerator=cpu",
    "logger=none",
    "trainer.max_epochs=1",
]


def test_selection_by_val_psnr_is_refused_naming_val_loss(tmp_path):
    from ssmri.runner.run import train
    from tests.helpers.config import compose_config

    root = scan_folder(tmp_path)
    cfg = compose_config(tmp_path, [*RUN, f"data.images.root={root}", "loss=ssdu", "selection=val_psnr"])
    with pytest.raises(ValueError, match=r"selection=val_psnr .* choose selection=val_loss"):
        train(cfg)


@pytest.mark.slow
def test_a_run_trains_and_tests_with_no_target_anywhere(tmp_path, monkeypatch):
    import h5py

    from ssmri.data.kspace_dataset import KspaceDataset
    from ssmri.runner.run import train
    from tests.helpers.config import compose_config

    served = []
    original = KspaceDataset.__getitem__

    def spy(self, index):
        sample = original(self, index)
        served.append(set(sample))
        return sample

    monkeypatch.setattr(KspaceDataset, "__getitem__", spy)
    root = scan_folder(tmp_path)
    cfg = compose_config(tmp_path, [*RUN, f"data.images.root={root}", "loss=ssdu"])
    metrics = train(cfg)
    assert metrics["ground_truth"] is False and np.isfinite(metrics["test/loss"])
    assert metrics["selection"]["used"] == "val_loss" and not any(k.startswith("test/psnr") for k in metrics)
    assert served and all("x" not in keys for keys in served)  # no sample ever carried a target
    with h5py.File(next((tmp_path / "cache").glob("ismrmrd-*.h5"))) as file:
        assert all("target" not in file[split] for split in ("train", "val", "test"))
        assert file["train/mask"][()].sum(axis=1).tolist() == [16, 16, 16, 16]  # the files' own masks
    assert (tmp_path / "run" / "splits.json").is_file()


def test_scan_specific_split_serves_every_slice_to_every_split(tmp_path, caplog):
    path, _, _ = scan(tmp_path)
    with pytest.raises(ValueError, match=r"1 volume in .* cannot be split 0.8/0.2 by file; .*split=scan"):
        ISMRMRDFiles(str(path), image_size=SIZE).keys("train", None)  # one file cannot split by file
    with caplog.at_level(logging.WARNING):
        images = ISMRMRDFiles(str(path), image_size=SIZE, split="scan")
    assert "train, val and test are the SAME slices" in caplog.text
    assert all(images.keys(split, None) == [(0, 0), (0, 1)] for split in ("train", "val", "test"))
    assert images.shares_splits and images.describe()["split"] == "scan"
    assert "split" not in ISMRMRDFiles(str(path), image_size=SIZE).describe()  # old caches keep their names
    with pytest.raises(ValueError, match=r"data.images.split='slices'; choose 'files' .* or 'scan'"):
        ISMRMRDFiles(str(path), image_size=SIZE, split="slices")


def test_scan_specific_selection_on_the_training_truth_is_refused(tmp_path):
    from ssmri.runner.run import train
    from tests.helpers.config import compose_config
    from tests.helpers.fastmri_files import write_fastmri_volume

    write_fastmri_volume(tmp_path / "file0.h5")  # fully sampled, with a target
    cfg = compose_config(
        tmp_path,
        [
            "data=fastmri_h5",
            f"data.images.root={tmp_path}",
            "data.image_size=24",
            "data.images.split=scan",
            "selection=val_psnr",
            "trainer.accelerator=cpu",
            "logger=none",
        ],
    )
    with pytest.raises(ValueError, match=r"val_psnr with data.images.split=scan .* selection=val_loss"):
        train(cfg)


GRE = "tests/data/twix/gre.dat"


@pytest.mark.slow
def test_one_scan_trains_scan_specific_and_writes_its_objective_per_image(tmp_path):
    import csv
    import json

    from ssmri.runner.run import train
    from tests.helpers.config import compose_config

    cfg = compose_config(
        tmp_path,
        [
            "data=twix",
            f"data.images.root={GRE}",
            "data.images.split=scan",
            "data.image_size=32",
            *RUN[3:],
            "loss=ssdu",
        ],
    )
    metrics = train(cfg)
    assert metrics["ground_truth"] is False and metrics["splits_share_data"] is True
    with open(tmp_path / "run" / "test_per_image.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["index", "loss"] and len(rows) == 1
    assert np.isclose(float(rows[0]["loss"]), metrics["test/loss"], rtol=1e-5)  # one slice: its mean
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["source"]["split"] == "scan" and splits["train"] == splits["test"]


@pytest.fixture(scope="module")
def acquired_batch(tmp_path_factory):
    """A training batch of acquired ISMRMRD scans and the multi-coil physics with the estimated law."""
    from ssmri.data import MRIDataModule
    from ssmri.physics import MultiCoilMRI
    from ssmri.physics.measured_law import MeasuredMaskLaw

    tmp_path = tmp_path_factory.mktemp("acquired")
    images = ISMRMRDFiles(
        str(scan_folder(tmp_path)), image_size=SIZE, calib_width=12, crop=CROP, train_fraction=0.67
    )
    physics = MultiCoilMRI(SIZE, 8, coils=4)
    datamodule = MRIDataModule(images, physics, SIZE, batch_size=2, cache_dir=tmp_path / "cache")
    datamodule.prepare_data()
    datamodule.setup()
    assert isinstance(physics.mask_law, MeasuredMaskLaw) and physics.mask_law.acceleration == 1.5
    assert physics.mask_law.distinct == 2  # the two training files were acquired with different masks
    return next(iter(datamodule.train_dataloader())), physics


@pytest.mark.parametrize(
    "name, reads",
    [("moi", "sample_columns"), ("mo_ei", "sample_columns"), ("weighted_ssdu", "column_probability")],
)
def test_losses_that_need_the_mask_law_train_on_the_estimated_one(acquired_batch, monkeypatch, name, reads):
    from ssmri.physics.measured_law import MeasuredMaskLaw
    from ssmri.runner.run import instantiate
    from tests.helpers.config import compose_only
    from tests.helpers.models import tiny_model

    batch, physics = acquired_batch
    calls = []
    original = getattr(MeasuredMaskLaw, reads)
    monkeypatch.setattr(
        MeasuredMaskLaw, reads, lambda law, *a, **k: calls.append(law) or original(law, *a, **k)
    )
    loss = instantiate(compose_only(["data=phantom", f"data.image_size={SIZE}", f"loss={name}"]).loss)
    model = tiny_model()
    output = loss(model, physics, batch.y, batch.acq, None, torch.Generator().manual_seed(0))
    output.loss.backward()
    assert calls and all(law is physics.mask_law for law in calls)  # the law of the files' masks
    assert torch.isfinite(output.loss) and output.loss > 0
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)
    assert any(g.abs().sum() > 0 for g in gradients)


def test_one_file_that_is_not_ismrmrd_is_named_before_the_split(tmp_path):
    """A single damaged file must be reported as damaged, not as a split that cannot be made."""
    (tmp_path / "scan.h5").write_text("not HDF5")
    with pytest.raises(ValueError, match=r"scan.h5 .*is not a readable HDF5 file"):
        ISMRMRDFiles(str(tmp_path / "scan.h5"), image_size=SIZE).keys("train", None)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"threshold": 1.5}, r"data.images.threshold must lie in \(0, 1\)"),
        ({"crop": -0.1}, r"data.images.crop in \[0, 1\)"),
        ({"calib_width": 1}, r"data.images.calib_width=1 must be >= 2"),
        ({"train_fraction": 1.0}, r"data.images.train_fraction must lie in \(0, 1\)"),
    ],
)
def test_raw_scan_settings_are_checked_as_the_fastmri_sources_check_them(tmp_path, setting, message):
    path, _, _ = scan(tmp_path)
    with pytest.raises(ValueError, match=message):
        ISMRMRDFiles(str(path), image_size=SIZE, **setting)
