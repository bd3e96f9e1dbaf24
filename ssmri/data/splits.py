"""Reproducible splits: ``splits.json`` names every train, val and test sample of a run.

Written by every run; ``data.splits_file=<splits.json>`` makes a later run on the same data
source use exactly those samples (and refuses one it does not have).
"""

import json
from pathlib import Path

from ssmri.checkpoints.trusted_targets import target_keys
from ssmri.data.sources import SPLITS, ImageSource
from ssmri.errors import ConfigError

SPLITS_VERSION = 1


def splits_record(images: ImageSource, ids: dict[str, list[dict]]) -> dict:
    """The content of ``splits.json``: the source's description and each split's sample ids."""
    return {
        "version": SPLITS_VERSION,
        "source": images.describe(),
        **{split: list(ids[split]) for split in SPLITS},
    }


def read_splits(path, images: ImageSource) -> dict[str, list[dict]]:
    """Each split's sample ids from ``path``, checked against ``images``.

    Raises ``FileNotFoundError`` / :class:`~ssmri.errors.ConfigError` naming
    ``data.splits_file`` when the file is missing, is not a splits file (a ``source`` or a
    sample that is not a mapping, a ``_target_`` anywhere: the file is data, never a config to
    build), comes from another kind of source, puts one sample in two splits (or twice in
    one), or names a sample the source does not have (:class:`~ssmri.data.sources.MissingSample`).
    """
    path = Path(str(path)).expanduser()
    key = f"data.splits_file={str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{key} does not exist; pass the splits.json of an earlier run")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{key} is not JSON ({error})") from None
    if not isinstance(record, dict) or any(not isinstance(record.get(s), list) for s in SPLITS):
        raise ConfigError(
            f"{key} is not a splits file: it needs a list of samples for each of {SPLITS} (the "
            f"splits.json every run writes)"
        )
    targets = target_keys(record, "splits.json")
    if targets:
        raise ConfigError(f"{key} holds {targets[0]}; a splits file names samples, never a class to build")
    empty = [split for split in SPLITS if not record[split]]
    if empty:
        raise ConfigError(f"{key} lists no samples for {empty}")
    for split in SPLITS:
        for index, sample in enumerate(record[split]):
            if not isinstance(sample, dict):
                raise ConfigError(
                    f"{key}: {split}[{index}] is {sample!r}, not a sample (a mapping such as "
                    f'{{"file": ..., "slice": ...}} as splits.json records it)'
                )
    source = record.get("source")
    if not isinstance(source, dict):
        raise ConfigError(
            f"{key}: source is {source!r}, not the mapping splits.json records (e.g. "
            f'{{"source": {images.describe()["source"]!r}, ...}})'
        )
    theirs, ours = source.get("source"), images.describe()["source"]
    if theirs != ours:
        raise ConfigError(
            f"{key} lists samples of the {theirs!r} source, but this run reads {ours!r}; choose "
            f"the data=... option that run used"
        )
    if source.get("split") == "scan":  # scan-specific training: every split is every slice, by design
        if not record["train"] == record["val"] == record["test"]:
            raise ConfigError(
                f"{key} comes from a scan-specific run (data.images.split=scan), whose splits are all "
                f"the same slices, but its train, val and test lists differ; the file was edited"
            )
    else:
        check_disjoint(record, key)
    # Each sample is checked when its image is loaded (ImageSource.images_for), before training.
    return {split: record[split] for split in SPLITS}


def sample_identity(sample: dict) -> str:
    """What names the image of ``sample``: everything but its ``volume`` (a grouping label)."""
    return json.dumps({k: v for k, v in sample.items() if k != "volume"}, sort_keys=True, default=str)


def check_disjoint(record: dict, key: str) -> None:
    """Refuse a sample listed in two splits (training images scored as test), or twice in one.

    One overlap is a design, not an accident: a validation split that is exactly the test split,
    what the fastMRI sources write with ``num_val=0`` (select on the test images, as the tutorial
    does). Training never shares an image with either.
    """
    first_seen: dict[str, tuple[str, int]] = {}
    val_is_test = [sample_identity(s) for s in record["val"]] == [sample_identity(s) for s in record["test"]]
    for split in SPLITS:
        if split == "test" and val_is_test:
            continue
        for index, sample in enumerate(record[split]):
            identity = sample_identity(sample)
            if identity not in first_seen:
                first_seen[identity] = (split, index)
                continue
            other, other_index = first_seen[identity]
            where = (
                f"twice in {split!r} ({split}[{other_index}] and {split}[{index}])"
                if other == split
                else f"in both {other!r} ({other}[{other_index}]) and {split!r} ({split}[{index}])"
            )
            raise ConfigError(
                f"{key} puts sample {sample} {where}; each sample belongs to one split, once "
                f"(else training images are scored as test); remove the repeat"
            )
