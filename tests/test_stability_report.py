"""The budget-stability report, on small sweep folders the tests write."""

import json
import math
from dataclasses import astuple
from pathlib import Path

import pytest
import torch

from ssmri.report import write_json
from ssmri.report.stability import bootstrap_tau, build, main, stable_budgets, swapped_pairs
from tests.helpers.sweeps import write_finished_job


def fake_sweep(root: Path, scenario: str, steps: int, psnr: dict[str, float], spread: float = 1.0) -> Path:
    """One finished job per method, tested on 4 images spread around its PSNR."""
    for i, (method, value) in enumerate(psnr.items()):
        values = [value - spread, value, value, value + spread]
        write_finished_job(
            root / f"{i}", method, values, scenario=scenario, global_step=steps, epochs=steps // 28
        )
    return root


def test_pairs_swap_only_beyond_the_tie_margin():
    before = {"a": 30.0, "b": 29.0, "c": 25.0, "d": 24.95}
    after = {"a": 29.0, "b": 30.0, "c": 25.1, "d": 25.2}  # a, b swap by 1 dB; c, d within 0.2 dB
    assert swapped_pairs(before, after, tie_db=0.2) == [("a", "b")]
    assert swapped_pairs(before, after, tie_db=1.0) == []  # 1 dB apart is a tie at a 1 dB margin


def test_bootstrap_tau_has_a_known_answer_when_every_resample_agrees():
    # Methods 5 dB apart on every image: every resample orders them the same way.
    low = {m: [v, v + 0.5, v - 0.5] for m, v in {"a": 20.0, "b": 25.0, "c": 30.0}.items()}
    same = {m: [x + 1 for x in values] for m, values in low.items()}
    reversed_ = {"a": low["c"], "b": low["b"], "c": low["a"]}
    assert astuple(bootstrap_tau(low, same, draws=200)) == pytest.approx((1.0, 1.0, 1.0))
    assert astuple(bootstrap_tau(low, reversed_, draws=200)) == pytest.approx((-1.0, -1.0, -1.0))


def test_bootstrap_interval_widens_with_noisy_images_and_brackets_the_point():
    torch.manual_seed(0)
    noise = torch.randn(3, 40).tolist()
    low = {
        m: [v + 3 * e for e in noise[k]] for k, (m, v) in enumerate({"a": 20.0, "b": 20.5, "c": 21.0}.items())
    }
    high = {"a": low["b"], "b": low["a"], "c": low["c"]}
    tau = bootstrap_tau(low, high, draws=300)
    assert tau.low <= tau.point <= tau.high
    assert tau.high - tau.low > 0.5  # 3 dB of image noise against 0.5 dB gaps: the order is not known


def test_bootstrap_refuses_budgets_tested_on_different_images():
    with pytest.raises(ValueError, match="different numbers of images"):
        bootstrap_tau({"a": [1.0, 2.0], "b": [3.0, 4.0]}, {"a": [1.0], "b": [3.0]})


def test_report_finds_the_smallest_budget_stable_in_every_scenario(tmp_path, capsys):
    ladders = {
        # noiseless settles after 168 steps: b overtakes a between 84 and 168, then nothing moves
        "noiseless": [
            {"sup": 30, "a": 25, "b": 23, "c": 20},
            {"sup": 31, "a": 25, "b": 26, "c": 21},
            {"sup": 32, "a": 26, "b": 27, "c": 22},
        ],
        # multicoil is stable from 84 steps on
        "multicoil": [
            {"sup": 30, "a": 26, "b": 24, "c": 20},
            {"sup": 31, "a": 27, "b": 25, "c": 21},
            {"sup": 32, "a": 28, "b": 26, "c": 22},
        ],
    }
    folders = [
        fake_sweep(tmp_path / f"{scenario}-{steps}", scenario, steps, psnr)
        for scenario, ladder in ladders.items()
        for steps, psnr in zip((84, 168, 336), ladder)
    ]
    report = build(folders, draws=100)
    by_pair = {(p.scenario, p.steps): p for p in report["pairs"]}
    assert by_pair["noiseless", 84].swapped == [("a", "b")]
    assert by_pair["noiseless", 84].tau.point < 0.8
    assert by_pair["noiseless", 168].tau.point == pytest.approx(1.0)
    assert by_pair["multicoil", 84].tau.point == pytest.approx(1.0)
    assert stable_budgets(report["pairs"], ["noiseless", "multicoil"]) == [168]
    assert stable_budgets(report["pairs"], ["multicoil"]) == [84, 168]

    main([str(f) for f in folders] + ["--out", str(tmp_path / "out"), "--tie-db", "0.2"])
    text = (tmp_path / "out" / "stability.md").read_text()
    assert "the smallest is 168 steps" in text and "a → b" in text
    assert (tmp_path / "out" / "stability.png").stat().st_size > 0
    rows = (tmp_path / "out" / "stability.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[1].startswith("noiseless,84,168,4,")
    assert "the smallest is 168 steps" in capsys.readouterr().out


def test_a_method_missing_at_one_budget_is_left_out_of_that_pair(tmp_path):
    folders = [
        fake_sweep(tmp_path / "a", "noiseless", 84, {"sup": 30, "a": 25, "b": 23}),
        fake_sweep(tmp_path / "b", "noiseless", 168, {"sup": 31, "a": 26}),  # b failed here
    ]
    (pair,) = build(folders, draws=50)["pairs"]
    assert pair.methods == ["a", "sup"]
    assert pair.tau.point == pytest.approx(1.0)


def test_budgets_that_are_not_doubles_are_compared_but_never_called_stable(tmp_path):
    folders = [
        fake_sweep(tmp_path / "a", "noiseless", 84, {"sup": 30, "a": 25}),
        fake_sweep(tmp_path / "b", "noiseless", 252, {"sup": 31, "a": 26}),
    ]
    report = build(folders, draws=50)
    assert not report["pairs"][0].doubled
    assert stable_budgets(report["pairs"], ["noiseless"]) == []


def test_bad_input_is_named(tmp_path):
    one = fake_sweep(tmp_path / "one", "noiseless", 84, {"sup": 30, "a": 25})
    twin = fake_sweep(tmp_path / "twin", "noiseless", 84, {"sup": 30, "a": 25})
    with pytest.raises(ValueError, match="both noiseless at 84 steps"):
        build([one, twin])
    with pytest.raises(ValueError, match="no scenario has two budgets"):
        build([one])
    mixed = fake_sweep(tmp_path / "mixed", "noiseless", 84, {"sup": 30})
    fake_sweep(tmp_path / "mixed-more", "noiseless", 168, {"a": 25})
    (tmp_path / "mixed-more" / "0").rename(mixed / "1")
    with pytest.raises(ValueError, match="different numbers of epochs"):
        build([mixed, one])
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "nowhere"), str(one)])
    assert math.isnan(bootstrap_tau({"a": [1.0], "b": [1.0]}, {"a": [2.0], "b": [2.0]}).point)


def test_methods_tied_at_both_budgets_have_no_tau_and_no_verdict_but_a_report(tmp_path):
    folders = [
        fake_sweep(tmp_path / "a", "noiseless", 2, {"sup": 15.28, "mc": 15.28}),
        fake_sweep(tmp_path / "b", "noiseless", 4, {"sup": 15.31, "mc": 15.27}),
    ]
    main([str(f) for f in folders] + ["--out", str(tmp_path / "out")])
    assert "No budget is stable" in (tmp_path / "out" / "stability.md").read_text()
    assert (tmp_path / "out" / "stability.png").stat().st_size > 0


def test_an_adversarial_method_counting_two_optimiser_steps_per_batch_shares_its_budget(tmp_path):
    low = fake_sweep(tmp_path / "low", "noiseless", 84, {"sup": 30, "adversarial": 20})
    high = fake_sweep(tmp_path / "high", "noiseless", 168, {"sup": 31, "adversarial": 21})
    for folder, steps in ((low, 168), (high, 336)):  # generator + discriminator steps
        metrics = json.loads((folder / "1" / "metrics.json").read_text())
        write_json(folder / "1" / "metrics.json", {**metrics, "global_step": steps})
    (pair,) = build([low, high], draws=50)["pairs"]
    assert (pair.steps, pair.next_steps, pair.doubled) == (84, 168, True)
