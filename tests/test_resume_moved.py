"""A run folder moved or copied elsewhere resumes from, records and tests its own checkpoints."""

import json
import shutil

import pytest
import torch

from ssmri.lit.selection_checkpoints import SelectionCheckpoints
from ssmri.runner.run import train
from tests.helpers.config import FAST, compose_config

# No validation after the resume: every rule's pick is then one made before the move, which is
# where a recorded absolute path would point back to the original folder.
RESUME = [*FAST, "ckpt_path=last", "trainer.max_epochs=3", "+trainer.limit_val_batches=0"]


def snapshot(folder) -> dict:
    """Every file under ``folder``: (size, modification time, content)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def paths_in(metrics: dict) -> list[str]:
    """Every checkpoint path metrics.json records (the tested one, the best, each rule's)."""
    found = [metrics["tested_checkpoint"], metrics["best_checkpoint"], metrics["selection"]["checkpoint"]]
    return found + [rule["checkpoint"] for rule in metrics["rules"].values()]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_run_resumes_in_its_own_folder(tmp_path, how):
    original, moved = tmp_path / "a", tmp_path / "b"
    first = train(compose_config(original, [*FAST, "trainer.max_epochs=2"]), method="sup")
    assert first["selection"]["rule"] == "val_loss" and first["selection"]["epoch"] in (1, 2)
    (shutil.move if how == "move" else shutil.copytree)(original, moved)
    before = snapshot(original) if how == "copy" else None

    metrics = train(compose_config(moved, RESUME), method="sup")
    run = moved / "run"
    assert metrics["epochs"] == 3
    # The pick made before the move is found in the new folder: no false "saw no validation".
    assert metrics["selection"]["used"] == "val_loss" and not metrics["selection"]["note"]
    assert metrics["selection"]["epoch"] == first["selection"]["epoch"]
    assert metrics["tested_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    written = json.loads((run / "metrics.json").read_text())
    assert all(path.startswith(str(run) + "/") for path in paths_in(written)), paths_in(written)
    if how == "copy":
        assert snapshot(original) == before  # the original folder is untouched
    else:
        assert not original.exists()


def test_an_absolute_path_of_an_older_checkpoint_is_mapped_into_this_folder(tmp_path):
    callback = SelectionCheckpoints(str(tmp_path / "new" / "checkpoints"), selection=None)
    old = {
        "best": {
            "val_loss": {"value": 0.5, "epoch": 2, "path": "/elsewhere/run/checkpoints/best.ckpt"},
            "val_psnr": {"value": 30.0, "epoch": 1, "file": "select-val_psnr.ckpt"},
        }
    }
    callback.load_state_dict(old)
    assert callback.best == {
        "val_loss": {"value": 0.5, "epoch": 2, "file": "best.ckpt"},
        "val_psnr": {"value": 30.0, "epoch": 1, "file": "select-val_psnr.ckpt"},
    }
    # What a checkpoint stores holds no absolute path, and survives a save/load as plain data.
    saved = torch.load(_round_trip(tmp_path, callback.state_dict()), weights_only=True)
    assert "/" not in json.dumps(saved)


def _round_trip(tmp_path, state: dict):
    path = tmp_path / "state.pt"
    torch.save(state, path)
    return path
