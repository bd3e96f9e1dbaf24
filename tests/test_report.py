"""The sweep report: one row per configuration, failed and unreadable jobs named, recomputation
from per-image CSVs."""

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from ssmri.report import SweepReport, paired_sign_flip_test, write_json, write_per_image, write_sweep_results

ROOT = Path(__file__).parents[1]


def fake_job(
    sweep: Path,
    name: str,
    method: str,
    seed: int,
    psnr: list[float],
    zf: float = 20.0,
    overrides: list[str] | None = None,
):
    """A finished job folder; ``overrides`` (as on the command line) go to ``.hydra/overrides.yaml``."""
    job = sweep / name
    job.mkdir(parents=True)
    if overrides is not None:
        write_overrides(job, overrides)
    values = torch.tensor(psnr)
    write_per_image(
        job / "test_per_image.csv",
        {
            "index": torch.arange(len(psnr)),
            "psnr": values,
            "ssim": values / 40,
            "psnr_zero_filled": torch.full_like(values, zf),
            "ssim_zero_filled": torch.full_like(values, 0.5),
        },
    )
    write_json(
        job / "metrics.json",
        {
            "loss": method,
            "seed": seed,
            "test/psnr": float(values.mean()),
            "test/psnr_zero_filled": zf,
            "train_seconds": 10.0,
            "num_params": 123,
            "epochs": 3,
        },
    )


def write_overrides(job: Path, overrides: list[str]) -> None:
    (job / ".hydra").mkdir(parents=True, exist_ok=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))


def test_table_recomputes_the_numbers_from_per_image_results(tmp_path):
    fake_job(tmp_path, "0-sup-s0", "sup", 0, [30.0, 32.0, 31.0, 33.0])
    fake_job(tmp_path, "1-ei-s0", "ei", 0, [28.0, 29.0, 30.0, 29.0])
    fake_job(tmp_path, "2-ei-s1", "ei", 1, [29.0, 30.0, 31.0, 30.0])
    fake_job(tmp_path, "3-mc-s0", "mc", 0, [20.0, 20.5, 19.5, 20.0])
    failed = tmp_path / "4-vortex-s0"
    failed.mkdir()
    failure = {"loss": "vortex", "seed": 0, "error": "Traceback\nValueError: boom"}
    write_json(failed / "failed.json", failure)
    rows = write_sweep_results(tmp_path)
    assert [r["method"] for r in rows] == ["sup", "ei", "mc", "vortex"]
    ei = rows[1]
    per_image = [28.5, 29.5, 30.5, 29.5]  # mean over the two seeds, image by image
    assert abs(ei["psnr"] - statistics.fmean(per_image)) < 1e-9
    assert abs(ei["psnr_std"] - statistics.stdev(per_image)) < 1e-9
    assert abs(ei["psnr_seed_spread"] - statistics.stdev([29.0, 30.0])) < 1e-9
    assert abs(ei["gap_to_sup"] - (statistics.fmean(per_image) - 31.5)) < 1e-9
    assert ei["seeds"] == 2 and "p_vs_best_ssl" not in ei  # ei is the best self-supervised
    assert rows[2]["p_vs_best_ssl"] < 0.2
    assert rows[3]["failed"] == 1 and "ValueError: boom" in rows[3]["error"]
    table = (tmp_path / "results.md").read_text()
    assert "| vortex | failed: 4-vortex-s0: ValueError: boom" in table
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == [
        "method",
        "psnr",
        "psnr_std",
        "ssim",
        "ssim_std",
        "psnr_zero_filled",
        "gap_to_sup",
        "p_vs_best_ssl",
    ]
    assert (tmp_path / "curves.png").is_file()


def test_paired_test_separates_real_from_noise_differences():
    rng = torch.Generator().manual_seed(0)
    base = (torch.randn(40, generator=rng) * 2 + 30).tolist()
    shifted = [v + 0.5 + 0.1 * float(torch.randn(1, generator=rng)) for v in base]
    noise = [v + float(torch.randn(1, generator=rng)) for v in base]
    assert paired_sign_flip_test(shifted, base) < 0.001
    assert paired_sign_flip_test(noise, base) > 0.01
    assert paired_sign_flip_test(base, base) == 1.0


def test_multirun_builds_the_table_names_its_failed_jobs_and_exits_1(tmp_path):
    env = {
        **os.environ,
        "SSMRI_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "loss=sup,mc",
        "physics.acceleration=4,64",
        "data=phantom",
        "data.image_size=32",
        "data.num_train=4",
        "data.num_val=2",
        "data.num_test=3",
        "data.batch_size=2",
        "trainer.max_epochs=1",
        "logger=csv",
        "model.denoiser.base_features=4",
        "model.denoiser.scales=2",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    # The table is written, then the multirun exits 1 with one line naming each failed job and why.
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2 of 4 jobs have no result: 1-sup-s0: ") and "; 3-mc-s0: " in last
    assert last.count("Error: acceleration must lie in") == 2  # failed.json's one-line message
    (sweep,) = (tmp_path / "outputs" / "train" / "multirun").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0-sup-s0", "1-sup-s0", "2-mc-s0", "3-mc-s0"]
    assert sum((sweep / j / "failed.json").is_file() for j in jobs) == 2
    assert "acceleration must lie in" in json.loads((sweep / "1-sup-s0" / "failed.json").read_text())["error"]
    table = (sweep / "results.md").read_text().split("Selection rules")[0]
    # One row per (method, acceleration): the failed R = 64 jobs are rows of their own.
    assert "| method | physics.acceleration |" in table and table.count("\n| ") == 6  # header, rule, 4 rows
    assert "| sup | 64 | failed: 1-sup-s0: " in table and "| mc | 4 | " in table
    assert "- 3-mc-s0 (loss=mc physics.acceleration=64 data=phantom " in table
    for name in ("results.csv", "samples.png", "curves.png"):
        assert (sweep / name).is_file(), name


def test_python_dash_m_ssmri_report_rebuilds_the_table(tmp_path):
    fake_job(tmp_path, "0-sup-s0", "sup", 0, [30.0, 32.0])
    fake_job(tmp_path, "1-mc-s0", "mc", 0, [20.0, 21.0])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "ssmri.report", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| sup | 31.00" in result.stdout and (tmp_path / "results.md").is_file()
    missing = subprocess.run(
        [sys.executable, "-m", "ssmri.report", str(tmp_path / "nope")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def rules_of(oracle: float, gt_free: float, last: float, fallback: bool = False) -> dict:
    def entry(rule, psnr, used=None, epoch=3):
        used = used or rule
        return {
            "rule": rule,
            "used": used,
            "oracle": used == "val_psnr",
            "epoch": epoch,
            "test/psnr": psnr,
            "test/ssim": psnr / 40,
            "test/nmse": 1 / psnr,
        }

    return {
        "val_loss": entry("val_loss", last if fallback else gt_free, "last" if fallback else None, 2),
        "last": entry("last", last),
        "val_psnr": entry("val_psnr", oracle, epoch=1),
    }


def test_one_sweep_gives_oracle_and_ground_truth_free_selection_side_by_side(tmp_path):
    for name, method, seed, rules in [
        ("0-ei-s0", "ei", 0, rules_of(oracle=30.0, gt_free=29.0, last=28.5)),
        ("1-ei-s1", "ei", 1, rules_of(oracle=31.0, gt_free=29.5, last=29.0)),
        ("2-uair-s0", "uair", 0, rules_of(oracle=20.0, gt_free=0.0, last=12.0, fallback=True)),
    ]:
        fake_job(tmp_path, name, method, seed, [rules["val_loss"]["test/psnr"]] * 4)
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        metrics.update(rules=rules, selection=rules["val_loss"], metrics_convention="fastmri")
        write_json(tmp_path / name / "metrics.json", metrics)
    write_sweep_results(tmp_path)
    table = (tmp_path / "results.md").read_text()
    assert table.startswith("Selection: val_loss; metric convention: fastmri")
    assert "metric convention: fastmri" in table.split("Selection rules side by side")[1]
    assert "val_psnr (oracle) psnr" in table
    rows = {
        line.split(" | ")[0]: line
        for line in table.splitlines()
        if line.startswith("| ei |") or line.startswith("| uair |")
    }
    # ei: oracle 30.5 against GT-free 29.25 over the two seeds: 1.25 dB from the oracle.
    assert "| 29.25 |" in rows["| ei"] and "| 30.50 |" in rows["| ei"] and rows["| ei"].endswith("| +1.25 |")
    # uair has nothing to select on: its val_loss column shows the last weights, labelled.
    assert "12.00 (last)" in rows["| uair"] and rows["| uair"].endswith("| +8.00 |")
    csv = (tmp_path / "results_selection.csv").read_text().splitlines()
    assert csv[0].startswith("method,val_loss_psnr,val_loss_ssim,val_loss_nmse,val_loss_epoch")
    ei = dict(zip(csv[0].split(","), next(r for r in csv[1:] if r.startswith("ei,")).split(",")))
    assert float(ei["oracle_gain_db"]) == 1.25 and float(ei["val_psnr_epoch"]) == 1


def test_a_row_is_one_configuration_and_seed_spread_is_across_seeds_only(tmp_path):
    # The sweep, loss=sup,mc physics.acceleration=2,8 seed=0,1; folder names say nothing of R.
    psnr = {
        ("sup", "2"): (30.0, 31.0),
        ("sup", "8"): (24.0, 25.0),
        ("mc", "2"): (17.77, 18.77),
        ("mc", "8"): (13.24, 13.74),
    }
    number = 0
    for (method, acceleration), by_seed in psnr.items():
        for seed, value in enumerate(by_seed):
            name = f"{number}-{method}-s{seed}"
            fake_job(
                tmp_path,
                name,
                method,
                seed,
                [value - 0.5, value + 0.5],
                overrides=[
                    "experiment=cpu_quick",
                    f"loss={method}",
                    f"physics.acceleration={acceleration}",
                    f"seed={seed}",
                ],
            )
            images = torch.rand(2, 2, 8, 8)
            torch.save(
                {"x": images, "zero_filled": images / int(acceleration), "x_hat": images * 0.9},
                tmp_path / name / "samples.pt",
            )
            number += 1
    rows = write_sweep_results(tmp_path)
    assert [(r["method"], r["setting"]) for r in rows] == [
        ("sup", {"physics.acceleration": "2"}),
        ("mc", {"physics.acceleration": "2"}),
        ("sup", {"physics.acceleration": "8"}),
        ("mc", {"physics.acceleration": "8"}),
    ]
    for row in rows:
        seeds = psnr[(row["method"], row["setting"]["physics.acceleration"])]
        assert row["seeds"] == 2 and abs(row["psnr"] - statistics.fmean(seeds)) < 1e-6
        assert abs(row["psnr_seed_spread"] - statistics.stdev(seeds)) < 1e-6
    # Gap to sup within the setting: mc at R = 8 against sup at R = 8, not against the best sup.
    assert abs(rows[3]["gap_to_sup"] - (statistics.fmean(psnr[("mc", "8")]) - 24.5)) < 1e-6
    assert rows[1].get("best_ssl") and rows[3].get("best_ssl")  # the only SSL method of each setting
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("method,physics.acceleration,psnr,")
    assert [line.split(",")[:2] for line in csv_lines[1:]] == [
        ["sup", "2"],
        ["mc", "2"],
        ["sup", "8"],
        ["mc", "8"],
    ]
    table = (tmp_path / "results.md").read_text()
    assert "| method | physics.acceleration | PSNR (dB) |" in table
    assert "| mc | 8 | 13.49 ± 0.71 |" in table and "swept key (physics.acceleration)" in table
    # One samples figure per setting: a different acceleration has a different zero-filled image.
    assert not (tmp_path / "samples.png").exists()
    for acceleration in ("2", "8"):
        assert (tmp_path / f"samples_physics.acceleration={acceleration}.png").stat().st_size > 0


def test_a_swept_group_choice_and_two_keys_each_get_a_column(tmp_path):
    for number, (splitter, width) in enumerate([("gaussian", "32"), ("gaussian", "64"), ("bernoulli", "32")]):
        fake_job(
            tmp_path,
            f"{number}-ssdu-s0",
            "ssdu",
            0,
            [20.0 + number, 21.0 + number],
            overrides=[f"splitter={splitter}", "loss=ssdu", f"++model.denoiser.base_features={width}"],
        )
    fake_job(
        tmp_path,
        "3-ssdu-s1",
        "ssdu",
        1,
        [30.0, 31.0],  # the seed, not a setting of its own
        overrides=["splitter=gaussian", "loss=ssdu", "++model.denoiser.base_features=32", "seed=1"],
    )
    rows = write_sweep_results(tmp_path)
    assert [tuple(r["setting"].values()) for r in rows] == [
        ("gaussian", "32"),
        ("gaussian", "64"),
        ("bernoulli", "32"),
    ]
    assert rows[0]["seeds"] == 2 and rows[0]["jobs"] == ["0-ssdu-s0", "3-ssdu-s1"]
    header = (tmp_path / "results.csv").read_text().splitlines()[0]
    assert header.startswith("method,splitter,model.denoiser.base_features,psnr,")


def test_jobs_that_repeat_a_seed_in_one_setting_are_flagged(tmp_path):
    fake_job(tmp_path, "0-mc-s0", "mc", 0, [20.0, 21.0], overrides=["loss=mc"])
    fake_job(tmp_path, "1-mc-s0", "mc", 0, [22.0, 23.0], overrides=["loss=mc"])
    write_sweep_results(tmp_path)
    assert "has seed [0] in more than one job (0-mc-s0, 1-mc-s0)" in (tmp_path / "results.md").read_text()


def test_a_failed_job_is_named_with_its_overrides_and_error_beside_its_row(tmp_path):
    fake_job(tmp_path, "0-mc-s0", "mc", 0, [20.0, 21.0], overrides=["loss=mc", "seed=0"])
    failed = tmp_path / "1-mc-s1"
    failed.mkdir()
    write_overrides(failed, ["loss=mc", "seed=1"])
    trace = "Traceback:\n  File x\nValueError: physics.acceleration must lie in [1, 32]"
    write_json(failed / "failed.json", {"loss": "mc", "seed": 1, "error": trace})
    (row,) = write_sweep_results(tmp_path)
    assert row["seeds"] == 1 and row["failed"] == 1
    assert row["error"] == "1-mc-s1: ValueError: physics.acceleration must lie in [1, 32]"
    table = (tmp_path / "results.md").read_text()
    assert "| 1 (+1 failed) |" in table
    assert "- 1-mc-s1 (loss=mc seed=1): ValueError: physics.acceleration must lie in [1, 32]" in table
    header, line = (tmp_path / "results.csv").read_text().splitlines()
    cells = dict(zip(header.split(","), next(csv.reader([line]))))
    assert cells["error"] == row["error"] and cells["failed"] == "1"


def test_the_multirun_callback_writes_the_table_then_exits_non_zero_naming_failed_jobs(tmp_path, capsys):
    fake_job(tmp_path, "0-sup-s0", "sup", 0, [30.0, 31.0], overrides=["loss=sup"])
    failed = tmp_path / "1-mc-s0"
    failed.mkdir()
    write_overrides(failed, ["loss=mc"])
    write_json(failed / "failed.json", {"loss": "mc", "seed": 0, "error": "Traceback\nOSError: no memory"})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit) as exit_info:
        SweepReport().on_multirun_end(config)
    message = str(exit_info.value.code)
    assert message.startswith("error: 1 of 2 jobs have no result: 1-mc-s0: OSError: no memory")
    assert "\n" not in message and str(tmp_path / "results.md") in message
    assert "| sup |" in capsys.readouterr().out and (tmp_path / "results.csv").is_file()
    shutil.rmtree(failed)
    fake_job(tmp_path, "1-mc-s0", "mc", 0, [20.0, 21.0], overrides=["loss=mc"])
    SweepReport().on_multirun_end(config)  # every job finished: no exit


def test_report_of_a_sweep_with_a_truncated_metrics_file_names_it_and_exits_1(tmp_path):
    fake_job(tmp_path, "0-sup-s0", "sup", 0, [30.0, 32.0], overrides=["loss=sup"])
    fake_job(tmp_path, "1-mc-s0", "mc", 0, [20.0, 21.0], overrides=["loss=mc"])
    fake_job(tmp_path, "2-ei-s0", "ei", 0, [25.0, 26.0], overrides=["loss=ei"])
    metrics = tmp_path / "2-ei-s0" / "metrics.json"
    metrics.write_text(metrics.read_text()[:40])  # cut off mid-write
    running = tmp_path / "3-ssdu-s0"
    write_overrides(running, ["loss=ssdu"])  # started, no result yet
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "ssmri.report", str(tmp_path), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("error: 2 of 4 jobs have no result: 2-ei-s0: ") and str(metrics) in line
    assert "3-ssdu-s0: no metrics.json or failed.json" in line
    assert "| sup | 31.00" in result.stdout and "| mc | 20.50" in result.stdout
    assert f"- 2-ei-s0 (loss=ei): {metrics}: unreadable JSON" in result.stdout
    assert "| ssdu | unfinished: 3-ssdu-s0: no metrics.json or failed.json" in result.stdout
    assert (out / "results.md").is_file() and not (tmp_path / "results.md").exists()  # --out leaves the sweep


def test_non_finite_results_are_failures_never_table_numbers(tmp_path):
    fake_job(tmp_path, "0-mc-s0", "mc", 0, [20.0, 21.0])
    fake_job(tmp_path, "1-ei-s0", "ei", 0, [20.0, 21.0])
    metrics = tmp_path / "0-mc-s0" / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"test/psnr": 20.5', '"test/psnr": NaN'))
    table = tmp_path / "1-ei-s0" / "test_per_image.csv"
    table.write_text(table.read_text().replace("21.000000", "-inf", 1))
    rows = write_sweep_results(tmp_path)
    errors = {r["method"]: r["error"] for r in rows}
    assert "psnr" not in rows[0] and "psnr" not in rows[1]
    assert errors["mc"] == (
        f"0-mc-s0: {metrics}: test/psnr is nan, not a finite number; this run has no result to report"
    )
    assert errors["ei"].startswith(f"1-ei-s0: {table}: column psnr is missing, empty or not finite")


def test_a_failed_jobs_one_line_message_is_preferred_to_its_tracebacks_last_line(tmp_path):
    failed = tmp_path / "0-mc-s0"
    failed.mkdir()
    trace = "Traceback:\n  File x\nssmri.errors.DataError: sample 3 is in train and test\nremove it from one"
    message = "DataError: sample 3 is in train and test; remove it from one"
    write_json(failed / "failed.json", {"loss": "mc", "seed": 0, "error": trace, "message": message})
    (row,) = write_sweep_results(tmp_path)
    assert row["error"] == "0-mc-s0: DataError: sample 3 is in train and test; remove it from one"
