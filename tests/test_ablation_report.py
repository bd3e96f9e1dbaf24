"""benchmarks/ablation.py: the splitting-family ablation's table and figure from sweep folders."""

import csv

from benchmarks.ablation import main, rows_of
from ssmri.report import write_json
from tests.test_report import fake_job, write_overrides


def ablation_job(sweep, name, method, width, splitter, psnr, oracle, curve, steps=84):
    overrides = [
        "experiment=cpu_quick",
        "scenario=noiseless",
        f"splitter={splitter}",
        f"weighted_splitter={'ssibench' if splitter == 'bernoulli' else 'tutorial'}",
        f"loss={method}",
        f"model.denoiser.base_features={width}",
    ]
    fake_job(sweep, name, method, 0, [psnr - 0.5, psnr + 0.5], zf=21.6, overrides=overrides)
    job = sweep / name
    write_json(
        job / "metrics.json",
        {
            "loss": method,
            "seed": 0,
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
    assert "| noiseless | ssdu | 32 | SSIBench | 84 | 19.60 | 20.80 | -2.00 |" in table
    assert (tmp_path / "out" / "ablation.png").stat().st_size > 0
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out2")]) == 1
    assert "no finished job" in capsys.readouterr().err
