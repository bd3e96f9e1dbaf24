"""predict.py: every slice of every volume reconstructed and saved, with no target anywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import nibabel
import numpy as np
import pytest
import torch

from ssmri.checkpoints.load import plain
from ssmri.errors import CheckpointError, DataError
from ssmri.physics.fft import magnitude
from ssmri.runner.predict import predict
from ssmri.runner.run import build
from tests.helpers.config import FAST, compose_config
from tests.helpers.fastmri_files import write_fastmri_multicoil_volume, write_fastmri_volume
from tests.helpers.raw_files import write_ismrmrd

ROOT = Path(__file__).parents[1]
PREDICT = FAST[:-1]  # predict.yaml has no logger group
SIZE = 24


def tiny_checkpoint(tmp_path: Path, loss: str = "sup", *overrides: str) -> Path:
    """A checkpoint as a run writes it (weights, hyper-parameters) without training."""
    cfg = compose_config(tmp_path / "origin", [*FAST, f"loss={loss}", *overrides])
    module, _ = build(cfg, loss)
    path = tmp_path / "tiny.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": plain(dict(module.hparams)),
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )
    return path


def write_test_layout(path: Path, seed: int, slices: int = 2, centre: bool = True) -> None:
    """fastMRI's multi-coil test layout: k-space zero off a ``(W,)`` mask, no reconstruction."""
    width = SIZE + 4
    kspace = write_fastmri_multicoil_volume(path, slices=slices, coils=4, height=SIZE, width=width, seed=seed)
    mask = np.zeros(width, dtype=bool)
    mask[::3] = True
    mask[width // 2 - 6 : width // 2 + 6] = centre  # twelve acquired central lines (or none)
    with h5py.File(path, "w") as file:
        file["kspace"] = kspace * mask
        file["mask"] = mask
        file["ismrmrd_header"] = np.bytes_(b"<ismrmrdHeader/>")
        file.attrs["acceleration"] = 3
        file.attrs["num_low_frequency"] = 10


@pytest.mark.parametrize("loss, overrides", [("sup", ()), ("noise2inverse", ("loss.num_splits=3",))])
def test_phantom_reconstructions_are_the_methods_own_on_the_simulated_measurements(tmp_path, loss, overrides):
    # Noise2Inverse infers with random splits: drawn per slice, so batches of 3 give eval's numbers.
    checkpoint = tiny_checkpoint(tmp_path, loss, *overrides)
    cfg = compose_config(
        tmp_path, [*PREDICT, f"ckpt_path={checkpoint}", "predict.batch_size=3"], config_name="predict"
    )
    outcome = predict(cfg)
    run = Path(cfg.paths.output_dir)
    assert outcome.written == ["phantom"] and not outcome.failed
    with h5py.File(run / "reconstructions" / "phantom.h5") as file:
        reconstruction = file["reconstruction"][()]
        assert file.attrs["method"] == loss and file.attrs["units"].startswith("normalised")
    assert reconstruction.dtype == np.float32 and reconstruction.shape == (4, 32, 32)
    # The same slices through the cache eval.py tests on: the physics' masks, the test loader.
    again = compose_config(tmp_path / "again", [*PREDICT, f"ckpt_path={checkpoint}"], config_name="eval")
    from ssmri.runner.run import load_trained

    module, datamodule, _, _ = load_trained(again, "eval")
    datamodule.prepare_data()
    datamodule.setup("test")
    with torch.inference_mode():
        expected = torch.cat(
            [magnitude(module.eval().reconstruct(b))[:, 0] for b in datamodule.test_dataloader()]
        )
    np.testing.assert_allclose(reconstruction, expected.numpy(), rtol=1e-5, atol=1e-6)
    volume = nibabel.load(run / "reconstructions" / "phantom.nii.gz")
    assert volume.shape == (32, 32, 4) and volume.header.get_zooms() == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(np.asarray(volume.dataobj)[:, :, 2], reconstruction[2])
    assert (run / "reconstructions" / "phantom.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "predictions.json").read_text())["written"] == ["phantom"]
    assert not list(run.rglob("*.tmp"))


def test_fully_sampled_fastmri_files_give_every_slice_of_every_file_whatever_the_split(tmp_path):
    folder = tmp_path / "knees"
    folder.mkdir()
    for number, slices in enumerate((3, 2)):
        write_fastmri_volume(folder / f"knee_{number}.h5", slices=slices, seed=number)
    cfg = compose_config(
        tmp_path,
        [
            *PREDICT,
            f"ckpt_path={tiny_checkpoint(tmp_path)}",
            "data=fastmri_h5",
            "data.image_size=32",
            f"data.images.root={folder}",
            "data.images.train_fraction=0.5",  # one file trains, one tests
        ],
        config_name="predict",
    )
    assert predict(cfg).written == ["knee_0", "knee_1"]
    reconstructions = Path(cfg.paths.output_dir) / "reconstructions"
    for number, slices in enumerate((3, 2)):
        with h5py.File(reconstructions / f"knee_{number}.h5") as file:
            assert file["reconstruction"].shape == (slices, 32, 32)
            assert "voxel_size_mm" not in file.attrs  # the header says none: NIfTI's 1 mm
        assert nibabel.load(reconstructions / f"knee_{number}.nii.gz").header.get_zooms() == (1, 1, 1)


def test_single_coil_test_layout_files_are_reconstructed_in_their_units(tmp_path):
    folder = tmp_path / "singlecoil_test"
    folder.mkdir()
    mask = np.zeros(36, dtype=bool)
    mask[::3] = True
    mask[14:22] = True  # the centre column 18 and its neighbours
    for number in range(2):
        write_fastmri_volume(folder / f"file{number}.h5", slices=2, height=48, width=36, seed=number)
        with h5py.File(folder / f"file{number}.h5", "r+") as file:
            kspace = file["kspace"][()] * mask
            del file["kspace"], file["reconstruction_esc"]
            file["kspace"], file["mask"] = kspace, mask
    cfg = compose_config(
        tmp_path,
        [
            *PREDICT,
            f"ckpt_path={tiny_checkpoint(tmp_path)}",
            "data=fastmri_h5",
            f"data.image_size={SIZE}",
            f"data.images.root={folder}",
        ],
        config_name="predict",
    )
    assert predict(cfg).written == ["file0", "file1"]
    with h5py.File(Path(cfg.paths.output_dir) / "reconstructions" / "file1.h5") as file:
        assert file["reconstruction"].shape == (2, SIZE, SIZE) and file.attrs["units"] == "file"
        assert np.isfinite(file["reconstruction"][()]).all() and file["reconstruction"][()].max() > 0


@pytest.fixture
def scans(tmp_path) -> Path:
    """Three test-layout volumes (2, 3 and 2 slices) and one whose k-space centre was not acquired."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for number, slices in enumerate((2, 3, 2)):
        write_test_layout(folder / f"scan_{number}.h5", seed=number, slices=slices)
    write_test_layout(folder / "scan_9_broken.h5", seed=9, centre=False)
    return folder


def predict_scans(tmp_path: Path, root: Path, checkpoint: Path):
    cfg = compose_config(
        tmp_path,
        [
            *PREDICT,
            f"ckpt_path={checkpoint}",
            "data=fastmri_multicoil",
            f"data.image_size={SIZE}",
            f"data.images.root={root}",
            "physics=multicoil",
        ],
        config_name="predict",
    )
    return cfg, Path(cfg.paths.output_dir) / "reconstructions"


def test_acquired_scans_one_broken_file_is_named_and_the_others_are_written(tmp_path, scans):
    cfg, folder = predict_scans(tmp_path, scans, tiny_checkpoint(tmp_path, "ssdu"))
    failed = (
        r"^1 of 4 volume\(s\) failed, the others are in .*reconstructions: scan_9_broken: "
        r".*scan_9_broken\.h5 slice 0: the centre column 12 of the mask is not acquired"
    )
    with pytest.raises(DataError, match=failed):
        predict(cfg)
    for number, slices in enumerate((2, 3, 2)):
        with h5py.File(folder / f"scan_{number}.h5") as file:
            reconstruction = file["reconstruction"][()]
            assert file.attrs["units"] == "file"  # the source's scale undone
        assert reconstruction.shape == (slices, SIZE, SIZE) and reconstruction.dtype == np.float32
        assert np.isfinite(reconstruction).all() and reconstruction.max() > 0
        assert nibabel.load(folder / f"scan_{number}.nii.gz").shape == (SIZE, SIZE, slices)
        assert (folder / f"scan_{number}.png").is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"scan_{n}{suffix}" for n in range(3) for suffix in (".h5", ".nii.gz", ".png")
    )
    record = json.loads((folder.parent / "predictions.json").read_text())
    assert list(record["failed"]) == ["scan_9_broken"] and len(record["written"]) == 3


@pytest.mark.parametrize("data", ["fastmri_h5", "fastmri_multicoil"])
def test_a_file_that_cannot_even_be_listed_fails_alone(tmp_path, data):
    # Listing the folder at once (right before training) would fail every volume on junk.h5.
    folder = tmp_path / "files"
    folder.mkdir()
    overrides = [f"data={data}", f"data.images.root={folder}"]
    if data == "fastmri_h5":
        for number in range(3):
            write_fastmri_volume(folder / f"file{number}.h5", slices=2, seed=number)
        overrides += ["data.image_size=32", "data.images.crop_size=32"]
        checkpoint, size = tiny_checkpoint(tmp_path), 32
    else:
        for number in range(3):
            write_test_layout(folder / f"file{number}.h5", seed=number)
        overrides += [f"data.image_size={SIZE}", "physics=multicoil"]
        checkpoint, size = tiny_checkpoint(tmp_path, "ssdu"), SIZE
    (folder / "junk.h5").write_text("not HDF5 at all\n")
    cfg = compose_config(tmp_path, [*PREDICT, f"ckpt_path={checkpoint}", *overrides], config_name="predict")
    with pytest.raises(
        DataError, match=r"^1 of 4 volume\(s\) failed, .*: junk: .*junk\.h5 is not a readable HDF5 file"
    ):
        predict(cfg)
    folder = Path(cfg.paths.output_dir) / "reconstructions"
    for number in range(3):
        with h5py.File(folder / f"file{number}.h5") as file:
            assert file["reconstruction"].shape == (2, size, size)
            assert np.isfinite(file["reconstruction"][()]).all() and file["reconstruction"][()].max() > 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"file{n}{suffix}" for n in range(3) for suffix in (".h5", ".nii.gz", ".png")
    )  # nothing of junk, no temporary left behind
    record = json.loads((folder.parent / "predictions.json").read_text())
    assert record["written"] == ["file0", "file1", "file2"] and list(record["failed"]) == ["junk"]
    assert "junk.h5" in record["failed"]["junk"]


def test_training_still_refuses_a_folder_with_a_file_that_cannot_be_listed(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for number in range(3):
        write_fastmri_volume(folder / f"file{number}.h5", slices=2, seed=number)
    (folder / "junk.h5").write_text("not HDF5 at all\n")
    cfg = compose_config(
        tmp_path,
        [
            *FAST,
            "data=fastmri_h5",
            f"data.images.root={folder}",
            "data.image_size=32",
            "data.images.crop_size=32",
        ],
    )
    _, datamodule = build(cfg, "sup")
    with pytest.raises(DataError, match=r"junk\.h5 is not a readable HDF5 file"):
        datamodule.split_sizes()  # what prepare_data asks first, before any cache is written
    only = datamodule.images.only(1)  # a file's own source lists it alone
    assert only.volumes() == ["file1.h5"] and only.slices_per_file() == [2]


def test_one_ismrmrd_file_gives_its_volume_with_the_headers_voxel_size(tmp_path):
    full = write_fastmri_multicoil_volume(tmp_path / "full.h5", slices=2, seed=3)[..., :36]
    mask = np.zeros((2, 36), bool)
    mask[:, ::3] = True
    mask[:, 12:24] = True
    # Field of view 200 x 200 mm over 32 readout samples (64 with oversampling) and 36 lines,
    # 5 mm slices; the central 24 x 24 of k-space keeps the field of view: 200 / 24 mm pixels.
    write_ismrmrd(tmp_path / "knee.h5", full * mask[:, None, None], mask, centre=20, recon_x=32)
    cfg = compose_config(
        tmp_path,
        [
            *PREDICT,
            f"ckpt_path={tiny_checkpoint(tmp_path, 'ssdu')}",
            "data=ismrmrd",
            f"data.image_size={SIZE}",
            f"data.images.root={tmp_path / 'knee.h5'}",
            "physics=multicoil",
        ],
        config_name="predict",
    )
    assert predict(cfg).written == ["knee"]
    folder = Path(cfg.paths.output_dir) / "reconstructions"
    volume = nibabel.load(folder / "knee.nii.gz")
    assert volume.shape == (SIZE, SIZE, 2)
    np.testing.assert_allclose(volume.header.get_zooms(), (200 / SIZE, 200 / SIZE, 5), rtol=1e-5)
    with h5py.File(folder / "knee.h5") as file:
        np.testing.assert_allclose(file.attrs["voxel_size_mm"], (200 / SIZE, 200 / SIZE, 5), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(volume.dataobj), file["reconstruction"][()].transpose(1, 2, 0))


def test_a_volume_whose_writing_fails_leaves_none_of_its_files(tmp_path, scans, monkeypatch):
    (scans / "scan_9_broken.h5").unlink()
    cfg, folder = predict_scans(tmp_path, scans, tiny_checkpoint(tmp_path, "ssdu"))
    from ssmri.runner import predict as module

    original = module.write_montage

    def fail_for_scan_1(path, *args):
        if path.name.startswith("scan_1"):
            raise OSError(28, "No space left on device")
        return original(path, *args)

    monkeypatch.setattr(module, "write_montage", fail_for_scan_1)
    with pytest.raises(DataError, match=r"1 of 3 volume\(s\) failed.*scan_1: .*No space left on device"):
        predict(cfg)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"scan_{n}{suffix}" for n in (0, 2) for suffix in (".h5", ".nii.gz", ".png")
    )
    assert not list(folder.glob(".*"))  # no temporary left behind


def test_predict_refuses_an_untrusted_checkpoint_before_building(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path)
    state = torch.load(checkpoint, weights_only=True)
    state["hyper_parameters"]["loss"] = {"_target_": "pathlib.Path.touch", "self": str(tmp_path / "ran")}
    torch.save(state, checkpoint)
    cfg = compose_config(tmp_path, [*PREDICT, f"ckpt_path={checkpoint}"], config_name="predict")
    with pytest.raises(CheckpointError, match=r"ckpt_path=.*tiny\.ckpt.*pathlib\.Path\.touch"):
        predict(cfg)
    assert not (tmp_path / "ran").exists()
    assert not (Path(cfg.paths.output_dir) / "reconstructions").exists()


@pytest.mark.slow  # two fresh interpreters import torch and Lightning: 20-60 s on a shared 2-core machine
def test_predict_py_exits_non_zero_naming_the_broken_file_and_evaluate_reads_its_output(tmp_path, scans):
    checkpoint = tiny_checkpoint(tmp_path, "ssdu")
    env = {**os.environ, "SSMRI_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "predict.py"),
            f"ckpt_path={checkpoint}",
            "data=fastmri_multicoil",
            f"data.image_size={SIZE}",
            f"data.images.root={scans}",
            "physics=multicoil",
            "model.denoiser.base_features=8",
            "hydra.run.dir=out",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 4 volume(s) failed") and "scan_9_broken" in last, last
    folder = tmp_path / "out" / "reconstructions"
    assert len(list(folder.glob("*.h5"))) == 3
    # The outputs are fastMRI's submission layout: python -m ssmri.evaluation scores them against themselves.
    targets = tmp_path / "targets"
    targets.mkdir()
    for path in folder.glob("*.h5"):
        with h5py.File(path) as source, h5py.File(targets / path.name, "w") as target:
            target["reconstruction_rss"] = source["reconstruction"][()]
    scored = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssmri.evaluation",
            "--predictions",
            str(folder),
            "--targets",
            str(targets),
            "--out",
            str(tmp_path / "scores"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads((tmp_path / "scores" / "metrics.json").read_text())["test/nmse"] == 0.0
