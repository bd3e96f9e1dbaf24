"""Robustness at test time: each checkpoint of a sweep tested at other accelerations and noise levels."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from ssmri.report import write_json, write_per_image
from ssmri.report.robustness import EVAL_SCRIPT, levels, main, run_grid, write_report

ROOT = Path(__file__).parents[1]


def fake_job(
    sweep: Path, name: str, method: str, trained_at: float = 4.0, selected: str = "best.ckpt"
) -> Path:
    """A finished job: its metrics, per-image table, recorded config and its selected checkpoint."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / "checkpoints").mkdir()
    values = torch.tensor([25.0, 26.0])
    write_per_image(
        job / "test_per_image.csv", {"index": torch.arange(2), "psnr": values, "ssim": values / 40}
    )
    # As a run writes it: the absolute path of the pick where the job was trained.
    selection = {"rule": "val_loss", "checkpoint": f"/elsewhere/{name}/checkpoints/{selected}"}
    write_json(
        job / "metrics.json",
        {"loss": method, "seed": 0, "test/psnr": 25.5, "test/psnr_zero_filled": 20.0, "selection": selection},
    )
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"physics": {"sampling": "gaussian", "acceleration": trained_at, "noise_std": 0.0}})
    )
    (job / "checkpoints" / selected).write_bytes(b"weights")
    os.utime(job / "checkpoints" / selected, (1_000_000, 1_000_000))
    return job


def earlier_eval(out: Path, job: str, acceleration: float, noise: float, psnr: float, zero_filled: float):
    folder = out / job / f"R{acceleration:g}_noise{noise:g}"
    write_json(
        folder / "metrics.json",
        {"loss": job, "test/psnr": psnr, "test/ssim": psnr / 40, "test/psnr_zero_filled": zero_filled},
    )


def never_called(*args, **kwargs):
    raise AssertionError(f"eval.py was run although its result exists: {args}")


# (job, R, σ) -> (PSNR, zero-filled PSNR) of evaluations already on disk.
EARLIER = {
    ("0-sup-s0", 2, 0): (30.0, 24.0),
    ("0-sup-s0", 8, 0): (26.0, 18.0),
    ("0-sup-s0", 2, 0.1): (28.0, 22.0),
    ("0-sup-s0", 8, 0.1): (24.0, 16.0),
    ("1-mc-s0", 2, 0): (25.0, 24.0),
    ("1-mc-s0", 8, 0): (19.0, 18.5),
    ("1-mc-s0", 2, 0.1): (23.0, 22.0),
    ("1-mc-s0", 8, 0.1): (17.0, 16.5),
}


def test_results_on_disk_are_reused_and_tabled(tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "sweep" / "robustness"
    fake_job(sweep, "0-sup-s0", "sup", trained_at=8.0)
    fake_job(sweep, "1-mc-s0", "mc")
    for (job, r, s), (psnr, floor) in EARLIER.items():
        earlier_eval(out, job, r, s, psnr, floor)
    rows, problems = run_grid(sweep, out, (2.0, 8.0), (0.0, 0.1), runner=never_called)
    assert problems == [] and len(rows) == 8
    write_report(rows, problems, out)
    table = (out / "robustness.md").read_text()
    # sup was trained at R = 8, σ = 0: its cell is marked; the floor is the mean over the jobs.
    assert "| sup | 30.00 | 26.00* |" in table and "| mc | 25.00 | 19.00 |" in table
    assert "| zero-filled | 24.00 | 18.25 |" in table and "| zero-filled | 22.00 | 16.25 |" in table
    assert table.index("noise_std = 0\n") < table.index("noise_std = 0.1\n")
    lines = (out / "robustness.csv").read_text().splitlines()
    assert lines[0].startswith(
        "method,seed,job,trained_acceleration,trained_noise_std,acceleration,noise_std,psnr"
    )
    assert lines[1].startswith("sup,0,0-sup-s0,8,0,2,0,30,0.75,24,")
    assert (out / "robustness.png").stat().st_size > 10_000


def test_a_stale_or_missing_result_runs_eval_py_on_the_jobs_own_config(tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    job = fake_job(sweep, "0-sup-s0", "sup")
    earlier_eval(out, "0-sup-s0", 2, 0.05, 30.0, 24.0)
    os.utime(out / "0-sup-s0" / "R2_noise0.05" / "metrics.json", (1_000_000, 1_000_000))
    os.utime(job / "checkpoints" / "best.ckpt", (1_000_100, 1_000_100))  # trained again since: stale
    calls = []

    def failing_eval(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "Traceback ...\nerror: out of memory\n")

    rows, problems = run_grid(sweep, out, (2.0, 6.0), (0.05,), runner=failing_eval)
    assert rows == [] and len(calls) == 2  # the stale result and the missing one
    assert "physics.acceleration=2" in calls[0]
    command = calls[1]
    assert command[1] == str(EVAL_SCRIPT)
    assert command[2:6] == ["--config-dir", str((job / ".hydra").resolve()), "--config-name", "config"]
    assert f"ckpt_path='{(job / 'checkpoints' / 'best.ckpt').resolve()}'" in command
    assert "physics.acceleration=6" in command and "physics.noise_std=0.05" in command
    assert f"hydra.run.dir='{(out / '0-sup-s0' / 'R6_noise0.05').resolve()}'" in command
    assert problems[1].startswith("0-sup-s0 at R=6, noise_std=0.05: eval.py exited 1 (error: out of memory)")
    assert "error: out of memory" in (out / "0-sup-s0" / "R6_noise0.05" / "eval_stderr.txt").read_text()


def test_the_checkpoint_a_job_selected_is_tested_found_in_its_own_folder(tmp_path):
    """Adversarial methods select their last weights: their ``last.ckpt`` is tested, not skipped
    for want of a ``best.ckpt``; a job without its selected file is named, not tested."""
    sweep = tmp_path / "sweep"
    fake_job(sweep, "0-adversarial-s0", "adversarial", selected="last.ckpt")
    fake_job(sweep, "1-mc-s0", "mc")
    (sweep / "1-mc-s0" / "checkpoints" / "best.ckpt").unlink()
    commands = []

    def record(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, "", "stub")

    rows, problems = run_grid(sweep, tmp_path / "out", (2.0,), (0.0,), runner=record)
    assert len(commands) == 1
    assert (
        f"ckpt_path='{(sweep / '0-adversarial-s0' / 'checkpoints' / 'last.ckpt').resolve()}'" in commands[0]
    )
    assert any("1-mc-s0: no checkpoints/best.ckpt" in line for line in problems)


def test_a_report_written_elsewhere_reads_the_sweeps_own_evaluations(tmp_path):
    """``--out docs/...``: what ``<sweep>/robustness`` already holds is read, not evaluated again;
    only what is missing there runs, into the new folder."""
    sweep = tmp_path / "sweep"
    fake_job(sweep, "0-sup-s0", "sup")
    earlier_eval(sweep / "robustness", "0-sup-s0", 2, 0, 30.0, 24.0)
    calls = []

    def record(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "stub")

    rows, problems = run_grid(sweep, tmp_path / "docs", (2.0, 8.0), (0.0,), runner=record)
    assert [row["psnr"] for row in rows] == [30.0]
    assert rows[0]["eval_dir"] == str(sweep / "robustness" / "0-sup-s0" / "R2_noise0")
    assert (
        len(calls) == 1
        and f"hydra.run.dir='{(tmp_path / 'docs' / '0-sup-s0' / 'R8_noise0').resolve()}'" in calls[0]
    )


def test_bad_levels_and_folders_are_named(tmp_path):
    assert levels("2,4,4,12", "--accelerations", 1.0) == (2.0, 4.0, 12.0)
    with pytest.raises(ValueError, match="--noise '0,x': give comma-separated numbers"):
        levels("0,x", "--noise", 0.0)
    with pytest.raises(ValueError, match=">= 1"):
        levels("0.5", "--accelerations", 1.0)
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no finished job with its selected checkpoint"):
        main([str(tmp_path / "empty")])


@pytest.mark.slow
def test_two_tiny_checkpoints_through_eval_py(tmp_path, monkeypatch):
    """Two 1-epoch runs (sup, mc) tested at R = 2 and 4: R = 4 is how they were trained and tested."""
    env = {
        **os.environ,
        "SSMRI_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(ROOT),
    }
    sweep = tmp_path / "sweep"
    trained = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            "loss=sup,mc",
            "data=phantom",
            "data.image_size=32",
            "data.num_train=8",
            "data.num_val=4",
            "data.num_test=4",
            "data.batch_size=4",
            "model.denoiser.base_features=8",
            "trainer.accelerator=cpu",
            "logger=none",
            "trainer.max_epochs=1",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    monkeypatch.setenv("SSMRI_CACHE_DIR", env["SSMRI_CACHE_DIR"])  # eval.py inherits it
    main([str(sweep), "--accelerations", "2,4", "--noise", "0"])
    out = sweep / "robustness"
    for job in ("0-sup-s0", "1-mc-s0"):
        tested = json.loads((sweep / job / "metrics.json").read_text())
        at_4 = json.loads((out / job / "R4_noise0" / "metrics.json").read_text())
        at_2 = json.loads((out / job / "R2_noise0" / "metrics.json").read_text())
        # Same weights, data and physics as the job's own test: the same numbers.
        assert at_4["test/psnr"] == pytest.approx(tested["test/psnr"], abs=1e-4)
        assert at_2["test/psnr_zero_filled"] > at_4["test/psnr_zero_filled"] + 1.0  # twice the samples
        recorded = yaml.safe_load((out / job / "R2_noise0" / ".hydra" / "config.yaml").read_text())
        trained_with = yaml.safe_load((sweep / job / ".hydra" / "config.yaml").read_text())
        assert recorded["physics"] == {**trained_with["physics"], "acceleration": 2, "noise_std": 0}
        assert recorded["data"] == trained_with["data"]
    rows = (out / "robustness.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and (out / "robustness.png").is_file()
    written = (out / "0-sup-s0" / "R2_noise0" / "metrics.json").stat().st_mtime
    main([str(sweep), "--accelerations", "2,4", "--noise", "0"])  # all on disk: nothing runs again
    assert (out / "0-sup-s0" / "R2_noise0" / "metrics.json").stat().st_mtime == written
