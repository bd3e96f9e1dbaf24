"""The entry points: ssmri's errors as one line on stderr, exit code 1; the traceback on request."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssmri.errors import ConfigError
from ssmri.runner.cli import _exit_with_one_line
from tests.helpers.faults import payload_checkpoint

ROOT = Path(__file__).parents[1]


def run(script: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "SSMRI_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(ROOT),
    }
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_bad_value_ends_the_run_with_one_line_naming_the_key(tmp_path):
    result = run("train.py", ["debug=fast_dev_run", "data.image_size=32.5"], tmp_path)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        "error: data.image_size must be an integer, got 32.5; e.g. a whole number of pixels or samples"
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_hydra_full_error_brings_the_traceback_back_and_bugs_keep_theirs(monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exited:
        _exit_with_one_line(ConfigError("seed must be an integer"))
    assert exited.value.code == 1 and capsys.readouterr().err == "error: seed must be an integer\n"
    with pytest.raises(KeyError):  # not ssmri's own error: raised with its traceback
        _exit_with_one_line(KeyError("bug"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError):
        _exit_with_one_line(ConfigError("seed must be an integer"))


def test_eval_of_a_checkpoint_with_a_payload_is_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "payload-ran"
    checkpoint = payload_checkpoint(tmp_path / "evil.ckpt", marker)
    result = run("eval.py", [f"ckpt_path={checkpoint}", "data=phantom"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "evil.ckpt" in line and "could run code" in line and "ssmri.checkpoints convert" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    "args, key, folder",
    [
        (["hydra.run.dir={blocker}/run"], "hydra.run.dir", "run"),
        (["-m", "hydra.sweep.dir={blocker}/sweep", "seed=0,1"], "hydra.sweep.dir", "sweep"),
    ],
)
def test_an_unwritable_run_folder_is_one_line_before_hydra_creates_it(tmp_path, args, key, folder):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the run folder should go")  # root ignores chmod
    result = run("train.py", [*(a.format(blocker=blocker) for a in args), "debug=fast_dev_run"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert error_lines(result.stderr) == [
        f"error: {key}: cannot write to {blocker}/{folder} (Not a directory); make it "
        f"writable or point {key} elsewhere. Nothing was trained"
    ]
    assert not (tmp_path / "cache").exists()
