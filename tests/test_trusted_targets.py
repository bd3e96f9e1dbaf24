"""A checkpoint names no code: every ``_target_`` read from a file is an ssmri class of its kind."""

import itertools
import sys

import pytest
import torch
from omegaconf import OmegaConf

from ssmri.checkpoints.load import plain
from ssmri.checkpoints.resume import recorded_config
from ssmri.checkpoints.trusted_targets import GROUPS, UntrustedTarget, check_hyper_parameters
from ssmri.errors import CheckpointError
from ssmri.runner.run import build, evaluate, train
from tests.helpers.config import FAST, compose_config, compose_only, options

EVAL = FAST[:-1]  # eval.yaml has no logger group


def tiny_checkpoint(tmp_path, loss: str = "mo_ei"):
    """A checkpoint as a run writes it (weights and hyper-parameters) without training: a
    32x32 phantom problem and a narrow U-Net, built in a fraction of a second."""
    cfg = compose_config(tmp_path / "origin", [*FAST, f"loss={loss}"])
    module, _ = build(cfg, loss)
    return {
        "state_dict": module.state_dict(),
        "hyper_parameters": plain(dict(module.hparams)),
        "epoch": 0,
        "global_step": 0,
    }


def save(tmp_path, state: dict, name: str = "evil.ckpt"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def set_at(state: dict, keys: tuple, value) -> dict:
    node = state["hyper_parameters"]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return state


def test_the_issue_probe_through_the_loss_creates_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = tiny_checkpoint(tmp_path)
    state["hyper_parameters"]["loss"] = {"_target_": "pathlib.Path.touch", "_args_": ["MARKER"]}
    path = save(tmp_path, state)
    cfg = compose_config(tmp_path, [*EVAL, f"ckpt_path={path}"], config_name="eval")
    expected = (
        r"^ckpt_path='.*evil\.ckpt': hyper_parameters\.loss\._target_='pathlib\.Path\.touch' "
        r"is not an ssmri loss class; .*refused before anything is built"
    )
    with pytest.raises(CheckpointError, match=expected) as refused:
        evaluate(cfg)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "MARKER").exists()
    assert not (tmp_path / "run").exists()


def test_the_issue_probe_through_the_model_empties_no_file(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    state = tiny_checkpoint(tmp_path)
    state["hyper_parameters"]["model"] = {"_target_": "builtins.open", "_args_": [str(victim), "w"]}
    cfg = compose_config(tmp_path, [*EVAL, f"ckpt_path={save(tmp_path, state)}"], config_name="eval")
    with pytest.raises(
        CheckpointError,
        match=r"hyper_parameters\.model\._target_='builtins\.open' "
        r"is not an ssmri network",
    ):
        evaluate(cfg)
    assert victim.read_text() == "keep me"


TOUCH = {"_target_": "pathlib.Path.touch", "_args_": ["MARKER"]}
# Every recorded group, and nested nodes of each kind (a transform, a denoiser, a data source,
# an optimiser, a node inside a list), each given the probe in turn.
PLACES = [
    ("config", "model"),
    ("config", "loss"),
    ("config", "physics"),
    ("config", "data"),
    ("config", "module"),
    ("model", "denoiser"),
    ("loss", "transform"),
    ("config", "data", "images"),
    ("config", "module", "optimizer"),
    ("config", "module", "scheduler"),
    ("config", "loss", "transform"),
    ("config", "model", "denoiser"),
]


@pytest.mark.parametrize("keys", PLACES, ids=[".".join(k) for k in PLACES])
def test_the_probe_is_refused_in_every_recorded_group_and_nested_node(tmp_path, monkeypatch, keys):
    monkeypatch.chdir(tmp_path)
    path = save(tmp_path, set_at(tiny_checkpoint(tmp_path), keys, dict(TOUCH)))
    message = r"\.".join(("hyper_parameters", *keys)) + r"\._target_='pathlib\.Path\.touch' is not"
    eval_cfg = compose_config(tmp_path / "eval", [*EVAL, f"ckpt_path={path}"], config_name="eval")
    with pytest.raises(CheckpointError, match=message):
        evaluate(eval_cfg)
    # A resume reads the same checkpoint: refused before anything is built or written.
    resume_cfg = compose_config(tmp_path / "resume", [*FAST, "loss=mo_ei", f"ckpt_path={path}"])
    with pytest.raises(CheckpointError, match=message):
        train(resume_cfg)
    assert not (tmp_path / "MARKER").exists()
    assert not (tmp_path / "resume" / "run").exists()


def test_a_target_hidden_in_a_list_is_found(tmp_path):
    state = tiny_checkpoint(tmp_path, loss="vortex")
    augmentations = state["hyper_parameters"]["loss"]["augmentation"]["augmentations"]
    augmentations.append({"nested": [dict(TOUCH)]})
    with pytest.raises(
        UntrustedTarget,
        match=r"hyper_parameters\.loss\.augmentation\.augmentations"
        r"\[2\]\.nested\[0\]\._target_='pathlib\.Path\.touch'",
    ):
        check_hyper_parameters(state["hyper_parameters"])


DECODE = "${oc.decode:'{_target_: pathlib.Path.touch}'}"  # a resolver that makes a node after the check


@pytest.mark.parametrize(
    "keys, value, message",
    [
        # ssmri names of the wrong kind, or not classes, or not ssmri's own
        (
            ("loss",),
            {"_target_": "ssmri.models.MoDL"},
            r"_target_='ssmri\.models\.MoDL' is not an ssmri loss",
        ),
        (("loss",), {"_target_": "ssmri.losses.mse"}, r"'ssmri\.losses\.mse' is not an ssmri loss"),
        (("loss",), {"_target_": "ssmri.losses.MCLoss.forward"}, "is not an ssmri loss"),
        (("model",), {"_target_": "ssmri.models.modl.nn.Module"}, "is not an ssmri network"),
        (("model",), {"_target_": "ssmri.models.unet._DoubleConv"}, "is not an ssmri network"),
        (("model",), {"_target_": "torch.optim.Adam", "_partial_": True}, "is not an ssmri network"),
        (
            ("config", "module", "optimizer"),
            {"_target_": "torch.nn.Module"},
            "is not a torch.optim optimiser",
        ),
        (("config", "physics"), {"_target_": "ssmri.physics.masks.GaussianMaskLaw"}, "acquisition operator"),
        (
            ("config", "data", "images"),
            {"_target_": "ssmri.data.MRIDataModule"},
            "is not an ssmri data source",
        ),
        # Hydra's other ways of calling things
        (("loss", "_args_"), ["MARKER"], r"loss\._args_ is a Hydra instantiation key"),
        (("loss", "_recursive_"), False, r"loss\._recursive_ is a Hydra instantiation key"),
        (("loss", "_partial_"), True, r"loss\._partial_ is allowed only on optimiser"),
        (("loss", "weight"), DECODE, r"loss\.weight=.* is an interpolation"),
        (("seed",), DECODE, r"seed=.* is not an integer"),
        (("method",), "../../../somewhere", r"method=.* is not a method name"),
        (("model",), "{_target_: builtins.open, _args_: [x, w]}", r"model is a str, not a config mapping"),
        (("model",), {"num_iter": 3}, r"model has no _target_"),
        (("loss", "_target_"), ["ssmri.losses.MCLoss"], r"loss\._target_ is a list, not a class name"),
        (
            ("extra",),
            {"_target_": "ssmri.losses.MCLoss"},
            r"extra\._target_=.* names a class where none belongs",
        ),
    ],
)
def test_other_tricks_are_refused_naming_the_key(tmp_path, keys, value, message):
    state = set_at(tiny_checkpoint(tmp_path), keys, value)
    with pytest.raises(UntrustedTarget, match=message):
        check_hyper_parameters(state["hyper_parameters"])


def test_a_module_outside_ssmri_named_by_a_file_is_never_imported(tmp_path, monkeypatch):
    (tmp_path / "sideeffect.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('IMPORTED').touch()\nclass Loss: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for target in ("sideeffect.Loss", "ssmri.losses.sideeffect.Loss", "sideeffect"):
        state = set_at(tiny_checkpoint(tmp_path), ("loss",), {"_target_": target})
        with pytest.raises(UntrustedTarget, match="is not an ssmri loss"):
            check_hyper_parameters(state["hyper_parameters"])
    assert not (tmp_path / "IMPORTED").exists() and "sideeffect" not in sys.modules


def _targets(node, inside=False):
    """(nested?, target) of every node of a plain config."""
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield inside, node["_target_"]
        for value in node.values():
            yield from _targets(value, True)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value, True)


def recorded_targets(combos: list[list[str]]) -> set:
    """Checks what a run composed with each of ``combos`` would record; returns the
    (group, nested?, target) triples its configs name."""
    seen = set()
    for overrides in combos:
        cfg = compose_only(overrides)
        hyper_parameters = {
            "method": cfg.loss._target_.rsplit(".", 1)[-1].lower(),
            "seed": cfg.seed,
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),
            "config": recorded_config(cfg),
        }
        check_hyper_parameters(hyper_parameters)  # the allow-list is not too tight
        for group, node in hyper_parameters["config"].items():
            seen |= {(group, nested, target) for nested, target in _targets(node)}
    return seen


def test_every_shipped_option_passes_and_the_allow_list_is_what_they_use():
    """Every option of every group a checkpoint records passes (the allow-list is not too
    tight), and each target they name is of a kind its group allows."""
    seen = recorded_targets(
        [
            [f"{group}={option}"]
            for group in ("loss", "model", "physics", "data", "module")
            for option in options(group)
        ]
    )
    # What the shipped configs name, per group and depth: each is a kind the group allows.
    assert {group for group, _, _ in seen} == set(GROUPS)
    assert ("loss", True, "ssmri.models.discriminator.SkipConvDiscriminator") in seen
    assert ("module", True, "torch.optim.Adam") in seen
    assert all(target.startswith("ssmri.") or target == "torch.optim.Adam" for _, _, target in seen)


@pytest.mark.slow
def test_the_interpolated_groups_scenarios_and_experiments_pass_too():
    combos = [
        [f"loss={loss}", f"splitter={s}", f"weighted_splitter={w}"]
        for loss, s, w in itertools.product(
            ["ssdu", "weighted_ssdu"], options("splitter"), options("weighted_splitter")
        )
    ]
    combos += [[f"scenario={option}"] for option in options("scenario")]
    combos += [[f"experiment={option}"] for option in options("experiment")]
    seen = recorded_targets(combos)
    assert ("loss", True, "ssmri.transforms.BernoulliSplitter") in seen
    assert ("loss", True, "ssmri.transforms.MultiplicativeSplitter") in seen


def test_a_checkpoint_written_by_ssmri_still_evaluates(tmp_path):
    path = save(tmp_path, tiny_checkpoint(tmp_path, loss="mo_ei"), "good.ckpt")
    cfg = compose_config(tmp_path, [*EVAL, f"ckpt_path={path}"], config_name="eval")
    metrics = evaluate(cfg)
    assert metrics["loss"] == "mo_ei" and metrics["num_test_images"] == 4


@pytest.mark.parametrize("kind", ["directory", "loop", "dangling"])
def test_a_checkpoint_path_that_is_no_file_is_named_for_what_it_is(tmp_path, kind):
    target = tmp_path / "given"
    if kind == "directory":
        (target / "checkpoints").mkdir(parents=True)
        expected = r"is a directory, not a checkpoint file; pass a \.ckpt file inside it"
    elif kind == "loop":
        (tmp_path / "other").symlink_to(target)
        target.symlink_to(tmp_path / "other")
        expected = r"is a symbolic link loop"
    else:
        target.symlink_to(tmp_path / "gone.ckpt")
        expected = r"is a symbolic link to '.*gone\.ckpt', which does not exist"
    eval_cfg = compose_config(tmp_path, [*EVAL, f"ckpt_path={target}"], config_name="eval")
    resume_cfg = compose_config(tmp_path, [*FAST, f"ckpt_path={target}"])
    for run, cfg in ((evaluate, eval_cfg), (train, resume_cfg)):
        with pytest.raises(CheckpointError, match=rf"^ckpt_path='.*given'.* {expected}") as raised:
            run(cfg)
        assert "\n" not in str(raised.value)
    # ckpt_path=last resolves in hydra.run.dir: a last.ckpt that is a directory is named too.
    (tmp_path / "run" / "checkpoints" / "last.ckpt").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"ckpt_path='last': .*last\.ckpt is a directory"):
        train(compose_config(tmp_path, [*FAST, "ckpt_path=last"]))


def test_a_method_name_that_is_a_path_never_names_the_eval_folder(tmp_path):
    from ssmri.checkpoints.load import checkpoint_method

    for method, folder in (
        ("mo_ei", "mo_ei"),
        ("../../../etc", "unknown"),
        ("${oc.env:HOME}", "unknown"),
        ("a/b", "unknown"),
        (["sup"], "unknown"),
    ):
        path = save(tmp_path, {"state_dict": {}, "hyper_parameters": {"method": method}}, "m.ckpt")
        assert checkpoint_method(str(path)) == folder, method
