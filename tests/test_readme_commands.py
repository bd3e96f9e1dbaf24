"""Every command in README.md's code blocks runs as written, each with ``debug=fast_dev_run``.

The ``python train.py``/``eval.py``/``predict.py`` lines and the ``make`` targets are read from
the README's code blocks, their placeholders filled with what this test makes (a trained run
folder, a folder of ISMRMRD scans), ``debug=fast_dev_run`` and an output folder under the test's
temporary directory appended, and each must exit 0. ``make`` runs with this interpreter as
``PY`` and without reinstalling (``-o .venv/.installed``).
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.raw_files import write_scan_folder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUNS = ("python train.py", "python eval.py", "python predict.py", "python -m ssmri")
#: README commands no test runs, and why.
NOT_RUN = {
    # The suites: the default one is the 7-minute suite this module is kept out of (it is slow),
    # and the slow one holds this module, so running it here would run this test again.
    "make test": "the whole default suite, about 7 minutes of its own",
    "make test-slow": "the slow suite, which holds this test",
    # Installs torch 2.14.1 and torchvision into .venv-reference (gigabytes) before it runs.
    "make test-reference": "builds .venv-reference, a multi-GB install",
    # Minutes of timing on every method; tests/test_bench.py runs one tiny measurement.
    "make bench": "minutes of measurements; tests/test_bench.py measures one tiny workload",
    # One eval.py per job, R and noise level of a sweep of trained checkpoints (a fast_dev_run
    # sweep keeps none); tests/test_robustness.py (slow) runs it on a two-job trained sweep.
    "make robustness SWEEP=<sweep dir>": "needs a sweep of trained checkpoints; see test_robustness.py",
}
#: Losses a README sweep is narrowed to: Hydra keeps the last value given for a key, so this
#: ``loss=`` in ARGS replaces the method list the Makefile builds (which is still computed).
SWEEP_LOSSES = "loss=sup,mc"


def readme_commands() -> list[str]:
    """The README's shell commands that run ssmri: one per line of its bash blocks, comments off."""
    commands, language = [], None  # the open block's language; None outside a block
    for line in README.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        if line.startswith("```"):
            language = None if language is not None else line[3:].strip()
            continue
        command = line.split(" #", 1)[0].strip()
        if language in ("bash", "sh", "") and (command.startswith(RUNS) or command.startswith("make ")):
            commands.append(command)
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_commands_and_every_skipped_one_is_in_it():
    assert any(c.startswith("python train.py") for c in COMMANDS) and any(
        c.startswith("make ") for c in COMMANDS
    )
    assert set(NOT_RUN) <= set(COMMANDS), f"stale entries: {set(NOT_RUN) - set(COMMANDS)}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    """A run trained with the defaults at ``debug=fast_dev_run``'s size for one epoch (so that it
    has ``best.ckpt`` and ``last.ckpt`` and resumes under ``debug=fast_dev_run``), a folder of
    ISMRMRD scans, and the environment every command runs in."""
    base = tmp_path_factory.mktemp("readme")
    env = {**os.environ, "SSMRI_CACHE_DIR": str(base / "cache"), "WANDB_MODE": "disabled"}
    run_dir = base / "run"
    train = [
        sys.executable,
        "train.py",
        "debug=fast_dev_run",
        "trainer.fast_dev_run=false",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        f"hydra.run.dir={run_dir}",
    ]
    done = subprocess.run(train, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    write_scan_folder(base / "scans")
    return {"base": base, "env": env, "run": run_dir, "scans": base / "scans"}


def filled(command: str, workspace: dict) -> str:
    """``command`` with the README's placeholders replaced by the test's folders."""
    command = command.replace("<run dir>", str(workspace["run"])).replace(
        "/data/scans", str(workspace["scans"])
    )
    assert "<" not in command, f"a README placeholder this test does not fill: {command}"
    return command


def as_run(command: str, workspace: dict, number: int) -> list[str]:
    """The argument list that runs ``command`` at ``debug=fast_dev_run`` with outputs in the test's folder."""
    out = workspace["base"] / f"command{number}"
    words = shlex.split(filled(command, workspace))
    if words[0] == "make":
        extra = ["debug=fast_dev_run"]
        if words[1] == "sweep":
            extra += [f"hydra.sweep.dir={out}", SWEEP_LOSSES]
        elif words[1] == "train":
            extra += [f"hydra.run.dir={out}"]
        else:
            extra = []
        make = ["make", "-o", ".venv/.installed", f"PY={sys.executable}", *words[1:]]
        return make + ([f"ARGS={' '.join(extra)}"] if extra else [])
    words[0] = sys.executable
    if words[1] == "-m":  # a plain module command: as written
        return words
    extra = ["debug=fast_dev_run"]
    if not any(word.startswith(("hydra.run.dir=", "hydra.sweep.dir=")) for word in words):
        extra.append(f"hydra.{'sweep' if '-m' in words else 'run'}.dir={out}")
    return words + extra


@pytest.mark.parametrize("number", range(len(COMMANDS)), ids=lambda number: COMMANDS[number])
def test_the_readme_command_runs(workspace, number):
    command = COMMANDS[number]
    if command in NOT_RUN:
        pytest.skip(NOT_RUN[command])
    arguments = as_run(command, workspace, number)
    done = subprocess.run(arguments, cwd=ROOT, env=workspace["env"], capture_output=True, text=True)
    assert done.returncode == 0, f"{shlex.join(arguments)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
