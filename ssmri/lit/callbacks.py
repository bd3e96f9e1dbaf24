"""Callbacks at the Lightning edge: a clean checkpoint when a run is told to stop."""

import logging
import signal
import threading
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

log = logging.getLogger(__name__)


class CheckpointOnInterrupt(L.Callback):
    """On SIGTERM or SIGINT: finish the current batch, write ``last.ckpt``, exit cleanly.

    Lightning already turns SIGTERM into a stop at the next batch boundary (on every rank);
    this callback routes the first SIGINT (Ctrl-C) through the same path instead of
    interrupting a half-done optimiser step, and writes the checkpoint that
    ``ckpt_path=last`` resumes from. A second SIGINT interrupts at once.

    Args:
        dirpath: folder of the checkpoint (the run's ``checkpoints/``).
        filename: its name; ``last.ckpt`` is what ``ckpt_path=last`` reads.
    """

    def __init__(self, dirpath: str, filename: str = "last.ckpt"):
        self.path = Path(dirpath) / filename
        self._previous_sigint = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._stop_gracefully)

    def _stop_gracefully(self, signum, frame) -> None:
        log.warning("SIGINT: stopping after the current batch (press Ctrl-C again to abort now)")
        signal.signal(signal.SIGINT, self._previous_sigint or signal.default_int_handler)
        signal.raise_signal(signal.SIGTERM)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a failure (e.g. a NaN loss) keeps the last good checkpoint untouched
        if trainer.state.fn != TrainerFn.FITTING:
            return  # a stop while testing: the weights in memory are a tested checkpoint's, not the last
        stopped = f"Stopped by a signal at epoch {trainer.current_epoch}, step {trainer.global_step}"
        before = _identity(self.path)
        try:
            trainer.save_checkpoint(self.path)
            if SLURMEnvironment.detect():
                # A preempted SLURM job is requeued and resumes from Lightning's hpc checkpoint.
                trainer.save_checkpoint(trainer._checkpoint_connector.hpc_save_path(trainer.default_root_dir))
        except Exception as error:  # noqa: BLE001 - the stop goes on; say what was not written
            rank_zero_warn(f"{stopped}; could NOT write {self.path}: {error}")
            return
        # Say "wrote" only for a file that is there (rank 0 writes; the others only report).
        if _identity(self.path) in (None, before):
            rank_zero_warn(f"{stopped}; {self.path} was not written")
            return
        rank_zero_info(
            f"{stopped}; wrote {self.path}. Resume with the same overrides plus ckpt_path=last "
            f"hydra.run.dir={self.path.parent.parent}"
        )


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, modification time) of ``path``: a new write changes it; None if absent."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns
