"""Rank stability across scenarios, on small sweep folders the tests write."""

import math
from pathlib import Path

import pytest

from ssmri.report import write_json
from ssmri.report.scenarios import main, pair_tau, ranks, write_report
from tests.helpers.sweeps import write_finished_job


def fake_sweep(
    root: Path, scenario: str | None, psnr: dict[str, float], failed: tuple[str, ...] = ()
) -> Path:
    """One finished job per method (3 test images around its PSNR), one failed job per ``failed``."""
    for i, (method, value) in enumerate(psnr.items()):
        write_finished_job(
            root / f"{i}-{method}",
            method,
            [value - 1.0, value, value + 1.0],
            train_seconds=1.0,
            num_params=1,
            epochs=1,
            scenario=scenario,
        )
    for k, method in enumerate(failed):
        job = root / f"{len(psnr) + k}-{method}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- loss={method}\n- seed=0\n")
        write_json(job / "failed.json", {"loss": method, "seed": 0, "error": "RuntimeError: diverged"})
    return root


NOISELESS = {"sup": 30.0, "a": 28.0, "b": 27.9, "c": 25.0}
NOISY = {"sup": 29.0, "a": 26.0, "b": 27.0, "c": 25.5}
MULTICOIL = {"sup": 31.0, "a": 29.0, "c": 29.5}  # b failed in this scenario


def three_scenarios(tmp_path: Path) -> list[Path]:
    return [
        fake_sweep(tmp_path / "noiseless", "noiseless", NOISELESS),
        fake_sweep(tmp_path / "noisy", "noisy", NOISY),
        fake_sweep(tmp_path / "multicoil", "multicoil", MULTICOIL, failed=("b",)),
    ]


def test_methods_within_the_tie_margin_share_a_place():
    assert ranks({"x": 30.0, "y": 29.9, "z": 29.75, "w": 20.0}) == {"x": 1, "y": 1, "z": 2, "w": 4}
    assert ranks({"x": 30.0, "y": 29.9}, tie_db=0.0) == {"x": 1, "y": 2}


def test_tau_b_counts_close_methods_as_tied_and_needs_two_shared_methods():
    # Over a, b, c, sup: a and b are 0.1 dB apart in NOISELESS (tied), ordered b > a in NOISY;
    # the other five pairs agree: τ-b = 5 / √((6 - 1)(6 - 0)).
    shared, tau = pair_tau(NOISELESS, NOISY)
    assert shared == ["a", "b", "c", "sup"] and tau == pytest.approx(5 / math.sqrt(30))
    # Without the margin the pair is discordant: (5 - 1) / 6.
    assert pair_tau(NOISELESS, NOISY, tie_db=0.0)[1] == pytest.approx(4 / 6)
    shared, tau = pair_tau({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})
    assert shared == ["a"] and math.isnan(tau)


def test_report_of_three_scenarios_with_a_method_missing_in_one(tmp_path):
    report = write_report(three_scenarios(tmp_path), tmp_path / "out")
    assert list(report["scenarios"]) == ["noiseless", "noisy", "multicoil"]
    assert report["ranks"]["noiseless"] == {"sup": 1, "a": 2, "b": 2, "c": 4}
    assert report["ranks"]["multicoil"] == {"sup": 1, "c": 2, "a": 3}
    pairs = {(a, b): (shared, tau) for a, b, shared, tau in report["pairs"]}
    assert pairs["noiseless", "noisy"][1] == pytest.approx(5 / math.sqrt(30))
    # b failed in multicoil: left out of those pairs; c > a there, a > c elsewhere: (2 - 1) / 3.
    assert pairs["noiseless", "multicoil"] == (["a", "c", "sup"], pytest.approx(1 / 3))
    assert pairs["noisy", "multicoil"] == (["a", "c", "sup"], pytest.approx(1 / 3))
    table = (tmp_path / "out" / "scenarios.md").read_text()
    assert "| b | 27.90 | 2 | 27.00 | 2 | missing | – |" in table
    assert "| noiseless – noisy | 4 | 0.91 |" in table and "| noisy – multicoil | 3 | 0.33 |" in table
    rows = (tmp_path / "out" / "scenarios.csv").read_text().splitlines()
    assert rows[0] == (
        "method,noiseless_psnr,noiseless_rank,noisy_psnr,noisy_rank,multicoil_psnr,multicoil_rank"
    )
    assert rows[1].startswith("sup,30,1,29,1,31,1") and "b,27.9,2,27,2,," in rows
    pair_rows = (tmp_path / "out" / "scenario_pairs.csv").read_text().splitlines()
    assert pair_rows[1].startswith("noiseless,noisy,4,0.9128")
    assert (tmp_path / "out" / "scenarios.png").stat().st_size > 10_000


def test_the_command_line_writes_beside_the_sweeps_and_names_bad_input(tmp_path, capsys):
    sweeps = three_scenarios(tmp_path)
    main([str(s) for s in sweeps[:2]])
    assert "| noiseless – noisy | 4 | 0.91 |" in capsys.readouterr().out
    assert (tmp_path / "scenarios" / "scenarios.png").is_file()
    with pytest.raises(SystemExit, match="both scenario 'noisy'"):
        main([str(sweeps[1]), str(sweeps[1]), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="no finished job's metrics.json names a scenario"):
        main([str(fake_sweep(tmp_path / "plain", None, {"a": 1.0})), str(sweeps[0])])
    with pytest.raises(SystemExit, match="pass at least 2"):
        main([str(sweeps[0])])
    with pytest.raises(SystemExit, match="tie margin -1.0 dB"):
        main([str(s) for s in sweeps] + ["--tie-db", "-1"])
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "nowhere"), str(sweeps[0])])
