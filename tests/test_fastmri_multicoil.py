"""Raw multi-coil fastMRI: the real-k-space path against NumPy, ESPIRiT maps, the cache and bad files."""

import json

import h5py
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ssmri.data import FastMRIMultiCoilFiles, MRIDataModule
from ssmri.errors import DataError
from ssmri.physics import SingleCoilMRI
from tests.helpers.config import compose_only
from tests.helpers.fastmri_files import write_fastmri_multicoil_volume

SIZE = 24


def numpy_kspace(raw: np.ndarray, size: int) -> np.ndarray:
    """Readout oversampling removed (1-D inverse FFT along H, central half, FFT back), central crop."""
    shift, unshift = np.fft.fftshift, np.fft.ifftshift
    lines = shift(np.fft.ifft(unshift(raw, axes=-2), axis=-2, norm="ortho"), axes=-2)
    height = raw.shape[-2]
    lines = lines[..., height // 4 : height // 4 + height // 2, :]
    kspace = shift(np.fft.fft(unshift(lines, axes=-2), axis=-2, norm="ortho"), axes=-2)
    top, left = (kspace.shape[-2] - size) // 2, (kspace.shape[-1] - size) // 2
    return kspace[..., top : top + size, left : left + size]


def numpy_ifft2c(kspace: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), norm="ortho"), axes=axes)


def as_complex(channels: torch.Tensor) -> np.ndarray:
    array = channels.double().numpy()
    return array[..., 0, :, :] + 1j * array[..., 1, :, :]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("multicoil")
    raw = [write_fastmri_multicoil_volume(root / f"file{i}.h5", slices=1, seed=i) for i in range(3)]
    return root, raw


def source(root, **options) -> FastMRIMultiCoilFiles:
    return FastMRIMultiCoilFiles(str(root), image_size=SIZE, calib_width=12, train_fraction=0.67, **options)


def test_real_kspace_path_matches_numpy_and_maps_explain_the_coils(folder):
    root, raw = folder
    data = source(root).load([(1, 0), (2, 0)])  # runs of two volumes
    assert data.kspace.shape == data.maps.shape == (2, 4, 2, SIZE, SIZE)
    assert data.target.shape == (2, 2, SIZE, SIZE)
    for number in range(2):
        expected = numpy_kspace(raw[1 + number][0].astype(np.complex128), SIZE)
        maps = as_complex(data.maps[number])
        target = (maps.conj() * numpy_ifft2c(expected)).sum(axis=0)  # Sᴴ Fᴴ y
        scale = np.abs(target).max()
        np.testing.assert_allclose(as_complex(data.kspace[number]), expected / scale, atol=2e-5)
        np.testing.assert_allclose(as_complex(data.target[number]), target / scale, atol=2e-5)
        # ESPIRiT: Σ|S_c|² = 1 on the object, and the coil images are S_c x there.
        rss = np.sqrt((np.abs(maps) ** 2).sum(axis=0))
        support = rss > 0.5
        assert support.mean() > 0.4
        np.testing.assert_allclose(rss[support], 1, atol=1e-3)
        coil_images = numpy_ifft2c(expected / scale)
        error = np.abs(coil_images - maps * (target / scale))[:, support]
        assert np.linalg.norm(error) < 0.05 * np.linalg.norm(coil_images[:, support])


def test_split_by_volume_and_cache_end_to_end(folder, tmp_path):
    root, _ = folder
    images = source(root)
    assert images.keys("train", None) == [(0, 0), (1, 0)]
    assert images.keys("test", None) == images.keys("val", None) == [(2, 0)]
    datamodule = MRIDataModule(
        images, SingleCoilMRI(SIZE, 4), SIZE, batch_size=2, cache_dir=tmp_path, chunk_size=3
    )
    datamodule.prepare_data()
    datamodule.setup()
    with h5py.File(datamodule.cache_path) as file:
        assert file["train/kspace"].shape == file["train/maps"].shape == (2, 4, 2, SIZE, SIZE)
        assert file["train/mask"].shape == (2, SIZE)
    batch = next(iter(datamodule.test_dataloader()))
    full = images.load(images.keys("test", None))
    assert batch.y.shape == batch.maps.shape == (1, 4, 2, SIZE, SIZE)
    assert batch.mask.shape == (1, 1, SIZE, SIZE) and batch.x is not None
    # Retrospective: the measured k-space, masked by each sample's own mask (shared by its coils).
    torch.testing.assert_close(batch.y, batch.mask[:, :, None] * full.kspace)
    torch.testing.assert_close(batch.maps, full.maps)
    torch.testing.assert_close(batch.x, full.target)
    assert 0.2 < batch.mask.mean() < 0.3


def test_bad_files_name_the_file_and_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.images.root"):
        FastMRIMultiCoilFiles(str(tmp_path / "missing"))
    cases = {
        "nokspace.h5": ({"reconstruction_rss": np.zeros((2, 8, 8), np.float32)}, "no 'kspace' dataset"),
        "singlecoil.h5": ({"kspace": np.zeros((2, 64, 40), np.complex64)}, "with a coil axis"),
        "real.h5": ({"kspace": np.zeros((2, 4, 64, 40), np.float32)}, "expected complex"),
        "small.h5": ({"kspace": np.zeros((2, 4, 32, 40), np.complex64)}, "smaller than data.image_size"),
    }
    for name, (datasets, message) in cases.items():
        folder = tmp_path / name.removesuffix(".h5")
        folder.mkdir()
        write_fastmri_multicoil_volume(folder / "a.h5")
        with h5py.File(folder / name, "w") as file:
            for key, value in datasets.items():
                file[key] = value
        with pytest.raises(ValueError, match=rf"{name}: .*{message}"):
            source(folder).keys("train", None)
    (tmp_path / "junk").mkdir()
    write_fastmri_multicoil_volume(tmp_path / "junk" / "a.h5")
    (tmp_path / "junk" / "b.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"b.h5 is not a readable HDF5 file"):
        source(tmp_path / "junk").keys("train", None)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("nan", r"'kspace' holds 1 NaN/Inf values; the file is damaged"),
        ("inf", r"'kspace' holds 1 NaN/Inf values; the file is damaged"),
        ("zero", r"'kspace' is all zero \(no signal"),
    ],
)
def test_damaged_or_empty_kspace_is_refused_naming_file_and_slice(tmp_path, damage, message):
    for number in range(3):
        kspace = write_fastmri_multicoil_volume(tmp_path / f"file{number}.h5", slices=2, seed=number)
    # The centre of k-space, where ESPIRiT calibrates (its SVD fails on NaN), of slice 1.
    kspace[1, 0, 32, 20] = {"nan": np.nan, "inf": np.inf, "zero": 0}[damage]
    if damage == "zero":
        kspace[1] = 0
    with h5py.File(tmp_path / "file2.h5", "r+") as file:
        file["kspace"][...] = kspace
    images = source(tmp_path)
    assert images.load([(2, 0)]).target.isfinite().all()  # the intact slice of that file still loads
    with pytest.raises(DataError, match=rf"file2\.h5 slice 1: {message}") as raised:
        images.load(images.keys("test", None))
    assert "\n" not in str(raised.value)


def test_a_splits_file_chooses_exactly_its_volumes(folder, tmp_path):
    root, _ = folder
    first = MRIDataModule(source(root), SingleCoilMRI(SIZE, 4), SIZE, cache_dir=tmp_path / "a")
    record = first.splits_record()
    assert [s["file"] for s in record["test"]] == ["file2.h5"]
    (file0, file1), file2 = record["train"], record["test"][0]
    record.update(train=[file2], val=[file1], test=[file0])  # every split another volume
    (tmp_path / "splits.json").write_text(json.dumps(record))
    cfg = compose_only(
        [
            "data=fastmri_multicoil",
            f"data.images.root={root}",
            f"data.image_size={SIZE}",
            "data.images.calib_width=12",
            "data.images.train_fraction=0.67",
            f"data.splits_file={tmp_path / 'splits.json'}",
            f"data.cache_dir={tmp_path / 'b'}",
        ]
    )
    chosen = instantiate(cfg.data, physics=SingleCoilMRI(SIZE, 4))
    chosen.prepare_data()
    chosen.setup()
    images = source(root)
    assert chosen.split_sizes() == {"train": 1, "val": 1, "test": 1}
    torch.testing.assert_close(next(iter(chosen.test_dataloader())).x, images.load([(0, 0)]).target)
    torch.testing.assert_close(next(iter(chosen.val_dataloader())).x, images.load([(1, 0)]).target)
    assert [s["file"] for s in chosen.splits_record()["train"]] == ["file2.h5"]
