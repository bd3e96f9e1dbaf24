"""The measurement cache: chunk-independent streaming build, checksums, mask checks, stale temporaries."""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssmri.data import CacheError, KspaceDataset, collate
from ssmri.data.cache import CacheChunk, check_cache, remove_stale_temporaries, write_cache
from ssmri.data.sources import SPLITS


def read_all(path) -> dict:
    with h5py.File(path) as file:
        return {f"{s}/{k}": file[s][k][()] for s in SPLITS for k in file[s]}


def test_cache_does_not_depend_on_the_chunk_size(phantom_datamodule, tmp_path):
    caches = []
    for chunk_size in (3, 64):
        datamodule = phantom_datamodule(chunk_size=chunk_size, cache_dir=tmp_path / str(chunk_size))
        datamodule.physics.noise_std = 0.05  # noise too must come from per-sample streams
        datamodule.prepare_data()
        caches.append(read_all(datamodule.cache_path))
    assert caches[0].keys() == caches[1].keys()
    for key in caches[0]:
        np.testing.assert_array_equal(caches[0][key], caches[1][key], err_msg=key)


def flip_byte(path, dataset: str, chunk: int = 0) -> None:
    """Flip one byte inside a stored chunk of ``dataset``, on disk."""
    with h5py.File(path) as file:
        info = file[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as handle:
        handle.seek(info.byte_offset + info.size // 2)
        value = handle.read(1)[0]
        handle.seek(info.byte_offset + info.size // 2)
        handle.write(bytes([value ^ 0x10]))


@pytest.mark.parametrize("dataset", ["train/target", "val/mask", "test/kspace"])
def test_a_flipped_bit_is_an_error_naming_the_file_and_the_fix(phantom_datamodule, dataset):
    datamodule = phantom_datamodule()
    datamodule.prepare_data()
    path = datamodule.cache_path
    flip_byte(path, dataset)
    with pytest.raises(
        CacheError,
        match=rf"cache {path} is corrupted: /{dataset} fails its checksum.*"
        r"rebuild_cache=true",
    ):
        phantom_datamodule().prepare_data()
    split = dataset.split("/")[0]
    with pytest.raises(CacheError, match="fails its checksum"):
        KspaceDataset(path, split, with_target=True)[0]  # a read in training is checked too
    phantom_datamodule(rebuild_cache=True).prepare_data()  # the documented fix works
    phantom_datamodule().setup()


def small_chunks(mask_value: int = 1, shared_maps: bool = False) -> dict:
    chunks = {}
    for split in SPLITS:
        mask = torch.zeros(2, 4, dtype=torch.uint8)
        mask[:, 1] = mask_value
        maps = torch.randn(3, 2, 4, 4) if shared_maps else None
        kspace = torch.randn(2, 3, 2, 4, 4) if shared_maps else torch.randn(2, 2, 4, 4)
        chunks[split] = [CacheChunk(kspace, mask, torch.randn(2, 2, 4, 4), maps)]
    return chunks


def test_masks_must_be_binary_cartesian_rows(tmp_path):
    path = write_cache(tmp_path / "bad.h5", {"a": 1}, small_chunks(mask_value=2), dict.fromkeys(SPLITS, 2))
    with pytest.raises(CacheError, match="not binary Cartesian column masks"):
        check_cache(path, {"a": 1})
    with pytest.raises(CacheError, match=r"train/mask\[0\]"):
        KspaceDataset(path, "train", with_target=False)[0]
    empty = write_cache(tmp_path / "empty.h5", {"a": 1}, small_chunks(mask_value=0), dict.fromkeys(SPLITS, 2))
    with pytest.raises(CacheError, match="at least one column"):
        check_cache(empty, {"a": 1})


def test_shared_maps_are_stored_once_and_served_with_every_sample(tmp_path):
    chunks = small_chunks(shared_maps=True)
    path = write_cache(tmp_path / "mc.h5", {"a": 1}, chunks, dict.fromkeys(SPLITS, 2))
    check_cache(path, {"a": 1})
    with h5py.File(path) as file:
        assert file["val/maps"].shape == (3, 2, 4, 4) and file["val/mask"].shape == (2, 4)
    batch = collate([KspaceDataset(path, "val", with_target=False)[i] for i in range(2)])
    torch.testing.assert_close(batch.maps, chunks["val"][0].maps.expand(2, -1, -1, -1, -1))
    assert batch.mask.shape == (2, 1, 4, 4) and batch.mask[:, 0, :, 1].eq(1).all()


def test_stale_temporaries_are_told_apart_by_the_writer_lock(phantom_datamodule):
    datamodule = phantom_datamodule()
    folder = datamodule.cache_dir
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "killed": folder / ".phantom-0123456789abcdef.h5.4194304.0badc0de.tmp",
        "held": folder / f".phantom-0123456789abcdef.h5.{os.getpid()}.0badc0de.tmp",
        "just_created": folder / ".phantom-fedcba9876543210.h5.4194304.12345678.tmp",
        "not_ours": folder / "notes.h5.tmp",
    }
    for name, path in files.items():
        path.write_bytes(b"" if name == "just_created" else b"partial")
    with open(files["held"], "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # as a live build holds its temporary
        datamodule.prepare_data()
    assert not files["killed"].exists()  # at once: no waiting for it to age
    assert all(files[name].exists() for name in ("held", "just_created", "not_ours"))


SLOW_WRITER = """
import sys, time
import torch
from ssmri.data.cache import CacheChunk, write_cache
def chunks():
    yield CacheChunk(torch.zeros(1, 2, 4, 4), torch.ones(1, 4), torch.zeros(1, 2, 4, 4))
    print("writing", flush=True)
    time.sleep(120)
write_cache(sys.argv[1], {"a": 1}, {"train": chunks()}, {"train": 2})
"""


def test_a_killed_build_leaves_nothing_a_live_one_is_never_touched(tmp_path):
    root = Path(__file__).resolve().parents[1]
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(tmp_path / "cache.h5")],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        (temporary,) = tmp_path.glob(".cache.h5.*.tmp")
        assert remove_stale_temporaries(tmp_path) == [] and temporary.exists()  # alive: kept
    finally:
        writer.kill()
        writer.wait()
    assert remove_stale_temporaries(tmp_path) == [temporary] and not temporary.exists()


PEAK_RSS = """
import resource, sys
from ssmri.data import MRIDataModule, PhantomImages
from ssmri.physics import SingleCoilMRI
count, folder = int(sys.argv[1]), sys.argv[2]
MRIDataModule(PhantomImages(128), SingleCoilMRI(128, 4), 128, num_train=count, num_val=2, num_test=2,
              cache_dir=folder, chunk_size=32).prepare_data()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_building_memory_does_not_grow_with_the_number_of_slices(tmp_path):
    def peak_kib(count: int) -> int:
        folder = tmp_path / str(count)
        root = Path(__file__).resolve().parents[1]  # this checkout's ssmri, not an installed one
        result = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, str(count), str(folder)],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
        return int(result.stdout.split()[-1])

    small, large = peak_kib(64), peak_kib(1024)
    # 960 more slices hold 960 * 4 * 128 * 128 * 4 B = 240 MiB of arrays: none of it may stay.
    assert large - small < 40 * 1024, (small, large)
