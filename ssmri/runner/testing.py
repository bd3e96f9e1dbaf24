"""The test at the end of a run: each selection rule's pick tested once, the outputs written.

:func:`test_picks` tests the weights every selection rule picked (a set of weights picked by
several rules is tested once) and writes the run's ``metrics.json``, per-image table and sample
figure through :func:`test_and_report`, which ``eval.py`` uses too.
"""

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ssmri.evaluation.metrics import check_metrics
from ssmri.lit.module import ReconstructionModule
from ssmri.lit.selection_checkpoints import Pick
from ssmri.report import save_samples, save_tensors, write_json, write_per_image

log = logging.getLogger(__name__)


def test_picks(
    trainer: L.Trainer,
    module: ReconstructionModule,
    datamodule,
    output_dir: Path,
    picks: list[Pick],
    record: dict,
) -> dict:
    """Test each selection rule's pick, the configured rule's (``picks[0]``) last; ``record`` is
    what the run adds to ``metrics.json`` (method, budget, seed, scenario). No picks (no
    selection callback): the weights in memory are tested."""
    # Rules that picked one epoch picked one set of weights, which is tested once.
    tested: dict[int | str | None, dict] = {}
    same_as_configured = []
    rules = {}
    for pick in picks[1:]:
        if pick.epoch is not None and pick.epoch == picks[0].epoch:
            same_as_configured.append(pick.choice.rule)
            rules[pick.choice.rule] = pick.as_dict()  # its test numbers are the configured rule's
            continue
        weights = pick.epoch if pick.epoch is not None else pick.path  # no epoch: known by its file
        if weights not in tested:
            tested[weights] = test_metrics(trainer, module, datamodule, pick.path)
        rules[pick.choice.rule] = {**pick.as_dict(), **tested[weights]}
    if picks:
        selection = picks[0].as_dict()
    else:
        selection = {
            "rule": "last",
            "used": "last",
            "label": "last",
            "oracle": False,
            "reads_ground_truth": False,
            "epoch": trainer.current_epoch,
            "note": "no selection callback (callbacks=none): the final weights are tested",
        }
    for entry in (selection, *rules.values()):
        log.info(
            "selection %s: epoch %s (%s)%s",
            entry["rule"],
            entry["epoch"],
            entry["label"],
            f"; {entry['note']}" if entry["note"] else "",
        )
    extra = {
        **record,
        "tested_checkpoint": selection.get("checkpoint", "weights at the end of training"),
        "best_checkpoint": selection.get("checkpoint", ""),  # the selection rule's pick
        "selection": selection,
    }
    title = f"{record['loss']}, R={module.physics.acceleration:g}, selection {selection['label']}"
    metrics = test_and_report(
        trainer,
        module,
        datamodule,
        output_dir,
        picks[0].path if picks else None,
        extra,
        title,
        rules=rules,
        same_as_configured=same_as_configured,
    )
    if not metrics["ground_truth"]:
        log.info(
            "no ground truth: test objective %.5g; outputs in %s",
            metrics.get("test/loss", float("nan")),
            output_dir,
        )
        return metrics
    log.info(
        "test PSNR %.3f dB (zero-filled %.3f dB), SSIM %.4f; outputs in %s",
        metrics.get("test/psnr", float("nan")),
        metrics.get("test/psnr_zero_filled", float("nan")),
        metrics.get("test/ssim", float("nan")),
        output_dir,
    )
    return metrics


def test_and_report(
    trainer: L.Trainer,
    module: ReconstructionModule,
    datamodule,
    output_dir: Path,
    ckpt_path: str | None,
    extra: dict,
    title: str,
    rules: dict | None = None,
    same_as_configured: list[str] = (),
) -> dict:
    """Test, then write ``metrics.json``, ``test_per_image.csv`` and ``samples.png``.

    ``rules`` are the other selection rules' picks with their test numbers; those named in
    ``same_as_configured`` picked the configured rule's epoch and take its numbers.
    """
    metrics = {**test_metrics(trainer, module, datamodule, ckpt_path), **extra}
    results = module.test_results
    metrics["metrics_convention"] = module.metric_convention
    # Acquired scans: no metric against a reference exists; test/loss is the method's own objective.
    metrics["ground_truth"] = bool(getattr(datamodule, "ground_truth", True))
    if getattr(getattr(datamodule, "images", None), "shares_splits", False):  # data.images.split=scan
        metrics["splits_share_data"] = True  # test numbers are on the training slices
    metrics["num_test_images"] = len(results["index"])
    metrics["num_params"] = sum(p.numel() for p in module.model.parameters())
    if rules is not None:  # every rule's test numbers, the configured one's included
        configured = {k: v for k, v in metrics.items() if k.startswith("test/")}
        rules = {r: {**v, **configured} if r in same_as_configured else v for r, v in rules.items()}
        metrics["rules"] = {metrics["selection"]["rule"]: {**metrics["selection"], **configured}, **rules}
    check_metrics(metrics)
    if trainer.is_global_zero:
        write_per_image(output_dir / "test_per_image.csv", results)
        if "x" in module.test_samples:  # the figure compares with ground truth
            save_samples(module.test_samples, output_dir / "samples.png", title=title)
        save_tensors(output_dir / "samples.pt", module.test_samples)
        write_json(output_dir / "metrics.json", metrics)
        write_json(output_dir / "splits.json", datamodule.splits_record())
        publish_to_wandb(trainer, output_dir, metrics)
    return metrics


def test_metrics(trainer: L.Trainer, module, datamodule, ckpt_path: str | None) -> dict:
    """``test/*`` metrics of the weights at ``ckpt_path`` (None: those in memory)."""
    stopped = RuntimeError(
        f"stopped by a signal during the test of {ckpt_path or 'the final weights'}: the test did not "
        f"finish, so no metrics.json was written; the checkpoints are kept: test one with "
        f"`python eval.py ckpt_path=<checkpoint>`"
    )
    try:
        trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=True)
    except SIGTERMException:  # a SystemExit with code 0: the run would end "successfully", untested
        raise stopped from None
    # Lightning raises only before a batch that is not the last: a signal during the last (or
    # only) batch is recorded and dropped, and the run would go on to test and write as if asked to.
    if trainer.received_sigterm:
        raise stopped
    return {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("test/")}


def publish_to_wandb(trainer: L.Trainer, output_dir: Path, metrics: dict) -> None:
    """Sample figure, per-image table and final metrics into each wandb run's summary."""
    for logger in trainer.loggers:
        if type(logger).__name__ != "WandbLogger":
            continue
        logger.log_image(key="test/samples", images=[str(output_dir / "samples.png")])
        rows = (output_dir / "test_per_image.csv").read_text().splitlines()
        logger.log_table(
            key="test/per_image",
            columns=rows[0].split(","),
            data=[[float(v) for v in row.split(",")] for row in rows[1:]],
        )
        logger.experiment.summary.update(metrics)
