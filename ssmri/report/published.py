"""A sweep beside SSIBench's published leaderboard: the column, the rank correlations, the plot,
and the sweep's own summary run in wandb (offline like the per-job runs unless WANDB_MODE says otherwise)."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmri.atomic import atomic_write  # noqa: E402
from ssmri.report.leaderboard import compare, load_leaderboard  # noqa: E402


def sweep_scenario(jobs) -> str | None:
    """The one SSIBench scenario every finished job recorded (``metrics.json``), else ``None``."""
    names = {job.metrics.get("scenario") for job in jobs if job.error is None}
    if len(names) > 1:
        raise ValueError(f"a sweep mixes SSIBench scenarios {sorted(map(str, names))}; report them apart")
    return names.pop() if names else None


def annotate(rows: list[dict], scenario: str) -> dict:
    """Add ``published_psnr`` to the rows the leaderboard has; returns :func:`compare`'s result."""
    comparison = compare({r["method"]: r["psnr"] for r in rows if "psnr" in r}, scenario)
    for row in rows:
        if row["method"] in comparison["published"]:
            row["published_psnr"] = comparison["published"][row["method"]]
    return comparison


def _statistic(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def note(comparison: dict) -> str:
    """The markdown lines under the table: the correlations and the source."""
    return (
        f"\nPublished PSNR: SSIBench, scenario `{comparison['scenario']}` "
        f"({load_leaderboard()['source'].split(':')[0]}, arXiv:2502.14009). Rank correlation with "
        f"the published order over the {len(comparison['methods'])} methods both have "
        f"({', '.join(comparison['methods'])}): Spearman ρ = {_statistic(comparison['spearman'])}, "
        f"Kendall τ-b = {_statistic(comparison['kendall_tau_b'])}.\n"
    )


def save_comparison(rows: list[dict], comparison: dict | None, path: Path) -> None:
    """Each method's PSNR, against the published PSNR where there is one (else a bar chart)."""
    done = [r for r in rows if "psnr" in r]
    figure, axis = plt.subplots(figsize=(6, 5))
    if comparison and comparison["methods"]:
        shared = [r for r in done if r["method"] in comparison["published"]]
        xs, ys = [r["published_psnr"] for r in shared], [r["psnr"] for r in shared]
        axis.scatter(xs, ys)
        for r, x, y in zip(shared, xs, ys):
            axis.annotate(r["method"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_xlabel(f"published PSNR (dB), SSIBench {comparison['scenario']}")
        axis.set_ylabel("this sweep's PSNR (dB)")
        axis.set_title(f"Spearman ρ = {_statistic(comparison['spearman'])}, "
                       f"Kendall τ-b = {_statistic(comparison['kendall_tau_b'])}")
    else:
        axis.barh([r["method"] for r in done], [r["psnr"] for r in done])
        axis.invert_yaxis()
        axis.set_xlabel("test PSNR (dB)")
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


TABLE_COLUMNS = ["method", "psnr", "psnr_std", "ssim", "psnr_zero_filled", "published_psnr", "seeds",
                 "failed"]


def publish_sweep_to_wandb(sweep_dir: Path, rows: list[dict], comparison: dict | None,
                           project: str = "ssmri", mode: str = "offline") -> None:
    """One summary run in the sweep's group (the group its jobs log to): table, plot, correlations."""
    import wandb

    run = wandb.init(project=project, group=str(sweep_dir), name="sweep-summary", job_type="sweep",
                     dir=str(sweep_dir), mode=mode)
    try:
        data = [[r.get(c) for c in TABLE_COLUMNS] for r in rows]  # None where a row has no value
        run.log({"sweep/results": wandb.Table(columns=TABLE_COLUMNS, data=data),
                 "sweep/comparison": wandb.Image(str(Path(sweep_dir) / "comparison.png"))})
        if comparison:
            run.summary.update({"scenario": comparison["scenario"], "spearman": comparison["spearman"],
                                "kendall_tau_b": comparison["kendall_tau_b"]})
    finally:
        run.finish()
        # finish() can return before the service has written the offline records; teardown
        # waits for it (the summary is the sweep process's last run).
        wandb.teardown()
