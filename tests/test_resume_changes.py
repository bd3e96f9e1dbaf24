"""A resume that changes the checkpoint's settings is refused, or applied when allowed."""

import pytest
import torch

from ssmri.errors import ConfigError, is_user_error, one_line
from ssmri.runner.run import train
from tests.helpers.config import FAST, compose_config


def test_changed_settings_on_resume_are_refused_or_applied_when_allowed(tmp_path):
    train(compose_config(tmp_path, [*FAST, "trainer.max_epochs=1"]), method="sup")
    changed = [*FAST, "trainer.max_epochs=2", "ckpt_path=last", "module.optimizer.lr=0.01"]
    refused = r"module\.optimizer\.lr: 0\.001 -> 0\.01.*resume\.allow_changes=true"
    with pytest.raises(ConfigError, match=refused):
        train(compose_config(tmp_path, changed), method="sup")
    metrics = train(compose_config(tmp_path, [*changed, "resume.allow_changes=true"]), method="sup")
    assert metrics["epochs"] == 2
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["optimizer_states"][0]["param_groups"][0]["lr"] == 0.01  # the new lr took effect
    assert state["optimizer_states"][0]["state"]  # Adam's moments were kept
    assert state["hyper_parameters"]["config"]["module"]["optimizer"]["lr"] == 0.01


def test_speed_switches_may_change_on_resume(tmp_path):
    # A run trained on one machine continues on another, whose faster memory format differs.
    train(compose_config(tmp_path, [*FAST, "trainer.max_epochs=1", "model.channels_last=true"]), method="sup")
    resumed = [*FAST, "trainer.max_epochs=2", "ckpt_path=last", "model.channels_last=false"]
    assert train(compose_config(tmp_path, resumed), method="sup")["epochs"] == 2


def test_only_ssmri_errors_lose_their_traceback():
    try:
        torch.zeros(2, 2) @ torch.zeros(3, 3)
    except RuntimeError as error:
        assert not is_user_error(error)  # raised inside torch: a bug keeps its traceback
    assert is_user_error(ConfigError("x"))
    assert one_line(ConfigError("first\n  second")) == "error: first; second"
