"""Reproducible splits: ``splits.json`` names every train, val and test sample of a run.

Written by every run; ``data.splits_file=<splits.json>`` makes a later run on the same data
source use exactly those samples (and refuses one it does not have).
"""

import json
from pathlib import Path

from ssmri.data.sources import SPLITS, ImageSource

SPLITS_VERSION = 1


def splits_record(images: ImageSource, ids: dict[str, list[dict]]) -> dict:
    """The content of ``splits.json``: the source's description and each split's sample ids."""
    return {"version": SPLITS_VERSION, "source": images.describe(),
            **{split: list(ids[split]) for split in SPLITS}}


def read_splits(path, images: ImageSource) -> dict[str, list[dict]]:
    """Each split's sample ids from ``path``, checked against ``images``.

    Raises ``FileNotFoundError`` / ``ValueError`` naming ``data.splits_file`` when the file is
    missing, is not a splits file, comes from another kind of source, or names a sample the
    source does not have (:class:`~ssmri.data.sources.MissingSample`).
    """
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"data.splits_file={str(path)!r} does not exist; pass the splits.json of an earlier run"
        )
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"data.splits_file={str(path)!r} is not JSON ({error})") from error
    if not isinstance(record, dict) or any(not isinstance(record.get(s), list) for s in SPLITS):
        raise ValueError(
            f"data.splits_file={str(path)!r} is not a splits file: it needs a list of samples "
            f"for each of {SPLITS} (the splits.json every run writes)"
        )
    empty = [split for split in SPLITS if not record[split]]
    if empty:
        raise ValueError(f"data.splits_file={str(path)!r} lists no samples for {empty}")
    theirs = record.get("source", {}).get("source")
    ours = images.describe()["source"]
    if theirs != ours:
        raise ValueError(
            f"data.splits_file={str(path)!r} lists samples of the {theirs!r} source, but this run "
            f"reads {ours!r}; choose the data=... option that run used"
        )
    # Each sample is checked when its image is loaded (ImageSource.images_for), before training.
    return {split: record[split] for split in SPLITS}
