"""Values that cannot be right are refused where they enter; a run fails before training."""

import json
import math

import pytest
import torch

from ssmri.atomic import write_json
from ssmri.data import MRIDataModule
from ssmri.data.fastmri import FastMRISingleCoilFiles
from ssmri.data.sources import ImageSource
from ssmri.errors import ConfigError, DataError, DiskError
from ssmri.evaluation.metrics import check_metrics
from ssmri.physics import SingleCoilMRI
from ssmri.runner.run import train
from ssmri.runner.validation import check_config
from tests.helpers.config import FAST, compose_config, compose_only, options
from tests.helpers.faults import small_tmpfs


@pytest.mark.parametrize(
    "override, message",
    [
        ("physics.noise_std=nan", r"physics\.noise_std=nan is not a finite number"),
        ("physics.noise_std=abc", r"physics\.noise_std must be a number, got 'abc'"),
        ("physics.acceleration=inf", r"physics\.acceleration=inf is not a finite number"),
        ("physics.acceleration=four", r"physics\.acceleration must be a number"),
        ("data.image_size=32.5", r"data\.image_size must be an integer, got 32\.5"),
        ("data.batch_size=2.5", r"data\.batch_size must be an integer"),
        ("seed=abc", r"seed must be an integer, got 'abc'"),
        ("module.optimizer.lr=nan", r"module\.optimizer\.lr=nan is not a finite number"),
        ("module.optimizer.lr=-1", r"module\.optimizer\.lr=-1 is negative; give a learning rate > 0"),
        ("module.optimizer.lr=abc", r"module\.optimizer\.lr must be a number, got 'abc'"),
        ("+module.optimizer.betas=[0.9,1.5]", r"module\.optimizer \(torch\.optim\.Adam\) refuses .*beta"),
        ("trainer.max_epochs=-5", r"trainer\.max_epochs=-5 must be at least 0, or -1 for no limit"),
    ],
)
def test_bad_values_are_refused_naming_the_key_before_anything_runs(tmp_path, override, message):
    cfg = compose_config(tmp_path, [*FAST, override])
    with pytest.raises(ConfigError, match=message) as raised:
        train(cfg)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("group", ["loss", "physics", "data", "model", "trainer"])
def test_every_shipped_option_passes_the_checks(group):
    for option in options(group):
        check_config(compose_only([f"{group}={option}"]))


def test_an_image_size_that_cannot_fit_in_memory_fails_at_once(tmp_path):
    cfg = compose_config(tmp_path, [*FAST, "data.image_size=100000"])
    with pytest.raises(
        ConfigError,
        match=r"data\.image_size=100000 .* needs about [\d.]+ GB of memory"
        r" to simulate, and [\d.]+ GB are available",
    ):
        train(cfg)


class _Blank(ImageSource):
    image_size = 32

    def keys(self, split, count):
        return list(range(count))

    def load(self, keys):
        images = torch.rand(len(keys), 2, 32, 32)
        images[[i for i, key in enumerate(keys) if key == 1]] = 0
        return images

    def images(self, split, count):
        return self.load(self.keys(split, count))

    def describe(self):
        return {"source": "blank"}


def test_an_all_zero_image_is_refused_before_it_reaches_a_metric(tmp_path):
    datamodule = MRIDataModule(_Blank(), SingleCoilMRI(32, 4), 32, 4, 4, 4, cache_dir=tmp_path)
    with pytest.raises(DataError, match=r"data\.images: 1 train image\(s\) are all zero \(indices \[1\]\)"):
        datamodule.prepare_data()
    with pytest.raises(DataError, match=r"metric test/psnr is -inf"):
        check_metrics({"test/psnr": -math.inf, "loss": "sup"})


def test_no_nan_or_infinity_reaches_a_json_file(tmp_path):
    with pytest.raises(ValueError, match=r"refusing to write .*metrics\.json.*NaN or infinite"):
        write_json(tmp_path / "metrics.json", {"test/psnr": float("nan")})
    assert not list(tmp_path.iterdir())
    write_json(tmp_path / "metrics.json", {"test/psnr": 30.0})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"test/psnr": 30.0}


def test_fastmri_errors_name_the_right_key_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"set data\.images\.root to it"):
        FastMRISingleCoilFiles(root=str(tmp_path / "missing"), image_size=32)
    (tmp_path / "file1.h5").write_text("not hdf5 at all")
    (tmp_path / "file2.h5").write_text("nor this")
    source = FastMRISingleCoilFiles(root=str(tmp_path), image_size=32)
    with pytest.raises(DataError, match=r"file1\.h5 is not a readable HDF5 file.*data\.images\.root"):
        source.images("train", None)


def test_an_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoints folder should go")  # root ignores chmod
    cfg = compose_config(tmp_path, [*FAST, f"callbacks.model_checkpoint.dirpath={blocker}/checkpoints"])
    with pytest.raises(DiskError, match=r"cannot write to .*not-a-folder/checkpoints.*Nothing was trained"):
        train(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not (tmp_path / "cache").exists()  # the cache was not simulated either


def test_a_disk_without_room_for_cache_and_checkpoints_fails_before_training(tmp_path):
    with small_tmpfs(tmp_path / "disk", size="1m") as disk:
        cfg = compose_config(disk, [*FAST, "data.num_train=400"])
        with pytest.raises(
            DiskError,
            match=r"not enough disk space: this run needs about [\d.]+ MB "
            r"\(.*the cache.*\) and the file system has [\d.]+ MB free",
        ):
            train(cfg)
        assert not list(disk.rglob("*.h5")) and not list(disk.rglob("*.tmp"))


def test_measurements_too_large_for_float32_are_blamed_on_noise_std_not_the_learning_rate(tmp_path):
    cfg = compose_config(
        tmp_path,
        [
            *FAST,
            "physics.noise_std=1e30",
            "data.num_train=4",
            "data.num_val=1",
            "data.num_test=1",
            "trainer.max_epochs=1",
        ],
    )
    message = (
        r"training loss is inf at step 0: the measurements are not usable in float32 "
        r"\(largest \|y\| [\d.]+e\+30.*physics\.noise_std=1e\+30\)"
    )
    with pytest.raises(FloatingPointError, match=message) as raised:
        train(cfg)
    assert "lr" not in str(raised.value) and "\n" not in str(raised.value)


def test_preflight_budgets_every_checkpoint_the_run_writes(tmp_path):
    # best.ckpt, last.ckpt and select-val_psnr.ckpt (selection.test_all), and a temporary copy:
    # about 1.9 MB here, where budgeting two checkpoints asked for 1.1 MB and fitted in 1.5 MB.
    with small_tmpfs(tmp_path / "disk", size="1500k") as disk:
        cfg = compose_config(disk, FAST)
        with pytest.raises(
            DiskError,
            match=r"this run needs about [\d.]+ MB \(3 checkpoints [\d.]+ MB in "
            r".*/checkpoints, .*the cache [\d.]+ MB in .*\) and the file system has",
        ):
            train(cfg)
        assert not list(disk.rglob("*.ckpt")) and not list(disk.rglob("*.h5"))
