"""The splitting-family ablation (issue 21): which of U-Net width, splitters and budget moves a method.

Reads sweep folders made by ``train.py -m experiment=cpu_quick scenario=<s> ...`` whose jobs vary
``model.denoiser.base_features``, ``splitter`` / ``weighted_splitter`` and ``trainer.max_epochs``, and
writes one table (markdown and CSV), one figure of validation PSNR against training steps, a
panel per (scenario, method), a line per (width, splitters, seed), and the order of the
noiseless methods against the published leaderboard at each budget, per splitter setting::

    python -m benchmarks.ablation outputs/ablation/* --out docs/results/ablation

Each job's numbers are read from what the run wrote (``metrics.json``, ``csv/metrics.csv``); nothing
is recomputed. A job without results is listed, never silently left out.
"""

import argparse
import csv
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmri.atomic import atomic_write  # noqa: E402
from ssmri.report.jobs import Job, collect  # noqa: E402
from ssmri.report.leaderboard import compare_with_leaderboard  # noqa: E402

#: Splitter choices -> the name of the setting (the loss configs read ``splitter`` for SSDU-type
#: methods and ``weighted_splitter`` for Weighted-SSDU; MC and the EI family read neither).
SPLITTERS = {"bernoulli": "SSIBench", "ssibench": "SSIBench", "gaussian": "tutorial", "tutorial": "tutorial"}
READS_SPLITTER = {"ssdu", "noise2inverse", "ssdu_consistency", "moc_ssdu", "weighted_ssdu"}


def setting(job: Job) -> dict:
    """Scenario, method, width, splitters, budget and seed of one finished job."""
    overrides = job.overrides or {}
    width = int(overrides.get("model.denoiser.base_features", 32))
    choice = overrides.get("weighted_splitter" if job.method == "weighted_ssdu" else "splitter", "")
    splitters = SPLITTERS.get(choice, choice or "default") if job.method in READS_SPLITTER else "-"
    return {
        "scenario": job.metrics.get("scenario") or overrides.get("scenario", "?"),
        "method": job.method,
        "width": width,
        "splitters": splitters,
        "steps": int(job.metrics.get("global_step", 0)),
        "seed": int(job.metrics.get("seed", job.seed or 0)),
    }


def validation_curve(job: Job) -> tuple[list[int], list[float], float]:
    """``(step, val/psnr)`` at the end of every validation epoch, and the validation images'
    zero-filled PSNR (the floor the curve is read against), from the run's CSV log."""
    path = job.path / "csv" / "metrics.csv"
    steps, values, floor = [], [], float("nan")
    if path.is_file():
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("val/psnr"):
                    steps.append(int(float(row["step"])) + 1)
                    values.append(float(row["val/psnr"]))
                    floor = float(row.get("val/psnr_zero_filled") or "nan")
    return steps, values, floor


def rows_of(sweep_dirs: list[Path]) -> tuple[list[dict], list[str]]:
    """One row per finished job, and one line per job without results."""
    rows, problems = [], []
    for sweep in sweep_dirs:
        for job in collect(sweep):
            if job.error or not job.metrics:
                problems.append(f"{sweep.name}/{job.failure_line()}")
                continue
            oracle = job.metrics.get("rules", {}).get("val_psnr", {})
            steps, values, val_zero_filled = validation_curve(job)
            rows.append(
                {
                    **setting(job),
                    "psnr": job.metrics["test/psnr"],
                    "psnr_oracle": oracle.get("test/psnr", float("nan")),
                    "psnr_zero_filled": job.metrics["test/psnr_zero_filled"],
                    "selected_epoch": job.metrics["selection"]["epoch"],
                    "train_seconds": job.metrics.get("train_seconds", float("nan")),
                    "job": f"{sweep.name}/{job.name}",
                    "curve": (steps, values),
                    "val_zero_filled": val_zero_filled,
                }
            )
    rows.sort(key=lambda r: (r["scenario"], r["method"], r["steps"], r["width"], r["splitters"], r["seed"]))
    return rows, problems


COLUMNS = (
    "scenario",
    "method",
    "width",
    "splitters",
    "steps",
    "seed",
    "psnr",
    "psnr_oracle",
    "psnr_zero_filled",
    "selected_epoch",
    "train_seconds",
    "job",
)


def published_order(
    rows: list[dict], scenario: str = "noiseless", width: int = 32, seed: int = 0
) -> list[dict]:
    """The methods' GT-free order against the published leaderboard of ``scenario``, per splitter
    setting and budget: at each budget, the methods that read that setting's splitters with the
    references that read none (``-``), at one width and seed. Budgets with fewer than three
    methods are left out."""
    chosen = [r for r in rows if (r["scenario"], r["width"], r["seed"]) == (scenario, width, seed)]
    orders = []
    for splitters in sorted({r["splitters"] for r in chosen} - {"-"}):
        for steps in sorted({r["steps"] for r in chosen}):
            psnr, jobs = {}, {}
            for r in chosen:
                if r["steps"] != steps or r["splitters"] not in (splitters, "-"):
                    continue
                if r["method"] in psnr:
                    raise ValueError(
                        f"two jobs of {r['method']} with {splitters} splitters, {width} features, seed "
                        f"{seed} at {steps} steps ({jobs[r['method']]}, {r['job']}): keep one"
                    )
                psnr[r["method"]], jobs[r["method"]] = r["psnr"], r["job"]
            if len(psnr) < 3:
                continue
            comparison = compare_with_leaderboard(psnr, scenario)
            orders.append(
                {
                    "splitters": splitters,
                    "steps": steps,
                    "methods": len(comparison["methods"]),
                    "spearman": comparison["spearman"],
                    "kendall_tau_b": comparison["kendall_tau_b"],
                    "order": sorted(psnr, key=psnr.get, reverse=True),
                    "published": comparison["published"],
                }
            )
    return orders


def order_markdown(orders: list[dict], scenario: str = "noiseless") -> str:
    if not orders:
        return ""
    board = {method: psnr for o in orders for method, psnr in o["published"].items()}
    lines = [
        f"Against the published {scenario} order ({', '.join(sorted(board, key=board.get, reverse=True))}, "
        "best first):",
        "",
        "| splitters | steps | methods | Spearman ρ | Kendall τ-b | order here, best first |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in orders:
        lines.append(
            f"| {o['splitters']} | {o['steps']} | {o['methods']} | {o['spearman']:.2f} "
            f"| {o['kendall_tau_b']:.2f} | {', '.join(o['order'])} |"
        )
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict], problems: list[str]) -> str:
    header = (
        "| scenario | method | U-Net width | splitters | steps | seed | PSNR, GT-free (dB) "
        "| PSNR, oracle (dB) | vs zero-filled (dB) | selected epoch | training (s) |"
    )
    lines = [header, "| " + " | ".join("---" for _ in range(11)) + " |"]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['method']} | {r['width']} | {r['splitters']} | {r['steps']} "
            f"| {r['seed']} "
            f"| {r['psnr']:.2f} | {r['psnr_oracle']:.2f} | {r['psnr'] - r['psnr_zero_filled']:+.2f} "
            f"| {r['selected_epoch']} | {r['train_seconds']:.0f} |"
        )
    if problems:
        lines += ["", "Jobs without a result:", *(f"- {p}" for p in problems)]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


#: One look per setting in every panel: colour for the splitters, line for the width.
STYLE = {
    (width, splitters): {"color": colour, "linestyle": line}
    for splitters, colour in (("SSIBench", "tab:blue"), ("tutorial", "tab:orange"), ("-", "tab:green"))
    for width, line in ((32, "-"), (64, ":"))
}


def save_figure(rows: list[dict], path: Path) -> None:
    """Validation PSNR against steps, a panel per (scenario, method), a line per (width, splitters)."""
    panels = sorted({(r["scenario"], r["method"]) for r in rows})
    columns = min(3, len(panels))
    lines = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.4 * lines), squeeze=False)
    for axis, (scenario, method) in zip(axes.flat, panels):
        ours = [r for r in rows if (r["scenario"], r["method"]) == (scenario, method)]
        # The longest run of each setting draws its curve; shorter runs of the same setting (the
        # rungs a budget ladder resumed from) lie on it. Other seeds are drawn faint.
        longest = {}
        for r in ours:
            key = (r["width"], r["splitters"], r["seed"])
            if key not in longest or r["steps"] > longest[key]["steps"]:
                longest[key] = r
        for (width, splitters, seed), r in sorted(longest.items()):
            steps, values = r["curve"]
            label = f"{width} features" + (f", {splitters}" if splitters != "-" else "")
            look = {"marker": "o", "markersize": 3} if seed == 0 else {"alpha": 0.45}
            label += f", seed {seed}" if seed else ""
            axis.plot(steps, values, label=label, **look, **STYLE[(width, splitters)])
        axis.axhline(
            ours[0]["val_zero_filled"], color="grey", linestyle="--", linewidth=1, label="zero-filled"
        )
        axis.set_title(f"{method}, {scenario}")
        axis.set_xlabel("training steps")
        axis.set_ylabel("validation PSNR (dB)")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ablation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "sweeps", nargs="+", type=Path, help="sweep folders (train.py -m ... hydra.sweep.dir)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for ablation.md/.csv/.png")
    arguments = parser.parse_args(argv)
    missing = [str(s) for s in arguments.sweeps if not s.is_dir()]
    if missing:
        print(f"error: not a sweep folder: {', '.join(missing)}", file=sys.stderr)
        return 1
    rows, problems = rows_of(arguments.sweeps)
    if not rows:
        print("error: no finished job in " + ", ".join(map(str, arguments.sweeps)), file=sys.stderr)
        return 1
    arguments.out.mkdir(parents=True, exist_ok=True)
    order = order_markdown(published_order(rows))
    table = markdown(rows, problems) + (f"\n{order}" if order else "")
    for name, text in (("ablation-table.md", table), ("ablation.csv", csv_text(rows))):
        with atomic_write(arguments.out / name) as temporary:
            temporary.write_text(text)
    save_figure(rows, arguments.out / "ablation.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
