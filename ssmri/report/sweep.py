"""The results table of a sweep: ``python -m ssmri.report <sweep_dir>``.

Reads every job directory of a Hydra multirun (``metrics.json``, ``test_per_image.csv``,
``failed.json``) and writes ``results.csv`` and ``results.md`` (one row per method, sorted by
PSNR) plus ``curves.png`` and ``samples.png`` beside them. Also a Hydra callback that does the
same when a multirun ends.
"""

import argparse
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra.experimental.callback import Callback

from ssmri.atomic import write_text
from ssmri.report.figures import save_curves, save_sweep_samples
from ssmri.report.run_outputs import read_per_image
from ssmri.report.selection_table import SELECTION_COLUMNS, selection_markdown, selection_rows

SUPERVISED = "sup"


@dataclass
class Job:
    """One job of a sweep: its method, seed, metrics and per-image results (or its failure)."""

    path: Path
    method: str
    seed: int | None
    metrics: dict = field(default_factory=dict)
    per_image: dict = field(default_factory=dict)
    error: str | None = None


def collect(sweep_dir: Path) -> list[Job]:
    jobs = []
    for path in sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir()):
        if (path / "metrics.json").is_file():
            metrics = json.loads((path / "metrics.json").read_text())
            per_image = read_per_image(path / "test_per_image.csv")
            jobs.append(Job(path, metrics["loss"], metrics.get("seed"), metrics, per_image))
        elif (path / "failed.json").is_file():
            failure = json.loads((path / "failed.json").read_text())
            jobs.append(Job(path, failure["loss"], failure.get("seed"), error=failure["error"]))
    return jobs


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


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(jobs: list[Job]) -> list[dict]:
    """One row per method, sorted by PSNR (failed methods last)."""
    methods: dict[str, list[Job]] = {}
    for job in jobs:
        methods.setdefault(job.method, []).append(job)
    rows = []
    for method, runs in methods.items():
        done = [j for j in runs if j.error is None]
        row = {"method": method, "seeds": len(done), "failed": len(runs) - len(done)}
        if done:
            # Per image: the mean over seeds, so the table compares methods on the same images.
            per_image_psnr = [statistics.fmean(v) for v in zip(*(j.per_image["psnr"] for j in done))]
            per_image_ssim = [statistics.fmean(v) for v in zip(*(j.per_image["ssim"] for j in done))]
            seed_psnr = [j.metrics["test/psnr"] for j in done]
            row.update(
                psnr=statistics.fmean(per_image_psnr), psnr_std=_mean_std(per_image_psnr)[1],
                ssim=statistics.fmean(per_image_ssim), ssim_std=_mean_std(per_image_ssim)[1],
                psnr_seed_spread=_mean_std(seed_psnr)[1] if len(done) > 1 else None,
                nmse=statistics.fmean(j.metrics.get("test/nmse", math.nan) for j in done),
                psnr_zero_filled=statistics.fmean(j.metrics["test/psnr_zero_filled"] for j in done),
                train_seconds=statistics.fmean(j.metrics.get("train_seconds", math.nan) for j in done),
                num_params=done[0].metrics.get("num_params"),
                epochs=done[0].metrics.get("epochs"),
                per_image_psnr=per_image_psnr,
            )
        else:
            row["error"] = runs[0].error.strip().splitlines()[-1][:120]
        rows.append(row)
    rows.sort(key=lambda r: -r.get("psnr", -math.inf))
    supervised = next((r for r in rows if r["method"] == SUPERVISED and "psnr" in r), None)
    best = next((r for r in rows if r["method"] != SUPERVISED and "psnr" in r), None)
    for row in rows:
        if "psnr" not in row:
            continue
        row["gap_to_sup"] = row["psnr"] - supervised["psnr"] if supervised else math.nan
        if best is not None and row is not best:
            row["p_vs_best_ssl"] = paired_sign_flip_test(row["per_image_psnr"], best["per_image_psnr"])
    return rows


COLUMNS = ["method", "psnr", "psnr_std", "ssim", "ssim_std", "psnr_zero_filled", "gap_to_sup",
           "p_vs_best_ssl", "psnr_seed_spread", "train_seconds", "num_params", "epochs", "seeds",
           "failed", "error", "nmse"]


def protocol(jobs: list[Job]) -> tuple[str, str]:
    """``(selection label, metric convention)`` of a sweep's runs ("mixed" if they differ)."""
    done = [j.metrics for j in jobs if j.error is None]
    selections = {m.get("selection", {}).get("rule", "val_psnr") for m in done}
    conventions = {m.get("metrics_convention", "per_image") for m in done}

    def one(values: set, named) -> str:
        return named(values.pop()) if len(values) == 1 else "mixed: " + ", ".join(sorted(values))

    return one(selections, _selection_label), one(conventions, str)


def _selection_label(rule: str) -> str:
    from ssmri.selection import label

    return label(rule)


def write_results(sweep_dir: Path) -> list[dict]:
    """Write ``results.csv``, ``results.md`` and the figures of ``sweep_dir``; returns the rows."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    rows = summarise(jobs)
    lines = [",".join(COLUMNS)]
    for row in rows:
        lines.append(",".join(_csv_cell(row.get(c)) for c in COLUMNS))
    write_text(sweep_dir / "results.csv", "\n".join(lines) + "\n")
    selection, convention = protocol(jobs)
    by_rule = selection_rows(jobs)
    write_text(sweep_dir / "results_selection.csv", "\n".join(
        [",".join(SELECTION_COLUMNS)]
        + [",".join(_csv_cell(r.get(c)) for c in SELECTION_COLUMNS) for r in by_rule]) + "\n")
    header = (f"Selection: {selection}; metric convention: {convention} "
              "(PSNR, SSIM and NMSE of the weights that rule picked)\n\n")
    tables = header + markdown(rows, best_ssl=_best_ssl(rows))
    if by_rule:
        tables += "\n" + selection_markdown(by_rule, convention)
    write_text(sweep_dir / "results.md", tables)
    done = [j for j in jobs if j.error is None]
    if done:
        save_curves(done, sweep_dir / "curves.png")
        save_sweep_samples(done, sweep_dir / "samples.png")
    return rows


def _best_ssl(rows: list[dict]) -> str | None:
    return next((r["method"] for r in rows if r["method"] != SUPERVISED and "psnr" in r), None)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return f'"{text}"' if "," in text else text


def _p_value(p: float | None) -> str:
    if p is None:
        return ""
    # The randomisation test cannot resolve p below 1 / (draws + 1).
    return "< 1e-4" if p < 1e-4 else f"{p:.2g}"


def _nmse(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.4f}"  # runs from before NMSE was measured


def markdown(rows: list[dict], best_ssl: str | None) -> str:
    header = ("| method | PSNR (dB) | SSIM | NMSE | zero-filled PSNR | gap to sup | p vs best SSL | "
              "seed spread | train time (s) | params | epochs | seeds |")
    lines = [header, "|" + " --- |" * 12]
    for r in rows:
        if "psnr" not in r:
            lines.append(f"| {r['method']} | failed: {r.get('error', '')} |" + " |" * 10)
            continue
        p = r.get("p_vs_best_ssl")
        p_text = "(best SSL)" if r["method"] == best_ssl else _p_value(p)
        spread = "–" if r["psnr_seed_spread"] is None else f"{r['psnr_seed_spread']:.2f}"
        gap = "–" if math.isnan(r["gap_to_sup"]) else f"{r['gap_to_sup']:+.2f}"  # no sup in the sweep
        lines.append(
            f"| {r['method']} | {r['psnr']:.2f} ± {r['psnr_std']:.2f} | {r['ssim']:.4f} ± "
            f"{r['ssim_std']:.4f} | {_nmse(r['nmse'])} | {r['psnr_zero_filled']:.2f} | {gap} | {p_text} | "
            f"{spread} | {r['train_seconds']:.0f} | {r['num_params']:,} | "
            f"{r['epochs']} | {r['seeds']}{' (+' + str(r['failed']) + ' failed)' if r['failed'] else ''} |"
        )
    notes = (
        "\n± is the standard deviation across test images (of the per-image mean over seeds); "
        "seed spread is the standard deviation of the mean PSNR between seeds (– with one seed); "
        "p is a paired sign-flip randomisation test on per-image PSNR against the best "
        "self-supervised method.\n"
    )
    return "\n".join(lines) + "\n" + notes


class SweepReport(Callback):
    """Hydra callback: build the results table when a multirun ends."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            write_results(sweep_dir)
            print((sweep_dir / "results.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the results table of a sweep directory.")
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args()
    if not args.sweep_dir.is_dir():
        raise SystemExit(f"error: sweep directory {args.sweep_dir} does not exist")
    write_results(args.sweep_dir)
    print((args.sweep_dir / "results.md").read_text())

