"""Shared fixtures; shared plain code (models, problems, configs, files) is in ``tests/helpers``."""

from pathlib import Path

import pytest
import torch

from ssmri.data import MRIDataModule, PhantomImages
from ssmri.physics import SingleCoilMRI

# Test tensors are tiny: one thread avoids thread start-up and oversubscription costs.
torch.set_num_threads(1)


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def phantom_datamodule(tmp_path: Path):
    """A 32x32 phantom data module with its cache in a temporary folder."""

    def make(train_ground_truth: bool = False, **overrides) -> MRIDataModule:
        size = overrides.pop("image_size", 32)
        options = dict(num_train=8, num_val=4, num_test=4, batch_size=4, cache_dir=tmp_path)
        options.update(overrides)
        return MRIDataModule(
            PhantomImages(size),
            SingleCoilMRI(size, 4),
            size,
            train_ground_truth=train_ground_truth,
            **options,
        )

    return make
