"""Faults: a signal mid-epoch checkpoints and resumes exactly; a NaN loss stops with a clear error."""

import csv
import os
import signal
import warnings

import lightning as L
import pytest
import torch

from ssmri.losses import MCLoss
from ssmri.runner.run import train
from tests.helpers.config import FAST, compose_config

# 16 training images in batches of 2: 8 batches per epoch, so batch 11 is mid-way through epoch 2.
SMALL = [
    *FAST,
    "data.num_train=16",
    "data.batch_size=2",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
]


class SignalAfterBatches(L.Callback):
    """Sends this process ``signum`` once, right after ``batches`` training batches (a test
    stand-in for a scheduler's SIGTERM or a user's Ctrl-C)."""

    def __init__(self, batches: int, signum: int = int(signal.SIGTERM)):
        self.batches, self.signum, self.seen = batches, signum, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen == self.batches:
            os.kill(os.getpid(), self.signum)


class NaNAfter(MCLoss):
    """Measurement consistency that turns into NaN after ``steps`` training calls."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.calls = steps, 0

    def forward(self, model, physics, y, mask, x=None, rng=None):
        self.calls += torch.is_grad_enabled()  # validation (selection=val_loss) does not count
        output = super().forward(model, physics, y, mask, x, rng)
        if self.calls > self.steps:
            output.loss = output.loss * float("nan")
        return output


def final_weights(run_dir) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def interrupted_then_resumed(tmp_path, overrides, signum, batches=11):
    killer = [
        f"+callbacks.signal._target_={__name__}.SignalAfterBatches",
        f"+callbacks.signal.batches={batches}",
        f"+callbacks.signal.signum={int(signum)}",
    ]
    cfg = compose_config(tmp_path / "cut", [*overrides, *killer])
    with pytest.raises(SystemExit):
        train(cfg)
    checkpoint = torch.load(tmp_path / "cut" / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    assert progress["total"]["completed"] == batches and checkpoint["epoch"] == 1  # mid-epoch 2
    assert not (tmp_path / "cut" / "run" / "metrics.json").exists()
    resumed = compose_config(tmp_path / "cut", [*overrides, "ckpt_path=last"])
    return train(resumed)


@pytest.mark.parametrize(
    "loss, signum",
    [("sup", signal.SIGTERM), ("sup", signal.SIGINT), ("adversarial", signal.SIGTERM)],
    ids=["sigterm", "sigint", "adversarial-sigterm"],
)
def test_signal_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, loss, signum):
    overrides = [*SMALL, f"loss={loss}"]
    if loss == "adversarial":  # two optimisers, a discriminator and its cached reals
        overrides += ["loss.discriminator.features=8", "loss.discriminator.num_blocks=1"]
    straight = train(compose_config(tmp_path / "straight", overrides))
    resumed = interrupted_then_resumed(tmp_path, overrides, signum)
    assert resumed["global_step"] == straight["global_step"] and resumed["epochs"] == 2
    expected = final_weights(tmp_path / "straight" / "run")
    got = final_weights(tmp_path / "cut" / "run")
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
    assert abs(resumed["test/psnr"] - straight["test/psnr"]) < 1e-4


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = compose_config(
        tmp_path, [*SMALL, "loss=mc", f"loss._target_={__name__}.NaNAfter", "+loss.steps=10"]
    )
    with pytest.raises(FloatingPointError, match=r"training loss is nan at step 10.*last good checkpoint"):
        train(cfg)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 8  # the end of the first epoch, before the NaN
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())


def csv_rows(run_dir) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_resumed_run_keeps_the_csv_log_of_the_run_it_continues(tmp_path):
    # Adversarial: two optimiser steps per batch, so a cut at global_step would keep the wrong rows.
    overrides = [
        *SMALL,
        "loss=adversarial",
        "loss.discriminator.features=8",
        "loss.discriminator.num_blocks=1",
        "logger=csv",
        "trainer.log_every_n_steps=1",
    ]
    train(compose_config(tmp_path / "straight", overrides))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        interrupted_then_resumed(tmp_path, overrides, signal.SIGTERM)
    expected = csv_rows(tmp_path / "straight" / "run")
    got = csv_rows(tmp_path / "cut" / "run")
    assert [row["step"] for row in got] == [row["step"] for row in expected]
    assert got[0].keys() == expected[0].keys()
    for want, have in zip(expected, got):
        for column, value in want.items():
            if value and not column.startswith("time"):
                assert float(have[column]) == pytest.approx(float(value), abs=1e-5), (column, want["step"])
    assert not [w for w in caught if "will be deleted" in str(w.message)]


def test_a_damaged_csv_log_is_named_not_half_restored(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from ssmri.lit.csv_history import kept_history, restore_history

    logger = CSVLogger(tmp_path, name="csv", version="")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("epoch,step,train/loss\n0,0,0.5\n0,x,0.4\n")
    histories = kept_history([logger])
    with pytest.raises(
        ValueError, match=r"metrics.csv: a row without a readable 'step' \('x'\).*Move it away"
    ):
        restore_history([logger], histories, 5)
    assert (tmp_path / "csv" / "metrics.csv").read_text().endswith("0,x,0.4\n")  # left as it was
