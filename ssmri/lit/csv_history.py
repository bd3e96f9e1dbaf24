"""A resumed run keeps the CSV log of the run it continues.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when it opens a folder that holds one, so a run
resumed with ``ckpt_path=last`` would log only what came after the checkpoint: the training curve
of every budget ladder and interrupted job would start half-way. :func:`kept_history` reads the
log before the logger opens it, and :func:`restore_history` writes back the rows that the
checkpoint covers (the rows logged after it are logged again by the resumed run).
"""

import csv
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from ssmri.atomic import atomic_write

#: Lightning's warning when the log folder is not empty; after a restore it is not true.
_DELETION_WARNING = r"Experiment logs directory .* exists and is not empty"


@dataclass
class History:
    """The rows of one ``metrics.csv`` and its column order."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]


def logged_batches(checkpoint: dict) -> int:
    """The number of batches a checkpoint had trained on: the ``step`` its next log row carries.

    Lightning logs against this count, not ``global_step``, which counts optimiser steps (two per
    batch for the adversarial methods).
    """
    return int(checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])


def kept_history(loggers) -> list[History]:
    """The existing ``metrics.csv`` of every CSV logger in ``loggers``, read before it is opened."""
    histories = []
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        if path.is_file():
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                histories.append(History(path, list(reader.fieldnames or []), list(reader)))
    return histories


@contextmanager
def quiet_deletion_warning():
    """Silence Lightning's 'previous log files will be deleted' while the history is put back."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DELETION_WARNING)
        yield


@rank_zero_only
def restore_history(loggers, histories: list[History], batches: int) -> None:
    """Write back each history's rows logged before ``batches`` (see :func:`logged_batches`).

    Call after the loggers have opened their folders (``logger.experiment``) and before training:
    the logger then appends to the restored file, and knows its columns so that a new one
    rewrites the header rather than dropping the old rows.
    """
    by_path = {history.path: history for history in histories}
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        history = by_path.get(Path(logger.log_dir) / "metrics.csv")
        if history is None:
            continue
        before = [row for row in history.rows if _step(row, history.path) < batches]
        columns = sorted(history.columns)  # Lightning's order: rows it appends line up
        with atomic_write(history.path) as temporary:
            with open(temporary, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(before)
        logger.experiment.metrics_keys = columns


def _step(row: dict[str, str], path: Path) -> int:
    try:
        return int(float(row["step"]))
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{path}: a row without a readable 'step' ({row.get('step')!r}); the CSV log of the run "
            f"being resumed is damaged. Move it away to resume without its history"
        ) from None
