"""A sweep beside SSIBench's published leaderboard: the column, the rank correlations, the plot,
and the sweep's own summary run in wandb (offline like the per-job runs unless WANDB_MODE says otherwise)."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmri.atomic import atomic_write  # noqa: E402
from ssmri.report.leaderboard import compare_with_leaderboard, load_leaderboard  # noqa: E402


def sweep_scenario(jobs) -> str | None:
    """The one SSIBench scenario every finished job (of one setting) recorded, else ``None``."""
    names = {job.metrics.get("scenario") for job in jobs if job.error is None}
    if len(names) > 1:
        folders = ", ".join(job.name for job in jobs if job.error is None)
        raise ValueError(
            f"a sweep mixes SSIBench scenarios {sorted(map(str, names))} in one setting "
            f"({folders}) without a scenario override to tell them apart; report them apart"
        )
    return names.pop() if names else None


def annotate(rows: list[dict], scenario: str) -> dict:
    """Add ``published_psnr`` to the rows the leaderboard has; returns
    :func:`compare_with_leaderboard`'s result."""
    comparison = compare_with_leaderboard({r["method"]: r["psnr"] for r in rows if "psnr" in r}, scenario)
    for row in rows:
        if row["method"] in comparison["published"]:
            row["published_psnr"] = comparison["published"][row["method"]]
    return comparison


def _statistic(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def note(comparison: dict, source: bool = True) -> str:
    """The markdown lines under the table: the correlations (of one setting) and, if ``source``, where
    the published numbers come from."""
    setting = f" at {comparison['setting']}" if comparison.get("setting") else ""
    origin = f" ({load_leaderboard()['source'].split(':')[0]}, arXiv:2502.14009)" if source else ""
    return (
        f"\nPublished PSNR: SSIBench, scenario `{comparison['scenario']}`{origin}. Rank correlation with "
        f"the published order over the {len(comparison['methods'])} methods both have{setting} "
        f"({', '.join(comparison['methods'])}): Spearman ρ = {_statistic(comparison['spearman'])}, "
        f"Kendall τ-b = {_statistic(comparison['kendall_tau_b'])}.\n"
    )


def save_comparison(rows: list[dict], comparisons: list[dict], path: Path) -> None:
    """Each row's PSNR against the published PSNR, one series per setting (else a bar chart).

    ``comparisons``: :func:`compare_with_leaderboard`'s results, each with its ``setting`` label
    and its ``rows``.
    """
    done = [r for r in rows if "psnr" in r]
    figure, axis = plt.subplots(figsize=(6, 5))
    comparisons = [c for c in comparisons if c["methods"]]
    for comparison in comparisons:
        shared = [r for r in comparison["rows"] if "psnr" in r and r["method"] in comparison["published"]]
        xs, ys = [r["published_psnr"] for r in shared], [r["psnr"] for r in shared]
        correlations = (
            f"Spearman ρ = {_statistic(comparison['spearman'])}, "
            f"Kendall τ-b = {_statistic(comparison['kendall_tau_b'])}"
        )
        several = len(comparisons) > 1
        axis.scatter(xs, ys, label=f"{comparison['setting']}: {correlations}" if several else None)
        for r, x, y in zip(shared, xs, ys):
            axis.annotate(r["method"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_xlabel(f"published PSNR (dB), SSIBench {comparison['scenario']}")
        axis.set_ylabel("this sweep's PSNR (dB)")
        if len(comparisons) == 1:
            axis.set_title(correlations)
    if len(comparisons) > 1:
        axis.legend(fontsize=7)
    if not comparisons:
        labels = [
            " ".join([r["method"], *(f"{k}={v}" for k, v in r.get("setting", {}).items())]) for r in done
        ]
        axis.barh(labels, [r["psnr"] for r in done])
        axis.invert_yaxis()
        axis.set_xlabel("test PSNR (dB)")
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


TABLE_COLUMNS = [
    "method",
    "psnr",
    "psnr_std",
    "ssim",
    "psnr_zero_filled",
    "published_psnr",
    "seeds",
    "failed",
]


def publish_sweep_to_wandb(
    sweep_dir: Path,
    rows: list[dict],
    comparisons: list[dict],
    keys: list[str],
    project: str = "ssmri",
    mode: str = "offline",
) -> None:
    """One summary run in the sweep's group (the group its jobs log to): table, plot, correlations
    (``spearman``, or ``spearman/<setting>`` for each setting when the sweep varies more than the method)."""
    import wandb

    run = wandb.init(
        project=project,
        group=str(sweep_dir),
        name="sweep-summary",
        job_type="sweep",
        dir=str(sweep_dir),
        mode=mode,
    )
    try:
        columns = [TABLE_COLUMNS[0], *keys, *TABLE_COLUMNS[1:]]
        data = [
            [r["method"], *(r["setting"].get(k) for k in keys), *(r.get(c) for c in TABLE_COLUMNS[1:])]
            for r in rows
        ]  # None where a row has no value
        run.log(
            {
                "sweep/results": wandb.Table(columns=columns, data=data),
                "sweep/comparison": wandb.Image(str(Path(sweep_dir) / "comparison.png")),
            }
        )
        for comparison in comparisons:
            suffix = f"/{comparison['setting']}" if len(comparisons) > 1 else ""
            run.summary.update(
                {
                    f"scenario{suffix}": comparison["scenario"],
                    f"spearman{suffix}": comparison["spearman"],
                    f"kendall_tau_b{suffix}": comparison["kendall_tau_b"],
                }
            )
    finally:
        run.finish()
        # finish() can return before the service has written the offline records; teardown
        # waits for it (the summary is the sweep process's last run).
        wandb.teardown()
