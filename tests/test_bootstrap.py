"""The bootstrap interval of a sweep's rank correlations, on cases whose answer is known."""

import pytest
import torch

from ssmri.report import write_json, write_per_image, write_sweep_results
from ssmri.report.bootstrap import bootstrap_rank_correlations, interval_note

PUBLISHED = {"a": 3.0, "b": 2.0, "c": 1.0}


def test_one_order_in_every_image_collapses_the_interval_to_the_point():
    # Per image a = b + 1 = c + 2: every resample's means keep the order a > b > c, so every
    # resample gives the same ρ and τ-b against the published c > a > b.
    base = torch.randn(20, generator=torch.Generator().manual_seed(3)).mul(4).add(25).tolist()
    per_image = {"a": [x + 2 for x in base], "b": [x + 1 for x in base], "c": base}
    published = {"a": 2.0, "b": 1.0, "c": 3.0}
    intervals = bootstrap_rank_correlations(per_image, published, draws=300)
    # Ranks ours (3, 2, 1) against published (2, 1, 3): Σd² = 6, ρ = 1 - 6·6/(3·8) = -1/2;
    # pairs: (a, b) concordant, (a, c) and (b, c) discordant, τ-b = -1/3.
    assert intervals["spearman"].point == pytest.approx(-0.5)
    assert intervals["kendall_tau_b"].point == pytest.approx(-1 / 3)
    for interval in intervals.values():
        assert interval.low == interval.high == interval.point


def test_two_images_give_the_exact_bootstrap_range_around_the_point():
    # Resamples of 2 images: (0, 0) and (1, 1) with probability 1/4 each, mixed with 1/2, so
    # the 2.5 and 97.5 percentiles are the smallest and largest of three known values.
    per_image = {"a": [30.0, 10.0], "b": [10.0, 20.0], "c": [20.0, 30.0]}
    intervals = bootstrap_rank_correlations(per_image, PUBLISHED, draws=2000)
    # Image 0: a > c > b (ρ = 1/2, τ = 1/3); image 1: c > b > a (ρ = τ = -1);
    # both (means 20, 15, 25): c > a > b (ρ = -1/2, τ = -1/3), the point estimate.
    rho, tau = intervals["spearman"], intervals["kendall_tau_b"]
    assert (rho.low, rho.point, rho.high) == pytest.approx((-1.0, -0.5, 0.5))
    assert (tau.low, tau.point, tau.high) == pytest.approx((-1.0, -1 / 3, 1 / 3))


METHODS = "abcdefgh"


def noisy_methods(images: int = 30) -> dict[str, list[float]]:
    """Eight methods 0.3 dB apart, each image 1 dB off its method's mean: orders cross per image."""
    rng = torch.Generator().manual_seed(7)
    return {m: (30 - 0.3 * k + torch.randn(images, generator=rng)).tolist() for k, m in enumerate(METHODS)}


def test_overlapping_methods_give_a_wide_interval_holding_the_point_and_the_seed_fixes_it():
    published = {m: 8.0 - k for k, m in enumerate(METHODS)}
    first = bootstrap_rank_correlations(noisy_methods(), published, seed=0)
    assert first == bootstrap_rank_correlations(noisy_methods(), published, seed=0)
    assert first != bootstrap_rank_correlations(noisy_methods(), published, seed=1)
    for interval in first.values():
        assert interval.low < interval.high and interval.low <= interval.point <= interval.high
    # Ten times the images narrow the uncertainty on the same method means.
    many = bootstrap_rank_correlations(noisy_methods(300), published, seed=0)["spearman"]
    assert many.high - many.low < first["spearman"].high - first["spearman"].low


def test_methods_without_a_published_psnr_are_left_out_and_bad_input_is_named():
    per_image = {**noisy_methods(), "ours": [1.0] * 30}
    both = bootstrap_rank_correlations(per_image, {"a": 1.0, "b": 2.0})
    assert both["spearman"].point == pytest.approx(-1.0)  # a > b here, b > a published
    with pytest.raises(ValueError, match="at least 2 methods.*got 1 \\(a\\)"):
        bootstrap_rank_correlations(per_image, {"a": 1.0})
    with pytest.raises(ValueError, match="same test images"):
        bootstrap_rank_correlations({"a": [1.0, 2.0], "b": [1.0]}, PUBLISHED)
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_rank_correlations({"a": [1.0, float("nan")], "b": [1.0, 2.0]}, PUBLISHED)
    with pytest.raises(ValueError, match="undefined on all test images"):
        bootstrap_rank_correlations({"a": [1.0, 2.0], "b": [2.0, 1.0]}, PUBLISHED)


def test_interval_note_reads_the_summary_rows():
    rows = [{"method": m, "psnr": sum(v) / len(v), "per_image_psnr": v} for m, v in noisy_methods().items()]
    rows.append({"method": "failed_one", "error": "boom"})
    comparison = {"published": {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0, "failed_one": 5.0}}
    assert interval_note(rows, comparison, draws=100).startswith(
        "95 % bootstrap intervals over the 30 test images (100 paired resamples, seed 0): ρ in ["
    )
    assert interval_note(rows[:1], comparison) == ""  # one method: no correlation to bound


def test_the_sweep_report_shows_the_interval_beside_the_correlations(tmp_path):
    for i, (method, psnr) in enumerate({"sup": 29.3, "mo_ei": 27.4, "ei": 27.3, "mc": 21.7}.items()):
        job = tmp_path / f"{i}-{method}"
        job.mkdir()
        # The same offsets on every image: the order never changes, the interval is the point.
        values = torch.tensor([psnr - 0.5, psnr + 0.5, psnr])
        write_per_image(
            job / "test_per_image.csv",
            {
                "index": torch.arange(3),
                "psnr": values,
                "ssim": values / 40,
                "psnr_zero_filled": torch.full_like(values, 20.0),
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
                "scenario": "noiseless",
            },
        )
    write_sweep_results(tmp_path)
    table = (tmp_path / "results.md").read_text()
    assert "Spearman ρ = 1.00" in table
    assert "over the 3 test images (2000 paired resamples, seed 0): ρ in [1.00, 1.00]" in table
