"""Shared fixtures: tiny data written by the tests themselves, and config composition."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from ssmri.data import MRIDataModule, PhantomImages
from ssmri.physics import SingleCoilMRI

# Test tensors are tiny: one thread avoids thread start-up and oversubscription costs.
torch.set_num_threads(1)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def phantom_datamodule(tmp_path: Path):
    """A 32x32 phantom data module with its cache in a temporary folder."""

    def make(train_ground_truth: bool = False, **overrides) -> MRIDataModule:
        size = overrides.pop("image_size", 32)
        options = dict(num_train=8, num_val=4, num_test=4, batch_size=4, cache_dir=tmp_path)
        options.update(overrides)
        return MRIDataModule(
            PhantomImages(size), SingleCoilMRI(size, 4), size,
            train_ground_truth=train_ground_truth, **options,
        )

    return make


def compose_config(tmp_path: Path, overrides: list[str], config_name: str = "train"):
    """Compose like ``train.py`` would, with outputs and cache under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="ssmri.conf"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        cfg.hydra.job.num = 0
        cfg.paths.cache_dir = str(tmp_path / "cache")
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in a real run: the task function never sees the hydra node
    return cfg


FAST = [
    "data=phantom", "data.image_size=32", "data.num_train=8", "data.num_val=4",
    "data.num_test=4", "data.batch_size=4", "model.denoiser.base_features=8",
    "trainer.accelerator=cpu", "logger=none",
]
