"""A run folder written by an earlier layout of the package still evaluates and resumes.

``tests/data/legacy_run/`` is a real run of commit 2996c88 (its README says how it was written):
its checkpoints and its ``.hydra`` record name the module paths of that layout.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import get_object

from ssmri.checkpoints.legacy_targets import upgrade_target
from ssmri.checkpoints.load import load_checkpoint
from ssmri.checkpoints.trusted_targets import check_checkpoint
from ssmri.errors import CheckpointError
from ssmri.runner.run import evaluate, train
from tests.helpers.config import compose_config, compose_recorded

LEGACY = Path(__file__).parent / "data" / "legacy_run"
RECORDED = json.loads((LEGACY / "metrics.json").read_text())


@pytest.fixture
def legacy_run(tmp_path) -> Path:
    """A copy of the legacy run: evaluating and resuming write into the folder they are given."""
    copy = tmp_path / "legacy_run"
    shutil.copytree(LEGACY, copy)
    return copy


def recorded_overrides(*prefixes: str) -> list[str]:
    """The run's own command-line overrides that start with one of ``prefixes``."""
    overrides = yaml.safe_load((LEGACY / ".hydra" / "overrides.yaml").read_text())
    return [override for override in overrides if override.startswith(prefixes)]


def targets(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["_target_"]] if isinstance(node.get("_target_"), str) else []
        return found + [target for value in node.values() for target in targets(value)]
    if isinstance(node, list):
        return [target for value in node for target in targets(value)]
    return []


def test_its_checkpoints_load_and_name_only_trusted_classes():
    paths = sorted((LEGACY / "checkpoints").glob("*.ckpt"))
    assert [path.name for path in paths] == ["best.ckpt", "last.ckpt", "select-val_psnr.ckpt"]
    for path in paths:
        check_checkpoint(load_checkpoint(path), path)


@pytest.mark.parametrize(
    "keys, target, refusal",
    [
        (("loss", "splitter"), "ssmri.physics.splitting.GaussianSplitter", None),
        (("config", "loss", "splitter"), "ssmri.physics.splitting.GaussianSplitter", None),
        (("loss",), "ssmri.selection.Selection", "is not an ssmri loss class"),
        (("model",), "ssmri.checkpoint.convert", "is not an ssmri network"),
        (("config", "module"), "ssmri.lit.selection.SelectionCheckpoints", "is not an ssmri LightningModule"),
        (("model", "denoiser"), "ssmri.run.instantiate", "is not an ssmri network"),
    ],
)
def test_a_name_of_an_older_layout_is_trusted_only_where_its_class_belongs(tmp_path, keys, target, refusal):
    path = LEGACY / "checkpoints" / "best.ckpt"
    state = load_checkpoint(path)
    node = state["hyper_parameters"]
    for key in keys:
        node = node[key]
    node["_target_"] = target
    if refusal is None:
        check_checkpoint(state, path)
        return
    # Checked as upgraded, the name evaluation would instantiate; named as the file writes it.
    named = re.escape(f"{'.'.join(keys)}._target_='{target}' (today '{upgrade_target(target)}') {refusal}")
    with pytest.raises(CheckpointError, match=named):
        check_checkpoint(state, path)


@pytest.mark.parametrize("record", ["config.yaml", "hydra.yaml"])
def test_every_target_it_records_names_an_importable_object_once_upgraded(record):
    found = targets(yaml.safe_load((LEGACY / ".hydra" / record).read_text()))
    assert found
    for target in found:
        assert get_object(upgrade_target(target)) is not None, target


def test_it_evaluates_to_its_recorded_numbers_from_its_own_record(legacy_run, tmp_path):
    # As `make robustness` evaluates a sweep's jobs: eval.py --config-dir <run>/.hydra --config-name config.
    checkpoint = legacy_run / "checkpoints" / "best.ckpt"
    cfg = compose_recorded(legacy_run, tmp_path / "eval", tmp_path / "cache", [f"ckpt_path={checkpoint}"])
    metrics = evaluate(cfg)
    assert metrics["loss"] == "ssdu"
    assert metrics["test/psnr"] == pytest.approx(RECORDED["test/psnr"], abs=1e-4)
    assert metrics["test/ssim"] == pytest.approx(RECORDED["test/ssim"], abs=1e-5)


def test_it_evaluates_under_todays_eval_config(legacy_run, tmp_path):
    checkpoint = legacy_run / "checkpoints" / "best.ckpt"
    overrides = [*recorded_overrides("data", "trainer.accelerator"), f"ckpt_path={checkpoint}"]
    metrics = evaluate(compose_config(tmp_path, overrides, config_name="eval"))
    assert metrics["loss"] == "ssdu"
    assert metrics["test/psnr"] == pytest.approx(RECORDED["test/psnr"], abs=1e-4)


@pytest.mark.parametrize("config", ["its own record", "today's train config"])
def test_it_resumes_for_one_more_epoch(legacy_run, tmp_path, config):
    more = ["ckpt_path=last", "trainer.max_epochs=3"]
    if config == "its own record":
        cfg = compose_recorded(legacy_run, legacy_run, tmp_path / "cache", more)
        # The record names the callback and the rule where they lived when it ran.
        assert cfg.callbacks.model_checkpoint._target_ == "ssmri.lit.selection.SelectionCheckpoints"
        assert cfg.selection._target_ == "ssmri.selection.Selection"
    else:  # python train.py <its overrides> ckpt_path=last hydra.run.dir=<run dir>
        cfg = compose_config(tmp_path, [*recorded_overrides(""), *more])
        shutil.move(legacy_run, tmp_path / "run")
        legacy_run = tmp_path / "run"
    metrics = train(cfg, method="ssdu")
    assert metrics["epochs"] == 3 and metrics["num_test_images"] == 2
    last = torch.load(legacy_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 6  # 2 batches an epoch, resumed after 4
    assert json.loads((legacy_run / "metrics.json").read_text())["epochs"] == 3
