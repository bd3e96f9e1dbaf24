"""Console entry points: ``ssmri-train``, ``ssmri-eval``, ``ssmri-predict`` and the top-level scripts."""

import logging
import os
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ssmri.errors import is_user_error, one_line
from ssmri.report import write_json
from ssmri.runner.distributed import job_scope

log = logging.getLogger(__name__)


def _method() -> str:
    return HydraConfig.get().runtime.choices.get("loss", "run")


def _close_wandb() -> None:
    # One wandb run per job: close it whatever happened, so multirun jobs never merge.
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()


def _log_each_line_once() -> None:
    """Lightning's package logger gets a console handler of its own when it is imported; under
    Hydra, whose root handlers already write to the console and the job's log file, every
    Lightning message then came out twice. Imports Lightning, so it runs after Hydra's setup."""
    import lightning  # noqa: F401  (adds that handler)

    if logging.getLogger().handlers:
        package_logger = logging.getLogger("lightning")
        for handler in list(package_logger.handlers):
            package_logger.removeHandler(handler)


def _record_failure(cfg: DictConfig, error: BaseException) -> None:
    """In a sweep, a failed job leaves ``failed.json`` (its traceback, and the one-line ``message``
    the sweep table shows) and the other jobs go on."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:
        return  # under SLURM every rank runs the job function; one of them writes
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    failure = {
        "loss": _method(),
        "seed": cfg.get("seed"),
        "error": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "message": f"{type(error).__name__}: {one_line(error).removeprefix('error: ')}",
    }
    write_json(output_dir / "failed.json", failure)
    log.error("job %s failed (%s); the sweep goes on", output_dir.name, error)


def _exit_with_one_line(error: BaseException) -> None:
    """ssmri's own errors end the run as ``error: <message>`` on stderr, exit code 1; anything
    else, or ``HYDRA_FULL_ERROR=1``, keeps its traceback."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or not is_user_error(error):
        raise error
    print(one_line(error), file=sys.stderr, flush=True)
    sys.exit(1)


class WritableOutputFolder(Callback):
    """Hydra callback: the run (or sweep) folder must be writable before Hydra creates it, so a
    bad ``hydra.run.dir`` ends as one ``error:`` line instead of Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config, "hydra.sweep.dir")

    def _check(self, config: DictConfig, key: str) -> None:
        from ssmri.runner.preflight import check_writable

        HydraConfig.instance().set_config(config)  # its run.dir names the loss via ${hydra:...}
        try:
            check_writable(Path(OmegaConf.select(config, key)), key)
        except OSError as error:
            _exit_with_one_line(error)


@hydra.main(version_base="1.3", config_path="pkg://ssmri.conf", config_name="train")
def train_main(cfg: DictConfig) -> float | None:
    _log_each_line_once()
    from ssmri.runner.run import train

    try:
        with job_scope(cfg):
            metrics = train(cfg, method=_method())
    except Exception as error:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            _exit_with_one_line(error)
        _record_failure(cfg, error)
        return None
    finally:
        _close_wandb()
    return metrics.get(cfg.get("optimized_metric", "test/psnr"))


@hydra.main(version_base="1.3", config_path="pkg://ssmri.conf", config_name="eval")
def eval_main(cfg: DictConfig) -> None:
    _log_each_line_once()
    from ssmri.runner.run import evaluate

    try:
        with job_scope(cfg):
            evaluate(cfg, method=_method())
    except Exception as error:
        _exit_with_one_line(error)
    finally:
        _close_wandb()


@hydra.main(version_base="1.3", config_path="pkg://ssmri.conf", config_name="predict")
def predict_main(cfg: DictConfig) -> None:
    _log_each_line_once()
    from ssmri.runner.predict import predict

    try:
        predict(cfg, method=_method())
    except Exception as error:
        _exit_with_one_line(error)
