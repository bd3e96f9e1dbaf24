"""benchmarks/ablation.py: the splitting-family ablation's table and figure from sweep folders."""

import csv

import pytest

from benchmarks.ablation import main, published_order, rows_of
from ssmri.report import write_json
from tests.test_report import fake_job, write_overrides


def ablation_job(sweep, name, method, width, splitter, psnr, oracle, curve, steps=84, seed=0):
    overrides = [
        "experiment=cpu_quick",
        "scenario=noiseless",
        f"splitter={splitter}",
        f"weighted_splitter={'ssibench' if splitter == 'bernoulli' else 'tutorial'}",
        f"loss={method}",
        f"model.denoiser.base_features={width}",
        f"seed={seed}",
    ]
    fake_job(sweep, name, method, seed, [psnr - 0.5, psnr + 0.5], zf=21.6, overrides=overrides)
    job = sweep / name
    write_json(
        job / "metrics.json",
        {
            "loss": method,
            "seed": seed,
            "scenario": "noiseless",
            "global_step": steps,
            "train_seconds": 60.0,
            "test/psnr": psnr,
            "test/psnr_zero_filled": 21.6,
            "selection": {"epoch": 3},
            "rules": {"val_psnr": {"test/psnr": oracle}},
        },
    )
    (job / "csv").mkdir()
    with open(job / "csv" / "metrics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "step", "train/loss", "val/psnr", "val/psnr_zero_filled"])
        for epoch, value in enumerate(curve):
            writer.writerow([epoch, 10 + 28 * epoch, 0.1, "", ""])  # a training row: no validation
            writer.writerow([epoch, 27 + 28 * epoch, "", value, 21.4])


def test_rows_name_width_and_splitters_and_read_the_validation_curve(tmp_path):
    sweep = tmp_path / "noiseless-ssibench"
    ablation_job(sweep, "0-mc-f32", "mc", 32, "bernoulli", 21.6, 21.6, [21.0, 21.5, 21.6])
    ablation_job(sweep, "1-ssdu-f64", "ssdu", 64, "gaussian", 25.2, 25.3, [22.0, 24.0, 25.2])
    write_overrides(sweep / "2-weighted_ssdu-f32", ["loss=weighted_ssdu"])  # running: listed, never a row
    rows, problems = rows_of([sweep])
    by_method = {row["method"]: row for row in rows}
    assert by_method["mc"]["splitters"] == "-"  # MC reads no splitter
    assert (by_method["ssdu"]["width"], by_method["ssdu"]["splitters"]) == (64, "tutorial")
    assert by_method["ssdu"]["curve"] == ([28, 56, 84], [22.0, 24.0, 25.2])
    assert by_method["ssdu"]["val_zero_filled"] == 21.4  # the curve's own floor, not the test images'
    assert len(problems) == 1 and "2-weighted_ssdu-f32" in problems[0]


def test_main_writes_table_csv_and_figure_and_refuses_an_empty_sweep(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    ablation_job(sweep, "0-ssdu-f32", "ssdu", 32, "bernoulli", 19.6, 20.8, [20.4, 20.5, 19.6])
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    table = (tmp_path / "out" / "ablation-table.md").read_text()
    assert "| noiseless | ssdu | 32 | SSIBench | 84 | 0 | 19.60 | 20.80 | -2.00 |" in table
    assert (tmp_path / "out" / "ablation.png").stat().st_size > 0
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out2")]) == 1
    assert "no finished job" in capsys.readouterr().err


def test_the_published_order_per_splitter_setting_and_budget(tmp_path):
    """Published noiseless order: mo_ei > weighted_ssdu > noise2inverse > ssdu > mc. At 84 steps the
    SSIBench-split methods are reversed against it (ρ = -1 over the four), at 504 in its order
    (ρ = 1); a second seed and the tutorial's splitters are not mixed in."""
    sweep = tmp_path / "ladder"
    curve = [21.0, 22.0, 23.0]
    for steps, values in ((84, (20.0, 21.0, 22.0, 23.0)), (504, (26.0, 25.0, 24.0, 22.0))):
        for i, (method, psnr) in enumerate(zip(("weighted_ssdu", "noise2inverse", "ssdu", "mc"), values)):
            ablation_job(sweep, f"{steps}-{i}-{method}", method, 32, "bernoulli", psnr, psnr, curve, steps)
        ablation_job(sweep, f"{steps}-ssdu-tutorial", "ssdu", 32, "gaussian", 30.0, 30.0, curve, steps)
        ablation_job(sweep, f"{steps}-mc-seed1", "mc", 32, "bernoulli", 40.0, 40.0, curve, steps, seed=1)
    rows, _ = rows_of([sweep])
    assert {r["seed"] for r in rows} == {0, 1}
    orders = {(o["splitters"], o["steps"]): o for o in published_order(rows)}
    assert set(orders) == {("SSIBench", 84), ("SSIBench", 504)}  # the tutorial's: ssdu and mc only
    assert orders[("SSIBench", 84)]["spearman"] == pytest.approx(-1.0)
    assert orders[("SSIBench", 504)]["spearman"] == pytest.approx(1.0)
    assert orders[("SSIBench", 504)]["order"] == ["weighted_ssdu", "noise2inverse", "ssdu", "mc"]
    ablation_job(sweep, "504-again-ssdu", "ssdu", 32, "bernoulli", 24.5, 24.5, curve, 504)
    with pytest.raises(ValueError, match="two jobs of ssdu with SSIBench splitters.*keep one"):
        published_order(rows_of([sweep])[0])
