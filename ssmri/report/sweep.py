"""The results table of a sweep: ``python -m ssmri.report <sweep_dir>``.

Reads every job folder of a Hydra multirun (:mod:`ssmri.report.jobs`) and writes ``results.csv``
and ``results.md`` (one row per configuration: the method and the value of every key the sweep
varies except the seed), ``results_selection.csv``, ``curves.png`` and the samples figures beside
them. Also the Hydra callback that does the same when a multirun ends, and ends it with a non-zero
exit status when a job failed.
"""

import argparse
import math
import re
import statistics
import sys
from pathlib import Path

import torch
from hydra.experimental.callback import Callback

from ssmri.atomic import write_text
from ssmri.report.bootstrap import interval_note
from ssmri.report.figures import save_curves, save_sweep_samples
from ssmri.report.jobs import Job, collect, setting_label, setting_of, swept_keys
from ssmri.report.published import annotate, note, publish_sweep_to_wandb, save_comparison, sweep_scenario
from ssmri.report.selection_table import selection_columns, selection_markdown, selection_rows
from ssmri.report.sweep_table import COLUMNS, csv_text, failed_jobs_markdown, markdown

SUPERVISED = "sup"

__all__ = [
    "COLUMNS",
    "Job",
    "SweepReport",
    "collect",
    "main",
    "paired_sign_flip_test",
    "summarise_sweep",
    "write_sweep_results",
]


def paired_sign_flip_test(a: list[float], b: list[float], draws: int = 20000) -> float:
    """Two-sided p-value of a paired randomisation test of mean(a - b) = 0 (per test image).

    Under the null each paired difference is equally likely to have either sign; the p-value
    is the fraction of random sign flips whose mean is at least as extreme as the observed.
    """
    differences = torch.tensor(a, dtype=torch.float64) - torch.tensor(b, dtype=torch.float64)
    if len(differences) == 0 or bool((differences == 0).all()):
        return 1.0
    observed = differences.mean().abs()
    signs = torch.randint(0, 2, (draws, len(differences)), generator=torch.Generator().manual_seed(0))
    flipped = ((2 * signs - 1) * differences).mean(dim=1).abs()
    return float(((flipped >= observed - 1e-12).sum() + 1) / (draws + 1))


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise_sweep(jobs: list[Job], keys: list[str] | None = None) -> list[dict]:
    """One row per configuration: the method and its ``setting`` (``{key: value}`` of the swept
    ``keys``, by default :func:`swept_keys`). Settings come in the sweep's order, rows by PSNR
    within a setting (failed rows last); gap to sup and p compare rows of one setting."""
    keys = swept_keys(jobs) if keys is None else keys
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault((setting_of(job, keys), job.method), []).append(job)
    settings = list(dict.fromkeys(setting for setting, _ in groups))
    rows = [_row(method, dict(zip(keys, setting)), runs) for (setting, method), runs in groups.items()]
    rows.sort(key=lambda r: (settings.index(tuple(r["setting"].values())), -r.get("psnr", -math.inf)))
    for setting in settings:
        _compare_within([r for r in rows if tuple(r["setting"].values()) == setting])
    return rows


def _row(method: str, setting: dict, runs: list[Job]) -> dict:
    done = [j for j in runs if j.error is None]
    failed = [j for j in runs if j.error is not None]
    seeds = [j.seed for j in done]
    row = {
        "method": method,
        "setting": setting,
        "seeds": len(done),
        "failed": len(failed),
        "jobs": [j.name for j in runs],
        "failed_jobs": [j.failure_line() for j in failed],
        "repeated_seeds": sorted({s for s in seeds if s is not None and seeds.count(s) > 1}),
    }
    if failed:
        row["errors"] = [(j.name, j.error) for j in failed]
        row["error"] = "; ".join(f"{j.name}: {j.error}" for j in failed)
    if done:
        # Per image: the mean over seeds, so the table compares methods on the same images.
        per_image_psnr = [statistics.fmean(v) for v in zip(*(j.per_image["psnr"] for j in done))]
        per_image_ssim = [statistics.fmean(v) for v in zip(*(j.per_image["ssim"] for j in done))]
        row.update(
            psnr=statistics.fmean(per_image_psnr),
            psnr_std=_std(per_image_psnr),
            ssim=statistics.fmean(per_image_ssim),
            ssim_std=_std(per_image_ssim),
            psnr_seed_spread=_std([j.metrics["test/psnr"] for j in done]) if len(done) > 1 else None,
            nmse=statistics.fmean(j.metrics.get("test/nmse", math.nan) for j in done),
            psnr_zero_filled=statistics.fmean(j.metrics["test/psnr_zero_filled"] for j in done),
            train_seconds=statistics.fmean(j.metrics.get("train_seconds", math.nan) for j in done),
            num_params=done[0].metrics.get("num_params"),
            epochs=done[0].metrics.get("epochs"),
            per_image_psnr=per_image_psnr,
        )
    return row


def _compare_within(rows: list[dict]) -> None:
    """Gap to ``sup`` and the paired test against the best self-supervised row, of one setting."""
    supervised = next((r for r in rows if r["method"] == SUPERVISED and "psnr" in r), None)
    best = next((r for r in rows if r["method"] != SUPERVISED and "psnr" in r), None)
    for row in rows:
        if "psnr" not in row:
            continue
        row["gap_to_sup"] = row["psnr"] - supervised["psnr"] if supervised else math.nan
        if row is best:
            row["best_ssl"] = True
        elif best is not None:
            row["p_vs_best_ssl"] = paired_sign_flip_test(row["per_image_psnr"], best["per_image_psnr"])


def protocol(jobs: list[Job]) -> tuple[str, str]:
    """``(selection label, metric convention)`` of a sweep's runs ("mixed" if they differ)."""
    done = [j.metrics for j in jobs if j.error is None]
    selections = {m.get("selection", {}).get("rule", "val_psnr") for m in done}
    conventions = {m.get("metrics_convention", "per_image") for m in done}

    def one(values: set, named) -> str:
        return named(values.pop()) if len(values) == 1 else "mixed: " + ", ".join(sorted(values))

    return one(selections, _selection_label), one(conventions, str)


def _selection_label(rule: str) -> str:
    from ssmri.evaluation.selection_rules import label

    return label(rule)


def write_sweep_results(
    sweep_dir: Path, wandb_mode: str | None = None, out_dir: Path | None = None
) -> list[dict]:
    """Write ``results.csv``, ``results.md`` and the figures of ``sweep_dir`` (into ``out_dir``,
    by default the sweep folder itself); returns the rows.

    A setting whose jobs share one SSIBench scenario gets the published PSNR beside each method and
    the rank correlations under the table; ``wandb_mode`` (e.g. ``offline``) also logs the table and
    the comparison plot as one summary run of the sweep's wandb group.
    """
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir
    jobs = collect(sweep_dir)
    keys = swept_keys(jobs)
    rows = summarise_sweep(jobs, keys)
    by_setting = _jobs_by_setting(jobs, keys)
    comparisons = []
    for setting, setting_jobs in by_setting.items():
        scenario = sweep_scenario(setting_jobs)
        if scenario:
            setting_rows = [r for r in rows if tuple(r["setting"].values()) == setting]
            comparisons.append(
                {
                    **annotate(setting_rows, scenario),
                    "setting": setting_label(keys, setting),
                    "rows": setting_rows,
                }
            )
    write_text(out / "results.csv", csv_text(rows, COLUMNS, keys))
    selection, convention = protocol(jobs)
    by_rule = selection_rows(jobs, keys)
    write_text(out / "results_selection.csv", csv_text(by_rule, selection_columns(), keys))
    published = "".join(
        note(c, source=number == 0) + interval_note(c["rows"], c) for number, c in enumerate(comparisons)
    )
    tables = (
        f"Selection: {selection}; metric convention: {convention} "
        "(PSNR, SSIM and NMSE of the weights that rule picked)\n\n"
        + markdown(rows, keys)
        + published
        + failed_jobs_markdown(rows)
    )
    if by_rule:
        tables += "\n" + selection_markdown(by_rule, convention, keys)
    write_text(out / "results.md", tables)
    done = [j for j in jobs if j.error is None]
    if done:
        save_curves(done, out / "curves.png", label=lambda j: _row_label(j, keys))
        settings = [s for s, js in by_setting.items() if any(j.error is None for j in js)]
        for setting in settings:
            # One samples figure per setting: a different acceleration has a different zero-filled image.
            label = setting_label(keys, setting)
            name = "samples.png" if len(settings) == 1 else f"samples_{_slug(label)}.png"
            save_sweep_samples([j for j in by_setting[setting] if j.error is None], out / name, setting=label)
        save_comparison(rows, comparisons, out / "comparison.png")
        if wandb_mode:
            publish_sweep_to_wandb(out, rows, comparisons, keys, mode=wandb_mode)
    return rows


def _jobs_by_setting(jobs: list[Job], keys: list[str]) -> dict[tuple, list[Job]]:
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(setting_of(job, keys), []).append(job)
    return groups


def _row_label(job: Job, keys: list[str]) -> str:
    return f"{job.method} {setting_label(keys, setting_of(job, keys))}".strip()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


def failures(rows: list[dict]) -> list[str]:
    """``<folder> (<overrides>): <error>`` of every failed job of the table's rows."""
    return [line for row in rows for line in row.get("failed_jobs", [])]


def failure_summary(rows: list[dict], results: Path) -> str:
    """One line: how many jobs failed, each folder with its error, and where their overrides are."""
    failed = [f"{job}: {error}" for row in rows if "error" in row for job, error in row["errors"]]
    total = sum(len(r["jobs"]) for r in rows)
    return (
        f"error: {len(failed)} of {total} jobs have no result: {'; '.join(failed)} (their overrides "
        f"are listed under the table in {results})"
    )


class SweepReport(Callback):
    """Hydra callback: build the results table when a multirun ends; exit non-zero if a job failed.

    Hydra turns an exception of a callback into a warning, so the exit status comes from
    ``SystemExit`` (which it lets through) after the table is written.
    """

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        try:
            rows = write_sweep_results(sweep_dir, wandb_mode=_wandb_mode(config))
        except Exception as error:  # Hydra would turn it into a warning and exit 0
            raise SystemExit(
                f"error: the results table of {sweep_dir} could not be written: {error}"
            ) from error
        print((sweep_dir / "results.md").read_text())
        if failures(rows):
            raise SystemExit(failure_summary(rows, sweep_dir / "results.md"))


def _wandb_mode(config) -> str | None:
    """The mode of the sweep's wandb logger (its jobs' runs), or ``None`` when it logs none."""
    wandb = (config.get("logger") or {}).get("wandb")
    return str(wandb.mode) if wandb is not None else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Build the results table of a sweep directory; exits 1 when a job failed or its "
        "files cannot be read (listed under the table)."
    )
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the table and figures (default: the sweep folder itself)",
    )
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        raise SystemExit(f"error: sweep directory {args.sweep_dir} does not exist")
    out = args.out if args.out is not None else args.sweep_dir
    try:
        rows = write_sweep_results(args.sweep_dir, out_dir=out)
    except (ValueError, OSError) as error:  # e.g. a setting that mixes SSIBench scenarios
        raise SystemExit(f"error: {error}") from None
    print((out / "results.md").read_text())
    if failures(rows):
        print(failure_summary(rows, out / "results.md"), file=sys.stderr)
        raise SystemExit(1)
