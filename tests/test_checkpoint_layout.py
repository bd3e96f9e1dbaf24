"""Checkpoints outlive the package's layout: old import paths still evaluate, folders are named right."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from ssmri.checkpoints.legacy_targets import upgrade_target, upgrade_targets
from ssmri.checkpoints.load import checkpoint_method
from ssmri.runner.run import evaluate, train
from tests.helpers.config import FAST, compose_config

OLD_NOISE2INVERSE = {
    "_target_": "ssmri.losses.splitting.Noise2InverseLoss",
    "splitter": {
        "_target_": "ssmri.physics.splitting.GaussianSplitter",
        "split_ratio": 0.6,
        "std_scale": 4.0,
        "center_block": [8, 8],
    },
    "num_splits": 3,
    "images_per_pass": 1,
}


def test_every_moved_module_maps_to_an_importable_class():
    import hydra.utils

    for old in [
        "ssmri.physics.transforms.Rotate",
        "ssmri.physics.transforms.Diffeomorphism",
        "ssmri.physics.kspace_augment.KspaceCompose",
        "ssmri.physics.kspace_augment.KspaceNoise",
        "ssmri.physics.kspace_augment.RandomPhaseError",
        "ssmri.physics.splitting.GaussianSplitter",
        "ssmri.physics.splitting.MultiplicativeSplitter",
        "ssmri.physics.KspaceNoise",
    ]:
        new = upgrade_target(old)
        assert new != old and new.startswith("ssmri.transforms.")
        assert hydra.utils.get_class(new).__name__ == old.rsplit(".", 1)[1]
    assert upgrade_target("ssmri.losses.SSDULoss") == "ssmri.losses.SSDULoss"
    nested = upgrade_targets({"a": [{"_target_": "ssmri.physics.transforms.Rotate"}], "b": 1})
    assert nested == {"a": [{"_target_": "ssmri.transforms.image.Rotate"}], "b": 1}


#: Names of the flat layout before ``ssmri/`` was grouped into packages -> where they live now.
REGROUPED = {
    "ssmri.checkpoint.load_checkpoint": "ssmri.checkpoints.load.load_checkpoint",
    "ssmri.checkpoint_io.AtomicCheckpointIO": "ssmri.checkpoints.io.AtomicCheckpointIO",
    "ssmri.resume.ApplyOptimizerSettings": "ssmri.checkpoints.resume.ApplyOptimizerSettings",
    "ssmri.trusted_targets.check_checkpoint": "ssmri.checkpoints.trusted_targets.check_checkpoint",
    "ssmri.validation.check_metrics": "ssmri.evaluation.metrics.check_metrics",
    "ssmri.metrics.PerImageQuality": "ssmri.evaluation.metrics.PerImageQuality",
    "ssmri.conventions.aggregate": "ssmri.evaluation.conventions.aggregate",
    "ssmri.selection.Selection": "ssmri.evaluation.selection_rules.Selection",
    "ssmri.evaluate.evaluate_folders": "ssmri.evaluation.folders.evaluate_folders",
    "ssmri.lit.selection.SelectionCheckpoints": "ssmri.lit.selection_checkpoints.SelectionCheckpoints",
    "ssmri.validation.open_hdf5": "ssmri.data.checks.open_hdf5",
    "ssmri.validation.check_images": "ssmri.data.checks.check_images",
    "ssmri.validation.check_config": "ssmri.runner.validation.check_config",
    "ssmri.run.train": "ssmri.runner.run.train",
    "ssmri.cli.WritableOutputFolder": "ssmri.runner.cli.WritableOutputFolder",
    "ssmri.distributed.job_scope": "ssmri.runner.distributed.job_scope",
    "ssmri.resolvers.num_gpus": "ssmri.runner.resolvers.num_gpus",
    "ssmri.preflight.check_memory": "ssmri.runner.preflight.check_memory",
    "ssmri.predict.predict": "ssmri.runner.predict.predict",
}


@pytest.mark.parametrize("old", REGROUPED)
def test_every_name_of_the_flat_layout_maps_to_where_it_lives(old):
    import hydra.utils

    new = REGROUPED[old]
    assert upgrade_target(old) == new
    assert upgrade_target(new) == new  # today's names are left alone
    assert hydra.utils.get_object(new).__name__ == old.rsplit(".", 1)[1]


def test_a_checkpoint_with_the_old_layout_evaluates_to_the_same_psnr(tmp_path):
    cfg = compose_config(
        tmp_path / "a", [*FAST, "trainer.max_epochs=1", "loss=noise2inverse", "loss.num_splits=3"]
    )
    trained = train(cfg, method="noise2inverse")
    overrides = [o for o in FAST if not o.startswith("logger")]

    def psnr_of(checkpoint: Path, folder: str) -> float:
        again = compose_config(tmp_path / folder, [*overrides, f"ckpt_path={checkpoint}"], config_name="eval")
        return evaluate(again)["test/psnr"]

    today = psnr_of(Path(trained["best_checkpoint"]), "b")
    # Write the checkpoint as the layout before the move did: transforms under ssmri.physics.
    state = torch.load(trained["best_checkpoint"], map_location="cpu", weights_only=True)
    state["hyper_parameters"]["loss"] = OLD_NOISE2INVERSE
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    assert psnr_of(old, "c") == today


def test_eval_folder_is_named_after_the_checkpoint_method(tmp_path):
    checkpoint = tmp_path / "weights.ckpt"
    torch.save({"hyper_parameters": {"method": "weighted_ssdu"}, "state_dict": {}}, checkpoint)
    assert checkpoint_method(str(checkpoint)) == "weighted_ssdu"
    assert checkpoint_method(str(tmp_path / "missing.ckpt")) == "unknown"
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="ssmri.conf"):
        cfg = compose("eval", overrides=[f"ckpt_path={checkpoint}"], return_hydra_config=True)
    assert cfg.hydra.run.dir.split("/")[:3] == ["outputs", "eval", "weighted_ssdu"]
