"""SSIBench's published leaderboard beside a sweep: rank statistics, the column, the wandb summary run."""

import json
from pathlib import Path

import pytest
import torch

from ssmri.report import write_json, write_per_image, write_sweep_results
from ssmri.report.leaderboard import (
    average_ranks,
    compare_with_leaderboard,
    kendall_tau_b,
    load_leaderboard,
    published,
    scenario_methods,
    spearman,
)

# docs/results.md: the noiseless cpu_quick sweep (PSNR, dB) that the issue compared by hand.
CPU_SWEEP = {
    "sup": 29.34,
    "mo_ei": 27.43,
    "ei": 27.30,
    "weighted_ssdu": 27.00,
    "moi": 26.85,
    "diffeo_ei": 26.42,
    "vortex": 25.51,
    "ssdu": 25.24,
    "noise2inverse": 24.66,
    "mc": 21.69,
    "adversarial": 20.95,
    "uair": 9.79,
}


def test_average_ranks_share_ties():
    assert average_ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.parametrize(
    "pair",
    [
        ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
        ([1, 1, 2, 3, 3, 3], [2, 1, 2, 2, 5, 4]),
        ([0.3, -1.0, 2.5, 2.5, 7.0, 1.0, 1.0], [1, 2, 3, 3, 1, 0, 9]),
    ],
)
def test_rank_correlations_match_scipy_with_ties(pair):
    stats = pytest.importorskip("scipy.stats")
    a, b = pair
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b, variant="b").statistic, abs=1e-12)


def test_rank_correlations_of_identical_and_reversed_orders():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        spearman([1.0], [2.0])


def test_the_cpu_sweep_of_the_readme_gives_rho_094_against_the_published_noiseless_order():
    comparison = compare_with_leaderboard(CPU_SWEEP, "noiseless")
    # Diffeo-EI is ssmri's own method, not on the leaderboard: the 11 others are compared.
    assert "diffeo_ei" not in comparison["methods"] and len(comparison["methods"]) == 11
    assert comparison["spearman"] == pytest.approx(103 / 110)  # 0.936..., 0.94 to two places
    assert round(comparison["spearman"], 2) == 0.94
    assert comparison["kendall_tau_b"] == pytest.approx(45 / 55)  # 0.818...


def test_leaderboard_names_its_source_and_every_scenario_and_method_is_ours():
    board = load_leaderboard()
    assert "arXiv:2502.14009" in board["source"]
    losses = {p.stem for p in (Path(__file__).parents[1] / "ssmri" / "conf" / "loss").glob("*.yaml")}
    for scenario in ("noiseless", "noisy", "single", "multicoil"):
        assert set(published(scenario)) <= losses, scenario
        # Each scenario's preset sweeps exactly the leaderboard's methods.
        assert set(scenario_methods(scenario)) == set(published(scenario)), scenario
    assert published("noisy")["robust_mo_ei"] == (29.72, 0.8409)


def fake_job(
    sweep: Path, name: str, method: str, psnr: float, scenario: str | None, overrides: list[str] | None = None
):
    job = sweep / name
    job.mkdir(parents=True)
    if overrides is not None:
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    values = torch.tensor([psnr - 0.5, psnr + 0.5])
    write_per_image(
        job / "test_per_image.csv",
        {
            "index": torch.arange(2),
            "psnr": values,
            "ssim": values / 40,
            "psnr_zero_filled": torch.full_like(values, 20.0),
            "ssim_zero_filled": torch.full_like(values, 0.5),
        },
    )
    write_json(
        job / "metrics.json",
        {
            "loss": method,
            "seed": 0,
            "test/psnr": psnr,
            "test/psnr_zero_filled": 20.0,
            "train_seconds": 1.0,
            "num_params": 1,
            "epochs": 1,
            "scenario": scenario,
        },
    )


def test_a_scenario_sweep_gets_the_published_column_and_correlations(tmp_path):
    for i, (method, psnr) in enumerate(CPU_SWEEP.items()):
        fake_job(tmp_path, f"{i}-{method}", method, psnr, "noiseless")
    rows = write_sweep_results(tmp_path)
    by_method = {r["method"]: r for r in rows}
    assert by_method["mo_ei"]["published_psnr"] == 32.14 and "published_psnr" not in by_method["diffeo_ei"]
    table = (tmp_path / "results.md").read_text()
    assert "published PSNR" in table and "| 32.14 |" in table
    assert "Spearman ρ = 0.94" in table and "Kendall τ-b = 0.82" in table
    assert "published_psnr" in (tmp_path / "results.csv").read_text().splitlines()[0]
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_a_sweep_outside_the_scenarios_has_no_published_column(tmp_path):
    fake_job(tmp_path, "0-mc", "mc", 21.0, None)
    fake_job(tmp_path, "1-ei", "ei", 27.0, None)
    write_sweep_results(tmp_path)
    assert "published PSNR" not in (tmp_path / "results.md").read_text()


def test_mixed_scenarios_are_refused(tmp_path):
    fake_job(tmp_path, "0-mc", "mc", 21.0, "noiseless")
    fake_job(tmp_path, "1-mc", "mc", 22.0, "noisy")
    with pytest.raises(ValueError, match="mixes SSIBench scenarios"):
        write_sweep_results(tmp_path)


def test_the_sweep_summary_run_goes_to_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    for i, (method, psnr) in enumerate(CPU_SWEEP.items()):
        fake_job(tmp_path, f"{i}-{method}", method, psnr, "noiseless")
    write_sweep_results(tmp_path, wandb_mode="offline")
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (records,) = run_dir.glob("run-*.wandb")
    data = records.read_bytes()
    for key in (b"sweep/results", b"sweep/comparison", b"spearman", b"kendall_tau_b", str(tmp_path).encode()):
        assert key in data, key
    tables = list((run_dir / "files" / "media" / "table").rglob("*.table.json"))
    (table,) = tables
    content = json.loads(table.read_text())
    assert "published_psnr" in content["columns"] and len(content["data"]) == len(CPU_SWEEP)
    assert list((run_dir / "files" / "media" / "images").rglob("*.png"))


def test_a_sweep_over_a_second_key_correlates_each_setting_apart(tmp_path):
    # The ablation's shape: loss x model.denoiser.base_features. At width 32 the sweep keeps the
    # published order; at 64 it reverses it. One correlation over both would mix the two.
    ordered = {"mo_ei": 27.4, "ei": 27.3, "ssdu": 25.2, "mc": 21.7}
    reversed_order = {m: 50.0 - v for m, v in ordered.items()}
    number = 0
    for width, psnr in (("32", ordered), ("64", reversed_order)):
        for method, value in psnr.items():
            fake_job(
                tmp_path,
                f"{number}-{method}-f{width}",
                method,
                value,
                "noiseless",
                overrides=["scenario=noiseless", f"loss={method}", f"model.denoiser.base_features={width}"],
            )
            number += 1
    rows = write_sweep_results(tmp_path, wandb_mode=None)
    assert len(rows) == 8 and all(r["published_psnr"] for r in rows)
    table = (tmp_path / "results.md").read_text()
    for width, rho in (("32", "1.00"), ("64", "-1.00")):
        assert f"at model.denoiser.base_features={width} (ei, mc, mo_ei, ssdu): Spearman ρ = {rho}," in table
    assert table.count("arXiv:2502.14009") == 1  # the source once, then one line per setting
    best = [line.split(" | ")[0] for line in table.splitlines() if "(best SSL)" in line]
    assert best == ["| mo_ei", "| mc"]  # the best self-supervised row of each setting
    assert (tmp_path / "comparison.png").stat().st_size > 0
