"""SSIBench's published leaderboard beside a sweep: the numbers, and rank correlations with them.

:func:`scenario_methods` gives ``make sweep SCENARIO=...`` its methods. Rank statistics are
plain Python: average ranks for ties (Spearman), tau-b (Kendall).
"""

import json
import math
from importlib import resources
from pathlib import Path

import yaml

SCENARIOS = ("noiseless", "noisy", "single", "multicoil")
NO_LEARNING = "zero_filled"


def load_leaderboard() -> dict:
    """``{"source": ..., "scenarios": {scenario: {method: [psnr, ssim]}}}``."""
    return json.loads(resources.files("ssmri.report").joinpath("ssibench_leaderboard.json").read_text())


def published(scenario: str) -> dict[str, tuple[float, float]]:
    """``{method: (psnr, ssim)}`` of one scenario, without the zero-filled row."""
    scenarios = load_leaderboard()["scenarios"]
    if scenario not in scenarios:
        raise ValueError(f"unknown SSIBench scenario {scenario!r}; one of {', '.join(scenarios)}")
    return {m: tuple(v) for m, v in scenarios[scenario].items() if m != NO_LEARNING}


def average_ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's ρ: Pearson correlation of average ranks; NaN when either side is constant."""
    _check_pairs(a, b)
    ra, rb = average_ranks(a), average_ranks(b)
    mean_a, mean_b = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(ra, rb))
    norm = math.sqrt(sum((x - mean_a) ** 2 for x in ra) * sum((y - mean_b) ** 2 for y in rb))
    return cov / norm if norm > 0 else math.nan


def kendall_tau_b(a: list[float], b: list[float], tie_within: float = 0.0) -> float:
    """Kendall's τ-b: (concordant - discordant) / √((n0 - ties_a)(n0 - ties_b)).

    A pair whose values differ by at most ``tie_within`` on one side is tied on that side
    (e.g. 0.2: PSNRs within 0.2 dB are not an order).
    """
    _check_pairs(a, b)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            tied_a, tied_b = abs(da) <= tie_within, abs(db) <= tie_within
            if tied_a and tied_b:
                ties_a += 1
                ties_b += 1
            elif tied_a:
                ties_a += 1
            elif tied_b:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    pairs = len(a) * (len(a) - 1) // 2
    norm = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return (concordant - discordant) / norm if norm > 0 else math.nan


def _check_pairs(a, b) -> None:
    if len(a) != len(b):
        raise ValueError(f"rank correlation needs paired values, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError(f"rank correlation needs at least 2 pairs, got {len(a)}")


def compare_with_leaderboard(psnr: dict[str, float], scenario: str) -> dict:
    """The sweep's ``{method: PSNR}`` against the published order of ``scenario``.

    Returns ``{"scenario", "methods" (both have, sorted), "spearman", "kendall_tau_b",
    "published" ({method: psnr} of every sweep method the leaderboard has)}``; the
    correlations are NaN with fewer than 2 shared methods.
    """
    board = published(scenario)
    shared = sorted(m for m in psnr if m in board)
    ours, theirs = [psnr[m] for m in shared], [board[m][0] for m in shared]
    enough = len(shared) >= 2
    return {
        "scenario": scenario,
        "methods": shared,
        "spearman": spearman(ours, theirs) if enough else math.nan,
        "kendall_tau_b": kendall_tau_b(ours, theirs) if enough else math.nan,
        "published": {m: board[m][0] for m in shared},
    }


def scenario_methods(scenario: str) -> list[str]:
    """The methods conf/scenario/<scenario>.yaml lists."""
    path = Path(__file__).resolve().parent.parent / "conf" / "scenario" / f"{scenario}.yaml"
    if not path.is_file():
        raise ValueError(f"SCENARIO={scenario!r} is not one of {', '.join(SCENARIOS)}")
    return yaml.safe_load(path.read_text())["scenario"]["methods"]
