"""Resuming under the settings a checkpoint was trained with, or knowingly under new ones.

Every checkpoint records its model, loss, physics, data and module (optimiser) configuration
(:func:`recorded_config`). A resume whose overrides change any of them is refused, unless
``resume.allow_changes=true``: then the changes are logged and applied, including the new
optimiser settings, which Lightning would otherwise overwrite with the restored ones.
"""

import logging

import lightning as L
from omegaconf import DictConfig, OmegaConf

from ssmri.checkpoints.trusted_targets import check_checkpoint
from ssmri.errors import ConfigError

log = logging.getLogger(__name__)

RECORDED = ("model", "loss", "physics", "data", "module")
# Where the data lives, how it is loaded and how fast the model runs (memory format, compiling):
# free to change between machines, since none of them changes what is computed.
_FREE = {
    "data.cache_dir",
    "data.num_workers",
    "data.rebuild_cache",
    "data.eval_batch_size",
    "model.channels_last",
    "model.compile",
}


def recorded_config(cfg: DictConfig) -> dict:
    """The parts of ``cfg`` a resume must agree with, as plain containers."""
    return {part: OmegaConf.to_container(cfg[part], resolve=True) for part in RECORDED if part in cfg}


def differences(old, new, key: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs (keys in ``_FREE`` ignored)."""
    if key in _FREE:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for name in sorted(set(old) | set(new), key=str)
            for line in differences(
                old.get(name, "<absent>"), new.get(name, "<absent>"), f"{key}.{name}" if key else str(name)
            )
        ]
    return [] if old == new else [f"{key}: {old!r} -> {new!r}"]


def check_resume(cfg: DictConfig, checkpoint: dict, path: str) -> list[str]:
    """The changes a resume from ``checkpoint`` makes; raises unless they are allowed.

    The checkpoint's recorded configs are checked first (:mod:`ssmri.checkpoints.trusted_targets`): they
    come from a file, and may name only ssmri's own classes.
    """
    check_checkpoint(checkpoint, path)
    recorded = (checkpoint.get("hyper_parameters") or {}).get("config")
    if not isinstance(recorded, dict):
        log.warning("%s records no configuration; resuming without checking for changes", path)
        return []
    changes = differences(recorded, recorded_config(cfg))
    if not changes:
        return []
    if not cfg.get("resume", {}).get("allow_changes", False):
        raise ConfigError(
            f"ckpt_path={path!r} was trained with other settings: {'; '.join(changes)}. Resume "
            f"with the checkpoint's settings (drop those overrides), or pass "
            f"resume.allow_changes=true to continue under the new ones"
        )
    log.warning("resuming with changed settings (resume.allow_changes=true): %s", "; ".join(changes))
    return changes


class ApplyOptimizerSettings(L.Callback):
    """After a resume, sets the restored optimisers' hyperparameters (lr, betas, weight decay,
    ...) to the configured ones; the moments (Adam's state) are kept."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        configured = pl_module.configure_optimizers()
        if isinstance(configured, tuple):
            configured = configured[0]
        configured = configured if isinstance(configured, list) else [configured]
        for restored, fresh in zip(trainer.optimizers, configured):
            for group, new_group in zip(restored.param_groups, fresh.param_groups):
                for name, value in new_group.items():
                    if name != "params":
                        group[name] = value
                if "initial_lr" in group:
                    group["initial_lr"] = new_group["lr"]
        for scheduler_config in trainer.lr_scheduler_configs:
            scheduler = scheduler_config.scheduler
            scheduler.base_lrs = [
                group.get("initial_lr", group["lr"]) for group in scheduler.optimizer.param_groups
            ]
