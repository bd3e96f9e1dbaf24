"""Console entry points (``ssmri-train``, ``ssmri-eval``, ``train.py``, ``eval.py``)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


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


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def train_main(cfg: DictConfig) -> float | None:
    from ssmri.run import train

    try:
        metrics = train(cfg, method=_method())
    finally:
        _close_wandb()
    return metrics.get(cfg.get("optimized_metric", "test/psnr"))


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def eval_main(cfg: DictConfig) -> None:
    from ssmri.run import evaluate

    try:
        evaluate(cfg, method=_method())
    finally:
        _close_wandb()
