"""Does a sweep's ranking survive twice the budget: ``python -m ssmri.report.stability <sweep> ...``.

Each sweep folder holds one scenario trained for one budget (every job's ``metrics.json`` names
the scenario and its ``epochs``; the budget's steps are the fewest ``global_step`` of its jobs,
since an adversarial method counts a generator and a discriminator step per batch). Per
scenario, each budget is compared with the next one given: Kendall τ-b between the methods' test
PSNR (the weights the run's selection rule picked) at the two budgets, methods within
``--tie-db`` of each other counted as tied, with a paired bootstrap interval over the test
images. A budget is *stable* when τ-b against its double reaches ``--threshold`` in every
scenario given: the ranking no longer changes with the budget, whatever the published table says.

Writes into ``--out``: ``stability.md`` (per scenario: PSNR and place at each budget, the change
per method; per pair of budgets: τ-b, interval, the pairs of methods that swapped; the verdict),
``stability.csv`` and ``stability.png`` (τ-b against the budget per scenario; PSNR against the
budget per method).
"""

import argparse
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ssmri.atomic import atomic_write, write_text  # noqa: E402
from ssmri.report.bootstrap import DRAWS, SEED, Interval  # noqa: E402
from ssmri.report.jobs import collect  # noqa: E402
from ssmri.report.leaderboard import kendall_tau_b  # noqa: E402
from ssmri.report.scenarios import TIE_DB, ranks  # noqa: E402

THRESHOLD = 0.8  # τ-b between a budget and its double that counts as the same ranking


@dataclass(frozen=True)
class BudgetSweep:
    """One scenario at one budget: per method, the PSNR of each test image (mean over seeds)."""

    path: Path
    scenario: str
    steps: int
    per_image: dict[str, list[float]]

    @property
    def psnr(self) -> dict[str, float]:
        return {m: statistics.fmean(v) for m, v in self.per_image.items()}


@dataclass(frozen=True)
class BudgetPair:
    """Two budgets of one scenario and how far their rankings agree."""

    scenario: str
    steps: int
    next_steps: int
    methods: list[str]
    tau: Interval
    swapped: list[tuple[str, str]]  # (above at `steps`, above at `next_steps`)

    @property
    def doubled(self) -> bool:
        return self.next_steps == 2 * self.steps


def read_budget_sweep(sweep_dir: Path) -> BudgetSweep:
    """The finished jobs of one sweep folder, which must share a scenario and a number of steps."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ValueError(f"sweep directory {sweep_dir} does not exist; pass the folder of a sweep")
    done = [job for job in collect(sweep_dir) if job.error is None]
    if not done:
        raise ValueError(f"{sweep_dir}: no finished job (metrics.json); wait for the sweep or rerun it")
    scenarios = {job.metrics.get("scenario") for job in done}
    epochs = {job.metrics.get("epochs") for job in done}
    if len(scenarios) != 1 or None in scenarios:
        raise ValueError(
            f"{sweep_dir}: jobs of scenarios {sorted(map(str, scenarios))}; pass sweeps run with one "
            "scenario=<name> each"
        )
    if len(epochs) != 1 or None in epochs:
        raise ValueError(
            f"{sweep_dir}: jobs trained for different numbers of epochs {sorted(map(str, epochs))}; "
            "pass one folder per budget (trainer.max_epochs)"
        )
    steps = min(int(job.metrics.get("global_step", 0)) for job in done)
    runs: dict[str, list[list[float]]] = {}
    for job in done:
        runs.setdefault(job.method, []).append(job.per_image["psnr"])
    per_image = {}
    for method, lists in runs.items():
        if len({len(values) for values in lists}) != 1:
            raise ValueError(f"{sweep_dir}: the seeds of {method} were tested on different numbers of images")
        per_image[method] = [statistics.fmean(values) for values in zip(*lists)]
    return BudgetSweep(sweep_dir, scenarios.pop(), steps, per_image)


def swapped_pairs(a: dict[str, float], b: dict[str, float], tie_db: float = TIE_DB) -> list[tuple[str, str]]:
    """Pairs of methods ordered one way in ``a`` and the other in ``b``, each by more than ``tie_db``:
    ``(the one above in a, the one above in b)``."""
    methods = sorted(set(a) & set(b))
    swaps = []
    for i, m in enumerate(methods):
        for n in methods[i + 1 :]:
            da, db = a[m] - a[n], b[m] - b[n]
            if abs(da) > tie_db and abs(db) > tie_db and (da > 0) != (db > 0):
                swaps.append((m, n) if da > 0 else (n, m))
    return swaps


def bootstrap_tau(
    a: dict[str, list[float]],
    b: dict[str, list[float]],
    tie_db: float = TIE_DB,
    draws: int = DRAWS,
    seed: int = SEED,
    level: float = 0.95,
) -> Interval:
    """τ-b between the mean PSNRs of ``a`` and ``b`` over the methods both have, with a percentile
    interval from resampling the test images (the same draw for both budgets: paired)."""
    methods = sorted(set(a) & set(b))
    if len(methods) < 2:
        raise ValueError(f"a rank correlation needs at least 2 methods at both budgets, got {methods}")
    counts = {len(a[m]) for m in methods} | {len(b[m]) for m in methods}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            "the two budgets were tested on different numbers of images; "
            "rerun both with the same data.num_test"
        )
    psnr_a = torch.tensor([a[m] for m in methods], dtype=torch.float64)
    psnr_b = torch.tensor([b[m] for m in methods], dtype=torch.float64)
    if not bool(torch.isfinite(psnr_a).all() and torch.isfinite(psnr_b).all()):
        raise ValueError(f"non-finite per-image PSNR among {', '.join(methods)}; check test_per_image.csv")
    point = kendall_tau_b(psnr_a.mean(1).tolist(), psnr_b.mean(1).tolist(), tie_within=tie_db)
    images = psnr_a.shape[1]
    rows = torch.randint(0, images, (draws, images), generator=torch.Generator().manual_seed(seed))
    means_a, means_b = psnr_a[:, rows].mean(-1).T.tolist(), psnr_b[:, rows].mean(-1).T.tolist()
    values = torch.tensor([kendall_tau_b(x, y, tie_within=tie_db) for x, y in zip(means_a, means_b)])
    values = values[~torch.isnan(values)]  # a resample where one side ties every pair has no τ-b
    if math.isnan(point) or len(values) == 0:
        return Interval(math.nan, math.nan, math.nan)
    tail = (1 - level) / 2
    low, high = torch.quantile(values.double(), torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return Interval(point, low, high)


def build(sweep_dirs: list[Path], tie_db: float = TIE_DB, draws: int = DRAWS) -> dict:
    """``{"sweeps": {scenario: [BudgetSweep by steps]}, "pairs": [BudgetPair], "stable": [steps]}``."""
    if not tie_db >= 0:
        raise ValueError(f"tie margin {tie_db!r} dB: give a margin >= 0, e.g. --tie-db {TIE_DB}")
    sweeps: dict[str, list[BudgetSweep]] = {}
    for sweep_dir in sweep_dirs:
        sweep = read_budget_sweep(sweep_dir)
        same = [s for s in sweeps.get(sweep.scenario, []) if s.steps == sweep.steps]
        if same:
            raise ValueError(
                f"{same[0].path} and {sweep.path} are both {sweep.scenario} at {sweep.steps} steps; "
                "pass one sweep per scenario and budget"
            )
        sweeps.setdefault(sweep.scenario, []).append(sweep)
    if not any(len(s) >= 2 for s in sweeps.values()):
        raise ValueError(
            "no scenario has two budgets; pass a sweep at budget B and one at 2B of the same scenario"
        )
    pairs = []
    for scenario, ladder in sweeps.items():
        ladder.sort(key=lambda s: s.steps)
        for low, high in zip(ladder, ladder[1:]):
            methods = sorted(set(low.per_image) & set(high.per_image))
            tau = bootstrap_tau(low.per_image, high.per_image, tie_db, draws)
            swaps = swapped_pairs(low.psnr, high.psnr, tie_db)
            pairs.append(BudgetPair(scenario, low.steps, high.steps, methods, tau, swaps))
    return {"sweeps": sweeps, "pairs": pairs, "tie_db": tie_db}


def stable_budgets(pairs: list[BudgetPair], scenarios: list[str], threshold: float = THRESHOLD) -> list[int]:
    """The budgets whose double was run in every scenario and keeps the ranking (τ-b >= threshold) in all."""
    doubled: dict[int, dict[str, float]] = {}
    for pair in pairs:
        if pair.doubled and pair.scenario in scenarios:
            doubled.setdefault(pair.steps, {})[pair.scenario] = pair.tau.point
    return sorted(
        steps
        for steps, taus in doubled.items()
        if set(taus) == set(scenarios) and all(tau >= threshold for tau in taus.values())
    )


def _number(value: float, digits: int = 2) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def markdown(report: dict, threshold: float = THRESHOLD) -> str:
    tie_db = report["tie_db"]
    scenarios = list(report["sweeps"])
    lines = [
        "# Does the ranking survive twice the budget?",
        "",
        f"Kendall τ-b between the test PSNRs of one budget and the next (methods within {tie_db:g} dB "
        f"counted as tied), with a 95 % paired bootstrap interval over the test images. A budget is "
        f"stable when τ-b against its double is at least {threshold:g} in every scenario "
        f"({', '.join(scenarios)}).",
        "",
        "| scenario | steps | next steps | methods | τ-b | 95 % interval "
        "| swapped pairs (above before → above after) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for pair in report["pairs"]:
        swaps = ", ".join(f"{a} → {b}" for a, b in pair.swapped) or "none"
        lines.append(
            f"| {pair.scenario} | {pair.steps} | {pair.next_steps}{'' if pair.doubled else ' (not 2x)'} | "
            f"{len(pair.methods)} | {_number(pair.tau.point)} | [{_number(pair.tau.low)}, "
            f"{_number(pair.tau.high)}] | {swaps} |"
        )
    stable = stable_budgets(report["pairs"], scenarios, threshold)
    lines += [
        "",
        (
            f"**Stable budgets** (τ-b >= {threshold:g} against the double in every scenario): "
            + ", ".join(f"{s} steps" for s in stable)
            + f"; the smallest is {stable[0]} steps."
            if stable
            else f"**No budget is stable** (τ-b >= {threshold:g} against its double in every scenario) "
            "among those run: train longer."
        ),
        "",
    ]
    for scenario, ladder in report["sweeps"].items():
        methods = sorted(
            {m for s in ladder for m in s.per_image}, key=lambda m: -ladder[-1].psnr.get(m, -math.inf)
        )
        lines += [
            f"## {scenario}: test PSNR (dB) and place per budget",
            "",
            "| method | "
            + " | ".join(f"{s.steps} steps" for s in ladder)
            + " | change over the ladder (dB) |",
            "| --- | " + " | ".join("---" for _ in ladder) + " | --- |",
        ]
        places = [ranks(s.psnr, tie_db) for s in ladder]
        for m in methods:
            cells = [f"{s.psnr[m]:.2f} ({p[m]})" if m in s.psnr else "–" for s, p in zip(ladder, places)]
            have = [s.psnr[m] for s in ladder if m in s.psnr]
            change = f"{have[-1] - have[0]:+.2f}" if len(have) > 1 else "–"
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {change} |")
        lines.append("")
    return "\n".join(lines)


def csv_text(report: dict) -> str:
    lines = ["scenario,steps,next_steps,methods,tau_b,tau_b_low,tau_b_high,swapped"]
    for p in report["pairs"]:
        swaps = " ".join(f"{a}>{b}" for a, b in p.swapped)
        lines.append(
            f"{p.scenario},{p.steps},{p.next_steps},{len(p.methods)},{p.tau.point:.4f},"
            f"{p.tau.low:.4f},{p.tau.high:.4f},{swaps}"
        )
    return "\n".join(lines) + "\n"


def save_figure(report: dict, path: Path, threshold: float = THRESHOLD) -> None:
    scenarios = list(report["sweeps"])
    figure, axes = plt.subplots(
        1, 1 + len(scenarios), figsize=(4.2 * (1 + len(scenarios)), 3.8), squeeze=False
    )
    axes = axes[0]
    for scenario in scenarios:
        pairs = [p for p in report["pairs"] if p.scenario == scenario and not math.isnan(p.tau.point)]
        if not pairs:
            continue
        x = [p.steps for p in pairs]
        y = [p.tau.point for p in pairs]
        error = [
            [max(p.tau.point - p.tau.low, 0) for p in pairs],
            [max(p.tau.high - p.tau.point, 0) for p in pairs],
        ]
        axes[0].errorbar(x, y, yerr=error, marker="o", capsize=3, label=scenario)
    axes[0].axhline(threshold, color="grey", linestyle="--", linewidth=1)
    budgets = [p.steps for p in report["pairs"]]
    axes[0].set_xlim(min(budgets) / 1.4, max(budgets) * 1.4)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("budget B (steps)")
    axes[0].set_ylabel("Kendall τ-b, B against the next budget")
    axes[0].set_ylim(-1.05, 1.05)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    for ax, scenario in zip(axes[1:], scenarios):
        ladder = report["sweeps"][scenario]
        for m in sorted({m for s in ladder for m in s.per_image}):
            points = [(s.steps, s.psnr[m]) for s in ladder if m in s.psnr]
            ax.plot(*zip(*points), marker=".", label=m)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training steps")
        ax.set_ylabel("test PSNR (dB)")
        ax.set_title(scenario)
        ax.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def write_report(
    sweep_dirs: list[Path], out_dir: Path, tie_db: float = TIE_DB, threshold: float = THRESHOLD
) -> dict:
    report = build(sweep_dirs, tie_db)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "stability.md", markdown(report, threshold))
    write_text(out_dir / "stability.csv", csv_text(report))
    save_figure(report, out_dir / "stability.png", threshold)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Kendall τ-b between the rankings of one scenario at two budgets (a sweep folder each)."
    )
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="one folder per scenario and budget")
    parser.add_argument("--out", type=Path, default=Path("stability"), help="folder for the report")
    parser.add_argument("--tie-db", type=float, default=TIE_DB, help="PSNRs closer than this are tied")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="τ-b that counts as stable")
    args = parser.parse_args(argv)
    try:
        write_report(args.sweep_dirs, args.out, args.tie_db, args.threshold)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print((args.out / "stability.md").read_text())


if __name__ == "__main__":
    main()
