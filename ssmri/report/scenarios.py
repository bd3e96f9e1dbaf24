"""How much a method's place depends on the scenario: ``python -m ssmri.report.scenarios <sweep> ...``.

Reads one sweep per SSIBench scenario (each job's ``metrics.json`` names it) and writes, into
``--out``: ``scenarios.md`` and ``scenarios.csv`` (methods x scenarios: PSNR and rank),
``scenario_pairs.csv`` (Kendall τ-b between each pair of scenarios over the methods both have)
and ``scenarios.png`` (a bump chart: rank per scenario, one line per method).
"""

import argparse
import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmri.atomic import atomic_write, write_text  # noqa: E402
from ssmri.report.leaderboard import kendall_tau_b  # noqa: E402
from ssmri.report.published import sweep_scenario  # noqa: E402
from ssmri.report.sweep import collect, summarise_sweep  # noqa: E402

# The stability rule: PSNRs closer than this are not an order.
TIE_DB = 0.2


def scenario_psnr(sweep_dir: Path) -> tuple[str, dict[str, float]]:
    """``(scenario, {method: test PSNR})`` of one sweep; failed methods are left out."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ValueError(f"sweep directory {sweep_dir} does not exist; pass the folder of a scenario sweep")
    jobs = collect(sweep_dir)
    scenario = sweep_scenario(jobs)
    if scenario is None:
        raise ValueError(
            f"{sweep_dir}: no finished job's metrics.json names a scenario; pass sweeps "
            "run with scenario=<name> (make sweep SCENARIO=<name>)"
        )
    psnr: dict[str, float] = {}
    for row in summarise_sweep(jobs):
        if row["method"] in psnr and "psnr" in row:
            raise ValueError(
                f"{sweep_dir}: method {row['method']} has more than one setting "
                f"({row.get('setting')}); pass a sweep that varies only the method and seed"
            )
        if "psnr" in row:
            psnr[row["method"]] = row["psnr"]
    return scenario, psnr


def ranks(psnr: dict[str, float], tie_db: float = TIE_DB) -> dict[str, int]:
    """1 + the number of methods more than ``tie_db`` above: methods within it share a place."""
    return {m: 1 + sum(other - value > tie_db for other in psnr.values()) for m, value in psnr.items()}


def pair_tau(a: dict[str, float], b: dict[str, float], tie_db: float = TIE_DB) -> tuple[list[str], float]:
    """``(methods both have, Kendall τ-b of their PSNRs)``, τ-b NaN with fewer than 2 of them."""
    shared = sorted(set(a) & set(b))
    if len(shared) < 2:
        return shared, math.nan
    return shared, kendall_tau_b([a[m] for m in shared], [b[m] for m in shared], tie_within=tie_db)


def build(sweep_dirs: list[Path], tie_db: float = TIE_DB) -> dict:
    """``{"scenarios": {name: {method: psnr}}, "ranks": {name: {method: rank}}, "methods": [...],
    "pairs": [(a, b, shared methods, τ-b)]}``, scenarios in the order given."""
    if not tie_db >= 0:
        raise ValueError(f"tie margin {tie_db!r} dB: give a margin >= 0, e.g. --tie-db {TIE_DB}")
    scenarios: dict[str, dict[str, float]] = {}
    origin: dict[str, Path] = {}
    for sweep_dir in sweep_dirs:
        name, psnr = scenario_psnr(sweep_dir)
        if name in scenarios:
            raise ValueError(
                f"{origin[name]} and {sweep_dir} are both scenario {name!r}; pass one sweep per scenario"
            )
        scenarios[name], origin[name] = psnr, Path(sweep_dir)
    if len(scenarios) < 2:
        raise ValueError(f"got {len(scenarios)} scenario sweep; pass at least 2 to compare ranks")
    placed = {name: ranks(psnr, tie_db) for name, psnr in scenarios.items()}
    methods = sorted(
        {m for psnr in scenarios.values() for m in psnr},
        key=lambda m: (
            sum(r[m] for r in placed.values() if m in r) / sum(m in r for r in placed.values()),
            m,
        ),
    )
    pairs = [
        (a, b, *pair_tau(scenarios[a], scenarios[b], tie_db)) for a, b in itertools.combinations(scenarios, 2)
    ]
    return {"scenarios": scenarios, "ranks": placed, "methods": methods, "pairs": pairs, "tie_db": tie_db}


def _tau_text(tau: float) -> str:
    return "–" if math.isnan(tau) else f"{tau:.2f}"


def markdown(report: dict) -> str:
    names = list(report["scenarios"])
    lines = [
        "| method | " + " | ".join(f"{n} PSNR (dB) | {n} rank" for n in names) + " |",
        "|" + " --- |" * (1 + 2 * len(names)),
    ]
    for method in report["methods"]:
        cells = []
        for name in names:
            psnr = report["scenarios"][name].get(method)
            cells += ["missing", "–"] if psnr is None else [f"{psnr:.2f}", str(report["ranks"][name][method])]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Ranks: 1 + the number of methods more than {report['tie_db']:g} dB above (methods "
        "within it share a place); methods ordered by their mean rank over the scenarios they "
        "were run in; missing: not run, or failed, in that scenario.",
        "",
        "| scenarios | methods in both | Kendall τ-b |",
        "| --- | --- | --- |",
    ]
    for a, b, shared, tau in report["pairs"]:
        lines.append(f"| {a} – {b} | {len(shared)} | {_tau_text(tau)} |")
    lines += [
        "",
        f"τ-b over the methods both scenarios have, PSNRs within {report['tie_db']:g} dB counted "
        "as tied; – with fewer than 2 shared methods or no order on one side.",
    ]
    return "\n".join(lines) + "\n"


def csv_tables(report: dict) -> tuple[str, str]:
    """``scenarios.csv`` (empty cells where a method is missing) and ``scenario_pairs.csv``."""
    names = list(report["scenarios"])
    table = ["method," + ",".join(f"{n}_psnr,{n}_rank" for n in names)]
    for method in report["methods"]:
        cells = []
        for name in names:
            psnr = report["scenarios"][name].get(method)
            cells += ["", ""] if psnr is None else [f"{psnr:.6g}", str(report["ranks"][name][method])]
        table.append(",".join([method, *cells]))
    pairs = ["scenario_a,scenario_b,methods,kendall_tau_b"]
    pairs += [
        f"{a},{b},{len(shared)},{'' if math.isnan(tau) else f'{tau:.6g}'}"
        for a, b, shared, tau in report["pairs"]
    ]
    return "\n".join(table) + "\n", "\n".join(pairs) + "\n"


def save_bump_chart(report: dict, path: Path) -> None:
    """Rank (1 at the top) against scenario, one line per method; a missing scenario breaks its line."""
    names = list(report["scenarios"])
    figure, axis = plt.subplots(figsize=(1.8 * len(names) + 3, 0.35 * len(report["methods"]) + 2.5))
    palette = plt.get_cmap("tab20")
    for k, method in enumerate(report["methods"]):
        colour = palette((2 * k + (k // 10) % 2) % 20)  # the ten dark shades first, then the light ones
        ys = [report["ranks"][n].get(method, math.nan) for n in names]
        axis.plot(range(len(names)), ys, marker="o", color=colour, label=method)
        last = max(i for i, y in enumerate(ys) if not math.isnan(y))
        axis.annotate(
            method,
            (last, ys[last]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=colour,
        )
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks(range(1, len(report["methods"]) + 1))
    axis.set_xlim(-0.3, len(names) - 0.4)
    axis.invert_yaxis()
    axis.set_ylabel(f"rank (methods within {report['tie_db']:g} dB share one)")
    axis.set_title("Rank of each method per scenario")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)


def write_report(sweep_dirs: list[Path], out_dir: Path, tie_db: float = TIE_DB) -> dict:
    """Write the four files into ``out_dir``; returns :func:`build`'s report."""
    report = build(sweep_dirs, tie_db)
    out_dir = Path(out_dir)
    table, pairs = csv_tables(report)
    write_text(out_dir / "scenarios.md", markdown(report))
    write_text(out_dir / "scenarios.csv", table)
    write_text(out_dir / "scenario_pairs.csv", pairs)
    save_bump_chart(report, out_dir / "scenarios.png")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Methods x scenarios: PSNR, rank, Kendall τ-b between "
        "scenarios and a bump chart, from one sweep per scenario."
    )
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="one sweep folder per scenario")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the outputs (default: <first sweep's parent>/scenarios)",
    )
    parser.add_argument(
        "--tie-db",
        type=float,
        default=TIE_DB,
        help=f"PSNRs closer than this count as tied (default {TIE_DB})",
    )
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else args.sweep_dirs[0].resolve().parent / "scenarios"
    try:
        write_report(args.sweep_dirs, out, args.tie_db)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print((out / "scenarios.md").read_text())


if __name__ == "__main__":
    main()
