"""How sure a sweep's rank correlation with the published leaderboard is: a paired bootstrap
over test images, so a reader can tell two correlations apart from noise.

Every method of a sweep is tested on the same images, so one resample of image indices serves
all of them (paired); each resample's per-method mean PSNR gives one Spearman ρ and one Kendall
τ-b against the published PSNR, and their percentiles bound the interval.
"""

import math
from dataclasses import dataclass

import torch

from ssmri.report.leaderboard import kendall_tau_b, spearman

DRAWS = 2000
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A statistic on all test images (``point``) and its percentile interval ``[low, high]``."""

    point: float
    low: float
    high: float


def bootstrap_rank_correlations(
    per_image_psnr: dict[str, list[float]],
    published: dict[str, float],
    draws: int = DRAWS,
    seed: int = SEED,
    level: float = 0.95,
) -> dict[str, Interval]:
    """``{"spearman": Interval, "kendall_tau_b": Interval}`` of the methods both arguments have.

    Args:
        per_image_psnr: ``{method: [PSNR of test image 0, 1, ...]}``, every method on the same
            images in the same order (a sweep's ``test_per_image.csv``).
        published: ``{method: published PSNR}``.
        draws: bootstrap resamples of the test images.
        seed: seeds the resampling, so the interval is the same on every rebuild of the report.
        level: coverage of the percentile interval.
    """
    methods = sorted(m for m in per_image_psnr if m in published)
    if len(methods) < 2:
        raise ValueError(
            f"a bootstrap of rank correlations needs at least 2 methods with per-image PSNR and a "
            f"published PSNR, got {len(methods)} ({', '.join(methods) or 'none'}); add methods to the sweep"
        )
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws={draws!r}: give a positive number of bootstrap resamples, e.g. {DRAWS}")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: give the interval's coverage between 0 and 1, e.g. 0.95")
    counts = {m: len(per_image_psnr[m]) for m in methods}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise ValueError(
            f"per-image PSNR counts differ or are empty ({counts}): the paired bootstrap needs every "
            "method tested on the same test images; rerun the methods with the same data.num_test"
        )
    psnr = torch.tensor([per_image_psnr[m] for m in methods], dtype=torch.float64)
    if not bool(torch.isfinite(psnr).all()):
        raise ValueError(f"non-finite per-image PSNR among {', '.join(methods)}; check test_per_image.csv")
    reference = [float(published[m]) for m in methods]
    images = psnr.shape[1]
    rng = torch.Generator().manual_seed(seed)
    resampled = torch.randint(0, images, (draws, images), generator=rng)
    means = psnr[:, resampled].mean(dim=-1).T  # (draws, methods)
    intervals = {}
    for name, statistic in (("spearman", spearman), ("kendall_tau_b", kendall_tau_b)):
        point = statistic(psnr.mean(dim=1).tolist(), reference)
        values = torch.tensor([statistic(row, reference) for row in means.tolist()], dtype=torch.float64)
        undefined = int(torch.isnan(values).sum())
        if math.isnan(point) or undefined:
            where = "all test images" if math.isnan(point) else f"{undefined} of {draws} resamples"
            raise ValueError(
                f"{name} is undefined on {where} (a side with all PSNRs equal) over "
                f"{', '.join(methods)}; compare methods whose PSNRs differ"
            )
        tail = (1 - level) / 2
        low, high = torch.quantile(values, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
        intervals[name] = Interval(point, low, high)
    return intervals


def interval_note(rows: list[dict], comparison: dict, draws: int = DRAWS, seed: int = SEED) -> str:
    """The markdown line under a sweep's correlations: their 95 % intervals, or why there are none.

    ``rows`` are :func:`ssmri.report.sweep.summarise_sweep`'s (``per_image_psnr``: per image, the mean
    over seeds), ``comparison`` is :func:`ssmri.report.leaderboard.compare_with_leaderboard`'s.
    """
    per_image = {
        r["method"]: r["per_image_psnr"]
        for r in rows
        if "per_image_psnr" in r and r["method"] in comparison["published"]
    }
    if len(per_image) < 2:
        return ""  # no correlation to bound: the line above already shows –
    try:
        intervals = bootstrap_rank_correlations(per_image, comparison["published"], draws, seed)
    except ValueError as error:
        return f"No bootstrap interval: {error}.\n"
    rho, tau = intervals["spearman"], intervals["kendall_tau_b"]
    images = len(next(iter(per_image.values())))
    return (
        f"95 % bootstrap intervals over the {images} test images ({draws} paired resamples, "
        f"seed {seed}): ρ in [{rho.low:.2f}, {rho.high:.2f}], τ-b in [{tau.low:.2f}, {tau.high:.2f}].\n"
    )
