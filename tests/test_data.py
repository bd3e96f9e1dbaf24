"""Data: phantoms, the brain template's guarded split, the HDF5 cache, and typed batches."""

import os

import h5py
import pytest
import torch

from ssmri.data import BrainTemplateSlices, CacheError, PhantomImages
from ssmri.data.brain import guarded_block_split
from ssmri.data.cache import CacheChunk, write_cache


def test_phantoms_are_deterministic_complex_and_normalised():
    source = PhantomImages(40, seed=3)
    first, again = source.images("train", 5), PhantomImages(40, seed=3).images("train", 7)[:5]
    assert torch.equal(first, again)
    assert not torch.equal(first, PhantomImages(40, seed=4).images("train", 5))
    assert not torch.equal(first, source.images("test", 5))
    magnitude = first.pow(2).sum(1).sqrt()
    torch.testing.assert_close(magnitude.amax(dim=(1, 2)), torch.ones(5))
    assert first[:, 1].abs().max() > 0.05  # a smooth phase, not a real image


def test_guarded_split_keeps_val_and_test_away_from_train():
    split = guarded_block_split(list(range(200)), {"train": 20, "val": 3, "test": 4}, guard=5)
    for held_out in ("val", "test"):
        distance = min(abs(i - j) for i in split[held_out] for j in split["train"])
        assert distance > 5, (held_out, distance)
    assert not set(split["val"]) & set(split["test"])


def test_brain_slices_are_real_anatomy_with_a_guarded_split():
    source = BrainTemplateSlices(48)
    index = source.slice_index()
    for held_out in ("val", "test"):
        for orientation, number in index[held_out]:
            near = [n for o, n in index["train"] if o == orientation and abs(n - number) <= 5]
            assert not near, (held_out, orientation, number, near)
    assert len(index["train"]) > 150 and len(index["test"]) > 20
    images = source.images("test", 6)
    assert images.shape == (6, 2, 48, 48)
    assert images[:, 1].abs().max() == 0
    torch.testing.assert_close(images[:, 0].amax(dim=(1, 2)), torch.ones(6))
    # A brain slice has structure: many distinct grey levels, not a blank or a disc.
    assert images[0, 0].unique().numel() > 200


def test_brain_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"data.image_size=1000 is outside"):
        BrainTemplateSlices(1000)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BrainTemplateSlices(32, path=str(tmp_path / "missing.nii.gz"))
    with pytest.raises(ValueError, match="data.num_train=100000"):
        BrainTemplateSlices(32).images("train", 100000)


def test_cache_round_trip_and_reuse(phantom_datamodule):
    datamodule = phantom_datamodule()
    datamodule.prepare_data()
    path = datamodule.cache_path
    stamp = path.stat().st_mtime_ns
    datamodule.setup()
    with h5py.File(path) as file:
        assert file["train/kspace"].shape == (8, 2, 32, 32)
        assert file["train/mask"].shape == (8, 32)  # one row of sampled columns per sample
        assert all(file[f"train/{key}"].fletcher32 for key in ("kspace", "mask", "target"))
        assert file["test/target"].shape == (4, 2, 32, 32)
        kspace, rows = torch.from_numpy(file["val/kspace"][:]), torch.from_numpy(file["val/mask"][:])
        target = torch.from_numpy(file["val/target"][:])
    mask = rows[:, None, None, :].float().expand(-1, 1, 32, -1)
    # The stored measurements are the physics applied to the stored images and masks.
    torch.testing.assert_close(kspace, datamodule.physics.A(target, mask.float()))
    # Each sample has its own mask.
    assert not all(torch.equal(mask[0], m) for m in mask[1:])
    # Same config: reused, not rewritten; another config: another file.
    again = phantom_datamodule()
    again.prepare_data()
    assert again.cache_path == path and path.stat().st_mtime_ns == stamp
    assert phantom_datamodule(seed=1).cache_path != path


def test_interrupted_write_leaves_nothing_behind(phantom_datamodule, monkeypatch):
    datamodule = phantom_datamodule()
    real = datamodule.simulate

    def dies_on_test_split(split, start, data):
        if split == "test":
            raise KeyboardInterrupt
        return real(split, start, data)

    monkeypatch.setattr(datamodule, "simulate", dies_on_test_split)
    with pytest.raises(KeyboardInterrupt):
        datamodule.prepare_data()
    assert not datamodule.cache_path.exists()
    leftovers = list(datamodule.cache_dir.iterdir()) if datamodule.cache_dir.exists() else []
    assert leftovers == []


def test_interrupted_hdf5_write_leaves_no_half_file(tmp_path, monkeypatch):
    target = tmp_path / "cache.h5"
    splits = {"train": [CacheChunk(torch.zeros(2, 2, 4, 4), torch.ones(2, 4), torch.zeros(2, 2, 4, 4))]}
    original = h5py.Group.create_dataset

    def fail_on_target(self, name, *args, **kwargs):
        if name == "target":
            raise OSError("disk full")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_target)
    with pytest.raises(OSError, match="disk full"):
        write_cache(target, {"a": 1}, splits, {"train": 2})
    assert list(tmp_path.iterdir()) == []


def test_truncated_or_foreign_cache_is_refused(phantom_datamodule):
    datamodule = phantom_datamodule()
    datamodule.prepare_data()
    path = datamodule.cache_path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError, match="not a readable HDF5 file.*rebuild_cache=true"):
        phantom_datamodule().prepare_data()
    path.write_text("not hdf5 at all")
    with pytest.raises(CacheError, match="not a readable HDF5 file"):
        phantom_datamodule().setup()
    phantom_datamodule(rebuild_cache=True).prepare_data()  # the documented fix works
    phantom_datamodule().setup()


def test_cache_written_for_another_config_is_refused(phantom_datamodule):
    datamodule = phantom_datamodule()
    datamodule.prepare_data()
    other = phantom_datamodule(num_train=6)
    os.replace(datamodule.cache_path, other.cache_path)
    with pytest.raises(CacheError, match="another data/physics configuration"):
        other.prepare_data()


def test_nan_in_the_data_is_refused_before_training(phantom_datamodule, monkeypatch):
    datamodule = phantom_datamodule()
    clean = datamodule.images.load

    def with_nan(keys):
        images = clean(keys)
        if len(keys) > 2:
            images[2, 0, 5, 5] = float("nan")
        return images

    monkeypatch.setattr(datamodule.images, "load", with_nan)
    with pytest.raises(ValueError, match=r"train images contain NaN/Inf .* first index 2"):
        datamodule.prepare_data()


def test_self_supervised_training_batches_carry_no_ground_truth(phantom_datamodule):
    datamodule = phantom_datamodule(train_ground_truth=False)
    datamodule.prepare_data()
    datamodule.setup()
    for batch in datamodule.train_dataloader():
        assert batch.x is None
        assert batch.y.shape == (4, 2, 32, 32) and batch.mask.shape == (4, 1, 32, 32)
    assert all(
        next(iter(loader())).x is not None
        for loader in (datamodule.val_dataloader, datamodule.test_dataloader)
    )
    supervised = phantom_datamodule(train_ground_truth=True)
    supervised.setup()
    assert next(iter(supervised.train_dataloader())).x is not None


def test_workers_open_their_own_file(phantom_datamodule):
    datamodule = phantom_datamodule(num_workers=2)
    datamodule.prepare_data()
    datamodule.setup()
    dataset = datamodule.datasets["train"]
    dataset[0]  # opens a handle in this process ...
    assert dataset.__getstate__()["_file"] is None  # ... which is never sent to a worker
    indices = sorted(i for batch in datamodule.train_dataloader() for i in batch.index.tolist())
    assert indices == list(range(8))


def test_multicoil_cache_holds_the_shared_maps_and_serves_them(tmp_path):
    from ssmri.data.datamodule import MRIDataModule
    from ssmri.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps

    physics = MultiCoilMRI(32, 4, coils=3)
    datamodule = MRIDataModule(
        PhantomImages(32), physics, 32, num_train=4, num_val=2, num_test=2, batch_size=2, cache_dir=tmp_path
    )
    datamodule.prepare_data()
    datamodule.setup()
    assert "coils" in datamodule.cache_spec()["physics"]
    assert "coils" not in MRIDataModule(PhantomImages(32), SingleCoilMRI(32, 4), 32).cache_spec()["physics"]
    with h5py.File(datamodule.cache_path, "r") as file:
        assert file["val/maps"].shape == (3, 2, 32, 32)  # shared by every sample: stored once
    batch = next(iter(datamodule.val_dataloader()))
    assert batch.y.shape == (2, 3, 2, 32, 32) and batch.maps.shape == (2, 3, 2, 32, 32)
    torch.testing.assert_close(batch.maps[0], birdcage_maps(3, 32))
    # The stored measurements are the multi-coil physics applied to the stored images.
    torch.testing.assert_close(batch.y, physics.measure(batch.x, batch.acq), atol=1e-6, rtol=1e-5)
