"""One training job from a composed config: build, fit, test, write the run's outputs."""

import time
from contextlib import nullcontext
from pathlib import Path

import hydra
import lightning as L
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from ssmri.checkpoints.io import AtomicCheckpointIO
from ssmri.checkpoints.legacy_targets import upgrade_target, upgrade_targets
from ssmri.checkpoints.load import MISSING, check_weights_fit, file_problem, load_checkpoint
from ssmri.checkpoints.resume import ApplyOptimizerSettings, check_resume, recorded_config
from ssmri.checkpoints.trusted_targets import check_checkpoint
from ssmri.errors import CheckpointError
from ssmri.lit.csv_history import kept_history, logged_batches, quiet_deletion_warning, restore_history
from ssmri.lit.module import ReconstructionModule
from ssmri.lit.selection_checkpoints import SelectionCheckpoints
from ssmri.runner.preflight import check_memory, check_run_folders
from ssmri.runner.testing import test_and_report, test_picks
from ssmri.runner.validation import check_config


def instantiate(node, **kwargs):
    """``hydra.utils.instantiate`` that raises our own clear error, not Hydra's wrapper."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, (ValueError, FileNotFoundError, RuntimeError, TypeError)):
            raise cause from None
        raise


def upgrade_config_targets(node: DictConfig | ListConfig) -> None:
    """Map, in place, every ``_target_`` of a composed config that an older layout wrote.

    A run folder's own record (``--config-dir <run>/.hydra --config-name config``, as ``make
    robustness`` evaluates it) names its callbacks and selection rule where they lived when it
    ran (:data:`ssmri.checkpoints.legacy_targets.LEGACY_TARGETS`). Interpolations are left as they are:
    the node they point at is upgraded where it lives.
    """
    for key in node.keys() if isinstance(node, DictConfig) else range(len(node)):
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, (DictConfig, ListConfig)):
            upgrade_config_targets(value)
        elif key == "_target_" and isinstance(value, str) and upgrade_target(value) != value:
            node[key] = upgrade_target(value)


def build(cfg: DictConfig, method: str = "run"):
    """Instantiate physics, loss, data, model and the LightningModule from ``cfg``."""
    physics = instantiate(cfg.physics)
    loss = instantiate(cfg.loss)
    datamodule = instantiate(cfg.data, physics=physics, train_ground_truth=loss.needs_ground_truth)
    model = instantiate(cfg.model)
    module = instantiate(cfg.module, model=model, loss=loss, physics=physics)
    # Saved in every checkpoint: what the weights are and how the method reconstructs, so that
    # eval.py rebuilds the same network and inference rule whatever data and physics it is given.
    module.save_hyperparameters(
        {
            "method": method,
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),
            "seed": cfg.seed,
            # What a resume must agree with (ssmri.checkpoints.resume), as plain containers.
            "config": recorded_config(cfg),
        },
        logger=False,
    )
    return module, datamodule


def build_trainer(cfg: DictConfig, output_dir: Path, extra_callbacks=()) -> L.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    return instantiate(
        cfg.trainer,
        callbacks=[*callbacks, *extra_callbacks],
        logger=loggers or False,
        default_root_dir=str(output_dir),
        plugins=trainer_plugins(cfg),
    )


def trainer_plugins(cfg: DictConfig) -> list:
    """The trainer's plugins plus :class:`AtomicCheckpointIO`: checkpoints written atomically
    beside their destination and read back as data only (train, eval and DDP alike)."""
    configured = cfg.trainer.get("plugins") or []
    plugins = [instantiate(p) for p in (configured if isinstance(configured, list) else [configured])]
    return [*plugins, AtomicCheckpointIO()]


def resume_path(cfg: DictConfig, output_dir: Path) -> str | None:
    """``ckpt_path``: a checkpoint file, ``last`` (this run directory's last.ckpt) or None."""
    requested = cfg.get("ckpt_path")
    if requested is None:
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if requested == "last" else Path(requested)
    problem = file_problem(path)
    if problem == MISSING:
        raise FileNotFoundError(
            f"ckpt_path={requested!r}: no checkpoint at {path}; pass an existing .ckpt file, or "
            f"ckpt_path=last together with hydra.run.dir=<the run directory to resume>"
        )
    if problem is not None:  # a directory or a link loop is not "missing": say what it is
        raise CheckpointError(f"ckpt_path={requested!r}: {path} {problem}")
    return str(path.expanduser())


def check_selection_has_truth(cfg: DictConfig, datamodule) -> None:
    """Refuse a selection rule that reads ground truth on data that have none."""
    rule = OmegaConf.select(cfg, "selection.rule")
    if rule == "val_psnr" and getattr(getattr(datamodule, "images", None), "shares_splits", False):
        raise ValueError(
            "selection=val_psnr with data.images.split=scan picks weights by the ground truth of the "
            "training slices themselves (val is train); choose selection=val_loss or selection=last"
        )
    if rule == "val_psnr" and not getattr(datamodule, "ground_truth", True):
        raise ValueError(
            f"selection=val_psnr reads validation ground truth, which {type(datamodule.images).__name__} "
            f"(acquired scans) does not have; choose selection=val_loss (the method's own objective) "
            f"or selection=last"
        )


def train(cfg: DictConfig, method: str = "run") -> dict:
    """Fit with ``cfg``, test the best checkpoint, write the outputs; returns the metrics."""
    upgrade_config_targets(cfg)
    check_config(cfg)
    check_memory(cfg)
    output_dir = Path(cfg.paths.output_dir)
    checkpoint_path = resume_path(cfg, output_dir)
    changes, batches = [], 0
    if checkpoint_path is not None:
        checkpoint = load_checkpoint(checkpoint_path)
        changes = check_resume(cfg, checkpoint, checkpoint_path)
        batches = logged_batches(checkpoint)
    L.seed_everything(cfg.seed, workers=True)
    module, datamodule = build(cfg, method)
    check_selection_has_truth(cfg, datamodule)
    if checkpoint_path is not None:
        check_weights_fit(module, checkpoint, checkpoint_path)
        del checkpoint
    trainer = build_trainer(cfg, output_dir, [ApplyOptimizerSettings()] if changes else [])
    check_run_folders(cfg, module, datamodule, trainer, output_dir)
    # Read before the loggers open their folders: Lightning's CSV logger deletes its old log.
    histories = kept_history(trainer.loggers) if checkpoint_path is not None else []
    with quiet_deletion_warning() if histories else nullcontext():
        for logger in trainer.loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        restore_history(trainer.loggers, histories, batches)

    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint_path, weights_only=True)
    train_seconds = time.perf_counter() - started

    # Each checkpoint is named explicitly: with no path, Lightning on SLURM would load its
    # (older) hpc checkpoint instead of the weights in memory.
    selector = next((c for c in trainer.callbacks if isinstance(c, SelectionCheckpoints)), None)
    picks = selector.picks(trainer) if selector is not None else []
    record = {
        "loss": method,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "train_seconds": round(train_seconds, 2),
        "seed": cfg.seed,
        # The SSIBench scenario (conf/scenario/) the run belongs to: the sweep report compares
        # with its published leaderboard.
        "scenario": OmegaConf.select(cfg, "scenario.name"),
    }
    return test_picks(trainer, module, datamodule, output_dir, picks, record)


def load_trained(cfg: DictConfig, method: str) -> tuple[ReconstructionModule, object, Path, str]:
    """The checkpoint ``cfg.ckpt_path`` rebuilt for inference (eval.py, predict.py).

    Its network, loss (whose inference rule is used) and seed come from the checkpoint, checked
    before anything is built; the data and physics from ``cfg``. Returns the module with the
    checkpoint's weights, the data module, the checkpoint's path and its method.
    """
    upgrade_config_targets(cfg)
    if not cfg.get("ckpt_path"):
        raise ValueError("no checkpoint given: pass ckpt_path=<path/to/best.ckpt>")
    checkpoint_path = Path(cfg.ckpt_path).expanduser()
    problem = file_problem(checkpoint_path)
    if problem is not None:
        error = FileNotFoundError if problem == MISSING else CheckpointError
        raise error(f"ckpt_path={str(checkpoint_path)!r} {problem}")
    state = load_checkpoint(checkpoint_path)
    check_checkpoint(state, checkpoint_path)  # names only ssmri classes, before anything is built
    trained = state.get("hyper_parameters", {})
    if "model" in trained and "loss" in trained:
        with open_dict(cfg):
            cfg.model = OmegaConf.create(upgrade_targets(trained["model"]))
            cfg.loss = OmegaConf.create(upgrade_targets(trained["loss"]))
            cfg.seed = trained.get("seed", cfg.seed)
        method = trained.get("method", method)
    check_config(cfg)
    check_memory(cfg)
    L.seed_everything(cfg.seed, workers=True)
    module, datamodule = build(cfg, method)
    check_weights_fit(module, state, checkpoint_path)
    module.load_state_dict(state["state_dict"])
    return module, datamodule, checkpoint_path, method


def evaluate(cfg: DictConfig, method: str = "eval") -> dict:
    """Test the checkpoint ``cfg.ckpt_path`` under ``cfg``'s data and physics.

    The network, the loss (whose inference rule is used) and the seed of its inference come
    from the checkpoint; the data and physics from ``cfg``, so a model can be tested e.g. at
    another acceleration than it was trained at.
    """
    module, datamodule, checkpoint_path, method = load_trained(cfg, method)
    output_dir = Path(cfg.paths.output_dir)
    trainer = instantiate(
        cfg.trainer,
        logger=False,
        callbacks=[],
        default_root_dir=str(output_dir),
        plugins=trainer_plugins(cfg),
    )
    check_run_folders(cfg, module, datamodule, trainer, output_dir)
    extra = {"loss": method, "checkpoint": str(checkpoint_path), "seed": cfg.seed}
    title = f"{method} (eval), R={module.physics.acceleration:g}"
    return test_and_report(trainer, module, datamodule, output_dir, None, extra, title)
