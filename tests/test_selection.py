"""Checkpoint selection: each rule picks the epoch it should, and a GT-free run reads no target."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from ssmri.data.kspace_dataset import KspaceDataset
from ssmri.evaluation.selection_rules import Selection
from ssmri.losses.base import LossOutput
from ssmri.losses.consistency import MCLoss
from ssmri.runner.run import train
from tests.helpers.config import FAST, compose_config

# Validation objective per epoch (1-based): lowest at epoch 2, while the last epoch is 4.
SCRIPT = {1: 3.0, 2: 1.0, 3: 2.0, 4: 5.0}


class ScriptedLoss(MCLoss):
    """MC in training; in validation (no grad) the value ``SCRIPT`` gives for the epoch."""

    epoch = 0

    def forward(self, model, physics, y, mask, x=None, rng=None) -> LossOutput:
        output = super().forward(model, physics, y, mask, x, rng)
        if torch.is_grad_enabled():
            return output
        return LossOutput(torch.tensor(SCRIPT[ScriptedLoss.epoch]), output.x_hat)


def scripted_run(tmp_path, monkeypatch, *overrides):
    from ssmri.lit.module import ReconstructionModule

    original = ReconstructionModule.on_validation_epoch_start

    def count_epoch(self):
        ScriptedLoss.epoch = self.current_epoch + 1
        return original(self)

    monkeypatch.setattr(ReconstructionModule, "on_validation_epoch_start", count_epoch)
    cfg = compose_config(tmp_path, [*FAST, "trainer.max_epochs=4", "loss=mc", *overrides])
    with open_dict(cfg):
        cfg.loss = {"_target_": f"{__name__}.ScriptedLoss"}
    return train(cfg, method="scripted")


def test_each_rule_picks_the_epoch_it_should(tmp_path, monkeypatch):
    metrics = scripted_run(tmp_path, monkeypatch)
    assert metrics["selection"]["rule"] == "val_loss" and metrics["selection"]["epoch"] == 2
    assert metrics["selection"]["monitored_value"] == pytest.approx(1.0)
    rules = metrics["rules"]
    assert set(rules) == {"val_loss", "last", "val_psnr"}
    assert rules["last"]["epoch"] == 4 and rules["val_loss"]["epoch"] == 2
    assert rules["val_psnr"]["oracle"] and rules["val_psnr"]["label"] == "val_psnr (oracle)"
    assert not rules["val_loss"]["oracle"] and not rules["val_loss"]["reads_ground_truth"]
    assert rules["val_loss"]["test/psnr"] == metrics["test/psnr"]
    # The tested weights are those of epoch 2: its checkpoint says so.
    state = torch.load(rules["val_loss"]["checkpoint"], map_location="cpu", weights_only=False)
    assert state["epoch"] == 1  # Lightning counts epochs from 0
    run = Path(tmp_path / "run")
    assert json.loads((run / "metrics.json").read_text())["selection"]["epoch"] == 2


def test_rules_that_pick_one_epoch_are_tested_once(tmp_path, monkeypatch):
    import ssmri.runner.testing as testing

    monkeypatch.setitem(SCRIPT, 4, 0.5)  # the objective's best is the last epoch: val_loss = last
    tested = []
    original = testing.test_metrics

    def counting(trainer, module, datamodule, ckpt_path):
        tested.append(ckpt_path)
        return original(trainer, module, datamodule, ckpt_path)

    monkeypatch.setattr(testing, "test_metrics", counting)
    metrics = scripted_run(tmp_path, monkeypatch)
    rules = metrics["rules"]
    assert rules["val_loss"]["epoch"] == rules["last"]["epoch"] == 4
    assert len(tested) == 1 + (rules["val_psnr"]["epoch"] != 4)
    assert rules["last"]["test/psnr"] == metrics["test/psnr"]
    assert rules["last"]["checkpoint"] != rules["val_loss"]["checkpoint"]  # each rule keeps its own record


def test_adversarial_methods_fall_back_to_last_and_say_so():
    from ssmri.losses import UAIRLoss, UnsupervisedAdversarialLoss

    for loss_class in (UAIRLoss, UnsupervisedAdversarialLoss):
        assert loss_class.selectable is False
        choice = Selection("val_loss").choose("val_loss", loss_class.__new__(loss_class), True)
        assert choice.used == "last" and "selectable = False" in choice.note


def test_rules_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="selection.rule='best' is not a selection rule"):
        Selection("best")
    with pytest.raises(ValueError, match="data.val_ground_truth=false removes"):
        Selection("val_psnr").choose("val_psnr", MCLoss(), val_ground_truth=False)
    gt_free = Selection("val_loss").choices(MCLoss(), val_ground_truth=False)
    assert [c.used for c in gt_free] == ["val_loss", "last"]  # no oracle without ground truth


def test_ground_truth_free_run_reads_no_target_before_the_test(tmp_path, monkeypatch):
    testing = {"started": False}
    read = KspaceDataset.__getitem__

    def guarded(self, index):
        if self.with_target and not testing["started"]:
            raise AssertionError(f"ground truth of {self.split} read before the final test")
        return read(self, index)

    from ssmri.lit.module import ReconstructionModule

    start = ReconstructionModule.on_test_epoch_start

    def mark(self):
        testing["started"] = True
        return start(self)

    monkeypatch.setattr(KspaceDataset, "__getitem__", guarded)
    monkeypatch.setattr(ReconstructionModule, "on_test_epoch_start", mark)
    cfg = compose_config(
        tmp_path, [*FAST, "trainer.max_epochs=2", "loss=ssdu", "data.val_ground_truth=false", "logger=csv"]
    )
    metrics = train(cfg, method="ssdu")
    assert testing["started"] and set(metrics["rules"]) == {"val_loss", "last"}
    logged = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "val/loss" in logged and "val/psnr" not in logged
