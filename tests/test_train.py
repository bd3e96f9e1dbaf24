"""End to end: the real entry point, a short run that learns, resuming, and bad input."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from omegaconf import open_dict

from ssmri.runner.preflight import checkpoint_files
from ssmri.runner.run import build, build_trainer, evaluate, train
from tests.helpers.config import FAST, compose_config

ROOT = Path(__file__).parents[1]


def run_cli(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SSMRI_CACHE_DIR": str(cache), "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_fast_dev_run_through_the_real_entry_point(tmp_path):
    result = run_cli(["debug=fast_dev_run", "model.denoiser.base_features=8"], tmp_path, tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    assert printed.count("Trainable params") == 1, printed  # Lightning's lines, each once
    runs = list((tmp_path / "outputs" / "debug" / "mo_ei").iterdir())  # debug modes: their own folder
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["num_test_images"] == 2 and metrics["loss"] == "mo_ei"
    for name in ("test_per_image.csv", "samples.png", ".hydra/config.yaml"):
        assert (runs[0] / name).is_file(), name


def test_short_supervised_run_beats_zero_filled_and_writes_every_output(tmp_path):
    cfg = compose_config(
        tmp_path,
        [
            *FAST,
            "loss=sup",
            "data=brain",
            "logger=csv",
            "data.num_train=48",
            "data.num_val=4",
            "data.num_test=8",
            "model.denoiser.base_features=16",
            "model.denoiser.scales=2",
            "trainer.max_epochs=6",
            "module.optimizer.lr=3e-3",
        ],
    )
    metrics = train(cfg, method="sup")
    run = Path(cfg.paths.output_dir)
    # 72 Adam steps of a small MoDL on 32x32 brain slices at R=4 gain about 5 dB.
    assert metrics["test/psnr"] > metrics["test/psnr_zero_filled"] + 2.0, metrics
    for key in (
        "test/psnr",
        "test/psnr_std",
        "test/ssim",
        "test/ssim_std",
        "test/psnr_zero_filled",
        "loss",
        "epochs",
        "train_seconds",
        "num_params",
    ):
        assert key in json.loads((run / "metrics.json").read_text()), key
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    rows = (run / "test_per_image.csv").read_text().splitlines()
    assert rows[0].startswith("index,psnr,ssim,psnr_zero_filled") and len(rows) == 9
    assert (run / "samples.png").stat().st_size > 10_000
    assert (run / "csv" / "metrics.csv").is_file()
    assert not list(run.rglob("*.tmp"))


def test_resume_continues_from_last_checkpoint(tmp_path):
    first = compose_config(tmp_path, [*FAST, "trainer.max_epochs=1"])
    train(first, method="sup")
    resumed = compose_config(tmp_path, [*FAST, "trainer.max_epochs=2", "ckpt_path=last"])
    metrics = train(resumed, method="sup")
    assert metrics["epochs"] == 2 and metrics["global_step"] == 4


def test_a_multicoil_run_trains_and_tests(tmp_path):
    """``physics=multicoil`` is one override: birdcage maps in the cache, CG in MoDL, every split."""
    cfg = compose_config(
        tmp_path,
        [
            *FAST,
            "physics=multicoil",
            "physics.coils=2",
            "loss=weighted_ssdu",
            "trainer.max_epochs=1",
            "model.cg_iterations=3",
        ],
    )
    metrics = train(cfg, method="weighted_ssdu")
    assert metrics["epochs"] == 1
    with h5py.File(next((tmp_path / "cache").glob("*.h5"))) as file:
        assert file["train/kspace"].shape[1:] == (2, 2, 32, 32) and file["train/maps"].shape == (2, 2, 32, 32)


@pytest.mark.parametrize(
    "override, message",
    [
        ("physics.acceleration=0.5", r"acceleration must lie in \[1, W=32\].*got 0.5"),
        ("physics.acceleration=40", r"acceleration must lie in \[1, W=32\].*got 40"),
        ("data.image_size=4", r"data.image_size=4 is outside"),
        ("data.images.image_size=48", r"data.image_size=32, but the images are 48"),
    ],
)
def test_bad_configuration_fails_before_training(tmp_path, override, message):
    cfg = compose_config(tmp_path, [*FAST, override])
    with pytest.raises(ValueError, match=message):
        build(cfg)


def test_missing_data_path_and_checkpoint_are_named(tmp_path):
    cfg = compose_config(
        tmp_path,
        [*[o for o in FAST if not o.startswith("data")], f"+data.images.path={tmp_path}/brain.nii.gz"],
    )
    with pytest.raises(FileNotFoundError, match=r"brain\.nii\.gz' does not exist"):
        build(cfg)
    cfg = compose_config(tmp_path, [*FAST, f"ckpt_path={tmp_path}/nope.ckpt"])
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=.*nope.ckpt.*no checkpoint"):
        train(cfg)


def test_corrupt_cache_stops_the_run_before_training(tmp_path):
    cfg = compose_config(tmp_path, FAST)
    _, datamodule = build(cfg)
    datamodule.cache_path.parent.mkdir(parents=True)
    with h5py.File(datamodule.cache_path, "w") as file:
        file.attrs["complete"] = True
        file.attrs["config_hash"] = "0000"
    with pytest.raises(RuntimeError, match="another data/physics configuration"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
    with open_dict(cfg):
        cfg.data.rebuild_cache = True
        cfg.trainer.fast_dev_run = True
    assert train(cfg)["num_test_images"] == 4


@pytest.mark.parametrize("loss", ["sup", "noise2inverse"])
def test_eval_of_a_checkpoint_reproduces_the_test_psnr(tmp_path, loss):
    extra = ["loss.num_splits=3"] if loss == "noise2inverse" else []
    cfg = compose_config(tmp_path / "a", [*FAST, "trainer.max_epochs=2", f"loss={loss}", *extra])
    trained = train(cfg, method=loss)
    overrides = [o for o in FAST if not o.startswith("logger")]
    # eval's own defaults name another loss: the checkpoint's network and inference rule win
    again = compose_config(
        tmp_path / "b", [*overrides, f"ckpt_path={trained['tested_checkpoint']}"], config_name="eval"
    )
    evaluated = evaluate(again)
    assert evaluated["loss"] == loss
    assert abs(evaluated["test/psnr"] - trained["test/psnr"]) < 1e-4
    assert abs(evaluated["test/ssim"] - trained["test/ssim"]) < 1e-6
    assert (tmp_path / "b" / "run" / "metrics.json").is_file()
    # The same checkpoint under fastMRI's convention (phantoms: one volume per image).
    fastmri = compose_config(
        tmp_path / "c",
        [*overrides, "metrics.convention=fastmri", f"ckpt_path={trained['tested_checkpoint']}"],
        config_name="eval",
    )
    recomputed = evaluate(fastmri)
    assert recomputed["metrics_convention"] == "fastmri" and recomputed["test/num_volumes"] == 4
    assert evaluated["metrics_convention"] == "per_image"
    assert recomputed["test/ssim"] != pytest.approx(evaluated["test/ssim"], abs=1e-4)  # 7x7 uniform window


def test_wandb_offline_run_holds_the_final_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_config(
        tmp_path, [*[o for o in FAST if o != "logger=none"], "logger=wandb", "trainer.max_epochs=1"]
    )
    try:
        metrics = train(cfg, method="sup")
    finally:
        import wandb

        wandb.finish()
        # finish() returns once the run has ended, but the wandb service closes the run's
        # record file on its own time; CI read it while it still held only its header.
        # Stopping the service waits for every file it holds to be closed.
        wandb.teardown()
    (run_dir,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (records,) = run_dir.glob("run-*.wandb")
    # An offline run keeps its records (protobuf, uncompressed) in run-<id>.wandb until
    # `wandb sync`; the summary-only keys and their values must be among them.
    data = records.read_bytes()
    for key in ("train_seconds", "num_test_images", "test/psnr_zero_filled"):
        assert key.encode() in data, key
    assert repr(metrics["train_seconds"]).encode() in data
    assert list((run_dir / "files" / "media" / "images").rglob("*.png"))


def test_one_image_splits_train_and_preflight_counts_every_checkpoint_written(tmp_path):
    cfg = compose_config(
        tmp_path, [*FAST, "loss=sup", "data.num_val=1", "data.num_test=1", "trainer.max_epochs=1"]
    )
    module, datamodule = build(cfg, "sup")
    expected = checkpoint_files(build_trainer(cfg, Path(cfg.paths.output_dir)), module, datamodule)
    metrics = train(cfg, method="sup")
    assert metrics["num_test_images"] == 1 and math.isfinite(metrics["test/psnr"])
    assert metrics["test/psnr_std"] == 0.0  # undefined over one image: 0.0 beside n = 1, never NaN
    run = Path(cfg.paths.output_dir)
    assert len((run / "test_per_image.csv").read_text().splitlines()) == 2
    assert set((run / "checkpoints").glob("*.ckpt")) == expected
    assert {path.name for path in expected} == {"best.ckpt", "last.ckpt", "select-val_psnr.ckpt"}


@pytest.mark.parametrize(
    "test_batches", [1, pytest.param(4, marks=pytest.mark.slow)], ids=["only-batch", "first-of-four"]
)
def test_sigterm_during_the_final_test_fails_and_says_the_test_did_not_finish(tmp_path, test_batches):
    """Lightning raises on a signal only before a batch that is not the last; the one-batch test
    (the signal lands in the last batch) is the case it drops."""
    args = [
        "data=phantom",
        "data.image_size=32",
        "data.num_train=4",
        "data.num_val=2",
        "data.num_test=4",
        "data.batch_size=2",
        f"data.eval_batch_size={4 // test_batches}",
        "model.denoiser.base_features=8",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "logger=none",
        "hydra.run.dir=run",
        "+callbacks.sigterm._target_=tests.helpers.faults.SigtermDuringTest",
    ]
    result = run_cli(args, tmp_path, tmp_path / "cache")
    assert result.returncode == 1, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "stopped by a signal during the test of" in line and "the test did not finish" in line
    run = tmp_path / "run"
    assert not (run / "metrics.json").exists()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    # The tested weights are not written over last.ckpt as if training had stopped there.
    assert "Stopped by a signal" not in result.stdout + result.stderr
