"""Every option of every config group composes and instantiates (costs no training)."""

from pathlib import Path

import hydra
import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from ssmri.runner.run import build, build_trainer
from tests.helpers.config import FAST, compose_config, compose_only, options
from tests.helpers.fastmri_files import (
    write_fastmri_multicoil_volume,
    write_fastmri_volume,
    write_slice_tensor,
)

GROUPS = [
    "data",
    "physics",
    "model",
    "loss",
    "module",
    "trainer",
    "logger",
    "callbacks",
    "selection",
    "paths",
    "experiment",
    "debug",
]


def test_every_group_has_options():
    for group in GROUPS + ["hydra"]:
        assert options(group), group


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v))
def test_option_composes_and_instantiates(group, option, tmp_path):
    overrides = [o for o in FAST if not o.startswith(f"{group}=")]
    if group == "logger":
        overrides = [o for o in overrides if not o.startswith("logger=")]
    if option == "fastmri_knee_simple":
        write_slice_tensor(tmp_path / "knee.pt", count=30, size=40)
        overrides.append(f"data.images.path={tmp_path / 'knee.pt'}")
    if option == "fastmri_h5":
        for i in range(5):
            write_fastmri_volume(tmp_path / f"file{i}.h5", slices=4, seed=i)
        overrides.append(f"data.images.root={tmp_path}")
    if option == "fastmri_multicoil":
        for i in range(2):
            write_fastmri_multicoil_volume(tmp_path / f"file{i}.h5", slices=1, seed=i)
        overrides += [f"data.images.root={tmp_path}", "data.image_size=32", "data.images.train_fraction=0.5"]
    if option in ("ismrmrd", "twix"):  # acquired scans: the files are read when the data are used
        root = Path(__file__).parent / "data" / "twix" if option == "twix" else tmp_path / "scan.h5"
        if option == "ismrmrd":
            from tests.helpers.raw_files import write_ismrmrd

            write_ismrmrd(root, np.ones((1, 2, 64, 40), np.complex64), np.ones((1, 40), bool), 20, 32)
        overrides += [f"data.images.root={root}", "data.image_size=32"]
    cfg = compose_config(tmp_path, [*overrides, f"{group}={option}"])
    OmegaConf.resolve(cfg)
    module, datamodule = build(cfg)
    trainer = build_trainer(cfg, Path(cfg.paths.output_dir))
    assert trainer is not None and module.loss is not None and datamodule is not None
    if group == "logger" and option != "none":
        assert {type(lg).__name__ for lg in trainer.loggers}
    for logger in trainer.loggers:  # never leave a wandb run open behind a test
        if type(logger).__name__ == "WandbLogger" and logger._experiment is not None:
            logger.experiment.finish()


def test_common_knobs_are_plain_top_level_overrides(tmp_path):
    cfg = compose_config(
        tmp_path,
        [
            *FAST,
            "seed=5",
            "data.image_size=48",
            "data.num_train=6",
            "physics.acceleration=8",
            "trainer.max_epochs=3",
            "data.batch_size=2",
        ],
    )
    physics = hydra.utils.instantiate(cfg.physics)
    assert physics.image_size == (48, 48) and physics.acceleration == 8
    assert cfg.module.seed == 5 and cfg.trainer.max_epochs == 3
    module, datamodule = build(cfg)
    assert datamodule.counts["train"] == 6 and datamodule.batch_size == 2


def test_paths_come_from_the_hydra_output_directory(tmp_path):
    cfg = compose_config(tmp_path, ["logger=csv"])
    run_dir = str(tmp_path / "run")
    assert cfg.logger.csv.save_dir == run_dir
    assert cfg.callbacks.model_checkpoint.dirpath == f"{run_dir}/checkpoints"
    assert HydraConfig.get().run.dir.startswith("outputs/")
    assert cfg.paths.output_dir == run_dir


@pytest.mark.parametrize("scenario", ["noiseless", "noisy", "single", "multicoil"])
def test_a_scenario_is_the_same_under_either_protocol_and_leaves_the_budget(scenario):
    gpu = compose_only(["experiment=ssibench", f"scenario={scenario}"])
    cpu = compose_only(["experiment=cpu_quick", f"scenario={scenario}"])
    assert gpu.scenario.name == scenario
    for key in ("scenario", "splitter", "weighted_splitter"):
        assert gpu[key] == cpu[key], key
    gpu_physics, cpu_physics = (OmegaConf.to_container(c.physics, resolve=True) for c in (gpu, cpu))
    budget = {"image_size", "acceleration"}
    assert {k: v for k, v in gpu_physics.items() if k not in budget} == {
        k: v for k, v in cpu_physics.items() if k not in budget
    }
    # Each preset keeps its own image size, acceleration, batch and trainer.
    assert (gpu.data.image_size, gpu.physics.acceleration, gpu.data.batch_size) == (320, 6, 4)
    assert (cpu.data.image_size, cpu.physics.acceleration) == (64, 4)
    assert (gpu.trainer.accelerator, cpu.trainer.accelerator) == ("gpu", "cpu")


def test_the_ssibench_preset_without_a_scenario_is_the_noiseless_one():
    noiseless = compose_only(["experiment=ssibench", "scenario=noiseless"])
    assert compose_only(["experiment=ssibench"]) == noiseless


def test_modl_ssibench_is_modl_with_a_four_scale_unet_without_batch_norm():
    base = OmegaConf.to_container(compose_only(["model=modl"]).model)
    ssibench = OmegaConf.to_container(compose_only(["model=modl_ssibench"]).model)
    assert (ssibench["denoiser"]["scales"], ssibench["denoiser"]["batch_norm"]) == (4, False)
    assert (base["denoiser"]["scales"], base["denoiser"]["batch_norm"]) != (4, False)
    for key in ("scales", "batch_norm"):
        base["denoiser"].pop(key), ssibench["denoiser"].pop(key)
    assert ssibench == base  # everything else is modl's, so a change to modl.yaml reaches both


def test_each_callback_config_is_named_for_the_class_it_builds():
    callbacks = compose_only([]).callbacks
    assert callbacks.model_checkpoint._target_.endswith(".SelectionCheckpoints")
    assert "selection_checkpoints" in options("callbacks") and "model_checkpoint" not in options("callbacks")
