"""Checkpoint selection at the Lightning edge: the validation objective, and each rule's pick.

:class:`SelectionCheckpoints` keeps the weights each selection rule
(:mod:`ssmri.evaluation.selection_rules`) picks: the configured rule's as ``checkpoints/best.ckpt``,
every other monitored rule's as ``checkpoints/select-<rule>.ckpt``, and ``last`` as
``checkpoints/last.ckpt``.
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from ssmri.evaluation.selection_rules import RULES, Choice, Selection
from ssmri.seeding import seeded_rng

log = logging.getLogger(__name__)

#: Keeps the validation objective's random streams apart from the test-time ones (seed, image).
VALIDATION_STREAM = 7


def validation_objective(module, batch) -> Tensor | None:
    """``(B,)`` the loss's own objective on each validation image, or None if it has none.

    Each image is scored alone with a random stream fixed by (seed, image index), so every
    epoch is compared on the same split masks, transforms and fresh operators, whatever the
    batching. Self-supervised losses are given no ground truth.
    """
    loss = module.loss
    if not getattr(loss, "selectable", True):
        return None
    target = batch.x if loss.needs_ground_truth else None
    if loss.needs_ground_truth and target is None:
        return None
    values = []
    for row, index in enumerate(batch.index.tolist()):
        rng = seeded_rng(module.seed, VALIDATION_STREAM, int(index))
        image = slice(row, row + 1)
        output = loss(
            module.model,
            module.physics,
            batch.y[image],
            batch.acq[image],
            None if target is None else target[image],
            rng,
        )
        values.append(output.loss.detach().float().reshape(()))
    return torch.stack(values)


@dataclass
class Pick:
    """The weights one rule chose: its checkpoint file (None: the weights in memory) and epoch."""

    choice: Choice
    path: str | None
    epoch: int | None
    value: float | None = None

    def as_dict(self) -> dict:
        return {
            **self.choice.as_dict(),
            "checkpoint": self.path or "weights at the end of training",
            "epoch": self.epoch,
            "monitored_value": self.value,
        }


class SelectionCheckpoints(L.Callback):
    """Saves, after every validation, the weights each monitored rule prefers so far.

    Args:
        dirpath: the run's ``checkpoints/`` folder.
        selection: the rule and whether every rule's pick is kept
            (:class:`ssmri.evaluation.selection_rules.Selection`).
    """

    def __init__(self, dirpath: str, selection: Selection):
        self.dirpath = Path(dirpath)
        self.selection = selection
        self.choices: list[Choice] = []
        # rule -> {"value", "epoch", "file"}: the file's name inside ``dirpath``, never an absolute
        # path, so that a run folder moved or copied and resumed uses its own checkpoints.
        self.best: dict[str, dict] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        val_ground_truth = getattr(trainer.datamodule, "val_ground_truth", True)
        self.choices = self.selection.choices(pl_module.loss, val_ground_truth)
        for choice in self.choices:
            if choice.note:
                log.warning("selection: %s", choice.note)

    def _path(self, rule: str) -> Path:
        configured = self.choices[0].used if self.choices else self.selection.rule
        return self.dirpath / ("best.ckpt" if rule == configured else f"select-{rule}.ckpt")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        for rule in dict.fromkeys(c.used for c in self.choices):
            monitor, mode = RULES[rule]
            if monitor is None:
                continue
            if monitor not in trainer.callback_metrics:
                raise RuntimeError(
                    f"selection rule {rule} monitors {monitor}, which validation did not log; "
                    f"choose selection=last"
                )
            value = float(trainer.callback_metrics[monitor])
            if not math.isfinite(value):
                log.warning(
                    "selection: %s is %s at epoch %d; never picked", monitor, value, trainer.current_epoch + 1
                )
                continue
            previous = self.best.get(rule)
            better = previous is None or (
                value < previous["value"] if mode == "min" else value > previous["value"]
            )
            if better:
                path = self._path(rule)
                # Recorded before saving, so the checkpoint holds the state that chose it.
                self.best[rule] = {"value": value, "epoch": trainer.current_epoch + 1, "file": path.name}
                trainer.save_checkpoint(path)

    def picks(self, trainer: L.Trainer) -> list[Pick]:
        """Each rule's choice after training, the configured rule first."""
        last = self.dirpath / "last.ckpt"
        if not last.is_file():  # no last-checkpoint callback: keep the final weights by name
            last = self.dirpath / "select-last.ckpt"
            trainer.save_checkpoint(last)
        last_pick = (str(last), trainer.current_epoch)
        picks = []
        for choice in self.choices:
            if choice.used == "last":
                picks.append(Pick(choice, *last_pick))
                continue
            best = self.best.get(choice.used)
            if best is None or not (self.dirpath / best["file"]).is_file():
                note = f"{choice.used} saw no validation epoch; the last weights are tested"
                log.warning("selection: %s", note)
                fallback = Choice(choice.rule, "last", False, False, note=note)
                picks.append(Pick(fallback, *last_pick))
                continue
            picks.append(Pick(choice, str(self.dirpath / best["file"]), best["epoch"], best["value"]))
        return picks

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        """Each rule's pick, resolved in this run's ``dirpath`` (the folder being resumed).

        Checkpoints written before picks were recorded by name hold an absolute ``path``: it
        is mapped by its file name to this folder, never read where it points.
        """
        self.best = {}
        for rule, best in dict(state.get("best", {})).items():
            name = Path(str(best.get("file") or best.get("path") or "")).name
            if name:
                self.best[rule] = {"value": best["value"], "epoch": best["epoch"], "file": name}
