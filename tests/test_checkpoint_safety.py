"""Checkpoints are data and are written atomically: no payload runs, no write half-lands."""

import errno
import logging
import subprocess
import sys

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from ssmri.checkpoints.io import AtomicCheckpointIO
from ssmri.checkpoints.load import convert, load_checkpoint
from ssmri.errors import CheckpointError, DiskError
from ssmri.lit.callbacks import CheckpointOnInterrupt
from ssmri.runner.run import build_trainer, evaluate, train
from tests.helpers.config import FAST, compose_config
from tests.helpers.faults import payload_checkpoint, small_tmpfs


def test_eval_refuses_a_checkpoint_with_a_payload_and_never_runs_it(tmp_path):
    marker = tmp_path / "payload-ran"
    checkpoint = payload_checkpoint(tmp_path / "evil.ckpt", marker)
    cfg = compose_config(tmp_path, [*FAST[:-1], f"ckpt_path={checkpoint}"], config_name="eval")
    with pytest.raises(
        CheckpointError,
        match=r"ckpt_path=.*evil\.ckpt.*could run code.*"
        r"python -m ssmri\.checkpoints convert",
    ):
        evaluate(cfg)
    assert not marker.exists()


def test_resume_refuses_a_checkpoint_with_a_payload_and_never_runs_it(tmp_path):
    marker = tmp_path / "payload-ran"
    checkpoint = payload_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(CheckpointError, match="could run code"):
        train(compose_config(tmp_path, [*FAST, f"ckpt_path={checkpoint}"]))
    # Lightning's own loads (resume, test's ckpt_path, SLURM's hpc checkpoint) go through the plugin.
    with pytest.raises(CheckpointError, match="could run code"):
        AtomicCheckpointIO().load_checkpoint(checkpoint, weights_only=False)
    assert not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda good: good[: len(good) // 2], "not a readable PyTorch checkpoint"),  # truncated
        (lambda good: b"", "not a readable PyTorch checkpoint"),  # empty
        (lambda good: b"model weights, honest", "not a readable PyTorch checkpoint"),  # foreign text
        (None, "not a Lightning checkpoint"),  # a tensor file, not a checkpoint
    ],
    ids=["truncated", "empty", "text", "tensor"],
)
def test_unreadable_or_foreign_checkpoints_give_one_line(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {"w": torch.ones(100)}}, path)
    if content is None:
        torch.save(torch.zeros(3), path)
    else:
        path.write_bytes(content(path.read_bytes()))
    with pytest.raises(CheckpointError, match=message) as raised:
        load_checkpoint(path)
    assert "ckpt_path=" in str(raised.value) and "\n" not in str(raised.value)


def test_convert_makes_a_trusted_old_checkpoint_load_safely(tmp_path):
    old = tmp_path / "old.ckpt"
    # Older checkpoints kept OmegaConf containers, which only an unsafe load can rebuild.
    torch.save(
        {
            "state_dict": {"w": torch.arange(3.0)},
            "hyper_parameters": {"model": OmegaConf.create({"_target_": "x", "n": [1, 2]})},
        },
        old,
    )
    with pytest.raises(CheckpointError, match="convert"):
        load_checkpoint(old)
    # The command the refusal names, as a user runs it.
    converted = subprocess.run(
        [sys.executable, "-m", "ssmri.checkpoints", "convert", str(old), str(tmp_path / "new.ckpt")],
        capture_output=True,
        text=True,
    )
    assert converted.returncode == 0, converted.stderr
    assert "loads with weights_only=True" in converted.stdout
    state = load_checkpoint(tmp_path / "new.ckpt")
    assert state["hyper_parameters"]["model"] == {"_target_": "x", "n": [1, 2]}
    assert torch.equal(state["state_dict"]["w"], torch.arange(3.0))
    assert not isinstance(state["hyper_parameters"]["model"], DictConfig)


def test_convert_refuses_what_has_no_plain_form(tmp_path):
    torch.save({"state_dict": {}, "odd": logging.getLogger("x")}, tmp_path / "odd.ckpt")
    with pytest.raises(CheckpointError, match=r"checkpoint\.odd is a logging\.Logger"):
        convert(tmp_path / "odd.ckpt", tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def _checkpoint(megabytes: float) -> dict:
    return {"state_dict": {"w": torch.ones(int(megabytes * 1e6 / 4))}, "epoch": 1}


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path):
    io = AtomicCheckpointIO()
    with small_tmpfs(tmp_path / "disk", size="1m") as disk:
        path = disk / "checkpoints" / "best.ckpt"
        io.save_checkpoint(_checkpoint(0.4), path)
        with pytest.raises(
            DiskError,
            match=r"could not write checkpoint best\.ckpt .* to "
            rf"{disk / 'checkpoints'}: No space left on device; [\d.]+ MB free",
        ):
            io.save_checkpoint(_checkpoint(0.8), path)
        assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], _checkpoint(0.4)["state_dict"]["w"])
        assert sorted(p.name for p in path.parent.iterdir()) == ["best.ckpt"]


def test_a_failing_write_is_a_disk_error_even_without_a_tmpfs(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint(_checkpoint(0.01), path)

    monkeypatch.setattr("builtins.open", lambda *a, **k: _FailingFile(), raising=True)
    with pytest.raises(DiskError, match=rf"to {tmp_path}: No space left on device; [\d.]+ MB free"):
        io.save_checkpoint(_checkpoint(0.02), path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["state_dict"]["w"].numel() == 2500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


class _FailingFile:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_every_trainer_writes_through_the_atomic_plugin(tmp_path):
    for trainer_option in ("default", "ddp"):
        cfg = compose_config(
            tmp_path,
            [
                *FAST,
                f"trainer={trainer_option}",
                "trainer.devices=2" if trainer_option == "ddp" else "trainer.devices=1",
            ],
        )
        trainer = build_trainer(cfg, tmp_path)
        assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO), trainer_option


class _StubTrainer:
    """A trainer stopped while fitting (the only time the callback writes last.ckpt)."""

    current_epoch, global_step = 1, 7

    def __init__(self, fails: bool):
        from types import SimpleNamespace

        from lightning.pytorch.trainer.states import TrainerFn

        self.fails = fails
        self.state = SimpleNamespace(fn=TrainerFn.FITTING)

    def save_checkpoint(self, path):
        if self.fails:
            raise DiskError(f"could not write checkpoint {path}")
        torch.save({"state_dict": {}}, path)


def test_the_interrupt_message_reports_only_what_was_written(tmp_path, caplog):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    callback = CheckpointOnInterrupt(str(tmp_path))
    with pytest.warns(UserWarning, match=r"could NOT write .*last\.ckpt"):
        callback.on_exception(_StubTrainer(fails=True), None, SIGTERMException())
    assert not (tmp_path / "last.ckpt").exists()
    with caplog.at_level(logging.INFO):
        callback.on_exception(_StubTrainer(fails=False), None, SIGTERMException())
    assert (tmp_path / "last.ckpt").is_file() and "wrote" in caplog.text
