"""splits.json: every source names its samples, a run writes them, and a later run reuses them."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from ssmri.data import BrainTemplateSlices, FastMRISingleCoilFiles, FastMRISliceTensor, PhantomImages
from ssmri.data.sources import MissingSample
from ssmri.runner.run import build, train
from tests.helpers.config import FAST, compose_config
from tests.helpers.fastmri_files import write_fastmri_volume, write_slice_tensor


def sources(tmp_path):
    write_slice_tensor(tmp_path / "knee.pt", count=20, size=40)
    for i in range(3):
        write_fastmri_volume(tmp_path / f"vol{i}.h5", slices=3, seed=i)
    return {
        "phantom": (PhantomImages(16, seed=3), 3),
        "brain": (BrainTemplateSlices(16), 5),
        "knee": (FastMRISliceTensor(str(tmp_path / "knee.pt"), image_size=16, num_val=2), 2),
        "h5": (FastMRISingleCoilFiles(str(tmp_path), image_size=16, train_fraction=0.67, num_val=1), 1),
    }


@pytest.mark.parametrize("name", ["phantom", "brain", "knee", "h5"])
def test_sample_ids_name_exactly_the_images_of_each_split(tmp_path, name):
    source, count = sources(tmp_path)[name]
    for split in ("train", "val", "test"):
        ids = source.sample_ids(split, count)
        assert len(ids) == count and all("volume" in sample for sample in ids)
        json.dumps(ids)  # plain JSON
        torch.testing.assert_close(source.images_for(ids), source.images(split, count))


@pytest.mark.parametrize(
    "name, missing",
    [
        ("phantom", {"seed": 0, "split": "holdout", "index": 0}),
        ("brain", {"orientation": "axial", "slice": 999}),
        ("knee", {"file": "knee.pt", "slice": 20}),
        ("h5", {"file": "vol9.h5", "slice": 0}),
    ],
)
def test_a_sample_the_source_lacks_is_named(tmp_path, name, missing):
    source = sources(tmp_path)[name][0]
    with pytest.raises(MissingSample, match="does not exist in this data source"):
        source.images_for([missing])


def test_splits_json_round_trip_reuses_exactly_those_samples(tmp_path):
    first = compose_config(
        tmp_path / "a", [*FAST, "trainer.max_epochs=1", "loss=mc", "selection.test_all=false"]
    )
    train(first, method="mc")
    written = json.loads((Path(first.paths.output_dir) / "splits.json").read_text())
    assert written["source"]["source"] == "phantom"
    assert [len(written[s]) for s in ("train", "val", "test")] == [8, 4, 4]
    assert written["test"][0] == {"seed": 0, "split": "test", "index": 0, "volume": "test-0"}

    # A run with other counts and seed, but the splits file: the same samples, same order.
    splits_file = Path(first.paths.output_dir) / "splits.json"
    reused = compose_config(
        tmp_path / "b", [*FAST, "data.num_train=2", "data.seed=5", f"data.splits_file={splits_file}"]
    )
    _, datamodule = build(reused)
    record = datamodule.splits_record()
    assert all(record[s] == written[s] for s in ("train", "val", "test"))
    datamodule.prepare_data()
    _, original = build(first)
    for split in ("train", "val", "test"):
        targets = [torch.cat([chunk.target for chunk in dm.chunks(split)]) for dm in (datamodule, original)]
        torch.testing.assert_close(*targets)


def test_bad_splits_files_fail_clearly(tmp_path):
    def sample(split, index):
        return {"seed": 0, "split": split, "index": index, "volume": f"{split}-{index}"}

    good = {
        "source": {"source": "phantom"},
        "train": [sample("train", 0), sample("train", 1)],
        "val": [sample("val", 0)],
        "test": [sample("test", 0)],
    }
    leaked = {**sample("train", 1), "volume": "relabelled"}  # the same image under another volume
    cases = {
        "missing.json": (None, "does not exist"),
        "brain.json": ({**good, "source": {"source": "brain"}}, "lists samples of the 'brain' source"),
        "partial.json": ({"source": {"source": "phantom"}, "train": []}, "is not a splits file"),
        "empty.json": ({**good, "val": []}, r"lists no samples for \['val'\]"),
        "ghost.json": (
            {**good, "test": [{"seed": 0, "split": "nowhere", "index": 1}]},
            "does not exist in this data source",
        ),
        "leak.json": (
            {**good, "test": [sample("test", 0), leaked]},
            r"puts sample \{.*'split': 'train', 'index': 1.*\} in both 'train' \(train\[1\]\) "
            r"and 'test' \(test\[1\]\); each sample belongs to one split",
        ),
        "val_in_test.json": (
            {**good, "test": [sample("test", 0), sample("val", 0)]},
            r"in both 'val' \(val\[0\]\) and 'test' \(test\[1\]\)",
        ),
        "twice.json": (
            {**good, "val": [sample("val", 0), sample("val", 0)]},
            r"twice in 'val' \(val\[0\] and val\[1\]\)",
        ),
        "string_sample.json": ({**good, "test": ["test-0"]}, r"test\[0\] is 'test-0', not a sample"),
        "string_source.json": ({**good, "source": "phantom"}, r"source is 'phantom', not the mapping"),
        "target.json": (
            {**good, "source": {"source": "phantom", "_target_": "pathlib.Path.touch"}},
            r"holds splits\.json\.source\._target_; a splits file names samples",
        ),
        "binary.json": (b"\xff\xfe\x00", "is not JSON"),
    }
    for name, (content, message) in cases.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        elif content is not None:
            (tmp_path / name).write_text(json.dumps(content))
        cfg = compose_config(tmp_path, [*FAST, f"data.splits_file={tmp_path / name}"])
        with open_dict(cfg):
            cfg.paths.cache_dir = str(tmp_path / "cache")
        with pytest.raises((ValueError, FileNotFoundError), match=message) as raised:
            _, datamodule = build(cfg)
            datamodule.prepare_data()
        assert "\n" not in str(raised.value), name
    (tmp_path / "good.json").write_text(json.dumps(good))  # the refusals above are not the checks' noise
    _, datamodule = build(compose_config(tmp_path, [*FAST, f"data.splits_file={tmp_path / 'good.json'}"]))
    assert datamodule.splits_record()["test"] == good["test"]


def test_validation_on_the_test_split_is_the_one_allowed_overlap():
    """``num_val=0`` (fastMRI sources, the tutorial) validates on the test images: its own
    splits.json must read back; any other sharing, training's above all, is refused."""
    from ssmri.data.splits import check_disjoint

    def sample(split, index):
        return {"file": f"{split}.h5", "slice": index, "volume": split}

    test = [sample("test", 0), sample("test", 1)]
    check_disjoint({"train": [sample("train", 0)], "val": list(test), "test": test}, "data.splits_file")
    with pytest.raises(ValueError, match=r"in both 'train' \(train\[0\]\) and 'val' \(val\[0\]\)"):
        check_disjoint({"train": [test[0]], "val": list(test), "test": test}, "data.splits_file")
    with pytest.raises(ValueError, match="in both 'val'"):
        check_disjoint({"train": [sample("train", 0)], "val": test[:1], "test": test}, "data.splits_file")


def test_a_scan_specific_runs_splits_read_back_and_an_edited_one_is_refused(tmp_path):
    """``data.images.split=scan`` writes the same slices in every split: by design, not a leak."""
    from ssmri.data.splits import read_splits

    class Scan:
        def describe(self):
            return {"source": "ismrmrd", "split": "scan"}

    slices = [
        {"file": "scan.h5", "slice": 0, "volume": "scan"},
        {"file": "scan.h5", "slice": 1, "volume": "scan"},
    ]
    record = {"version": 1, "source": Scan().describe(), "train": slices, "val": slices, "test": slices}
    (tmp_path / "scan.json").write_text(json.dumps(record))
    assert read_splits(tmp_path / "scan.json", Scan())["test"] == slices
    (tmp_path / "edited.json").write_text(json.dumps({**record, "test": slices[:1]}))
    with pytest.raises(ValueError, match="scan-specific run .* train, val and test lists differ"):
        read_splits(tmp_path / "edited.json", Scan())
