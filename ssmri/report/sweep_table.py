"""The sweep table as text: ``results.csv`` (one cell per value) and ``results.md`` (for a person)."""

import csv
import io
import math

from ssmri.report.jobs import UNFINISHED

COLUMNS = [
    "method",
    "psnr",
    "psnr_std",
    "ssim",
    "ssim_std",
    "psnr_zero_filled",
    "gap_to_sup",
    "p_vs_best_ssl",
    "psnr_seed_spread",
    "train_seconds",
    "num_params",
    "epochs",
    "seeds",
    "failed",
    "error",
    "nmse",
    "published_psnr",
]


def csv_text(rows: list[dict], columns: list[str], keys: list[str]) -> str:
    """``columns`` with a column for each swept key after ``method``; quoted where a cell needs it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([columns[0], *keys, *columns[1:]])
    for row in rows:
        setting = row.get("setting", {})
        writer.writerow(
            [
                _cell(row.get(columns[0])),
                *(_cell(setting.get(k)) for k in keys),
                *(_cell(row.get(c)) for c in columns[1:]),
            ]
        )
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _p_value(p: float | None) -> str:
    if p is None:
        return ""
    # The randomisation test cannot resolve p below 1 / (draws + 1).
    return "< 1e-4" if p < 1e-4 else f"{p:.2g}"


def _nmse(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.4f}"  # runs from before NMSE was measured


def markdown(rows: list[dict], keys: list[str]) -> str:
    """The table, one row per configuration, then what its numbers mean."""
    published = any("published_psnr" in r for r in rows)  # a sweep of one SSIBench scenario
    header = (
        ["method", *keys, "PSNR (dB)", "SSIM", "NMSE", "zero-filled PSNR"]
        + (["published PSNR"] if published else [])
        + ["gap to sup", "p vs best SSL", "seed spread", "train time (s)", "params", "epochs", "seeds"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in rows:
        setting = ["–" if r["setting"].get(k) is None else r["setting"][k] for k in keys]
        if "psnr" not in r:
            outcome = "unfinished" if all(e == UNFINISHED for _, e in r["errors"]) else "failed"
            lines.append(
                "| "
                + " | ".join([r["method"], *setting, f"{outcome}: {r.get('error', '')}"])
                + " |"
                + " |" * (len(header) - len(keys) - 2)
            )
            continue
        reference = []
        if published:
            reference = [f"{r['published_psnr']:.2f}" if "published_psnr" in r else "–"]
        spread = "–" if r["psnr_seed_spread"] is None else f"{r['psnr_seed_spread']:.2f}"
        gap = "–" if math.isnan(r["gap_to_sup"]) else f"{r['gap_to_sup']:+.2f}"  # no sup beside it
        seeds = f"{r['seeds']}" + (f" (+{r['failed']} failed)" if r["failed"] else "")
        cells = [
            r["method"],
            *setting,
            f"{r['psnr']:.2f} ± {r['psnr_std']:.2f}",
            f"{r['ssim']:.4f} ± {r['ssim_std']:.4f}",
            _nmse(r["nmse"]),
            f"{r['psnr_zero_filled']:.2f}",
            *reference,
            gap,
            "(best SSL)" if r.get("best_ssl") else _p_value(r.get("p_vs_best_ssl")),
            spread,
            f"{r['train_seconds']:.0f}",
            f"{r['num_params']:,}",
            f"{r['epochs']}",
            seeds,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + _notes(rows, keys)


def _notes(rows: list[dict], keys: list[str]) -> str:
    within = ""
    if keys:
        within = (
            "A row is one configuration: the method and the value of each swept key "
            f"({', '.join(keys)}); gap to sup and p compare rows of the same setting. "
        )
    text = (
        f"\n{within}± is the standard deviation across test images (of the per-image mean over seeds); "
        "seed spread is the standard deviation of the mean PSNR between the seeds of one row (– with one "
        "seed); p is a paired sign-flip randomisation test on per-image PSNR against the best "
        "self-supervised method.\n"
    )
    for r in rows:
        if r.get("repeated_seeds"):
            text += (
                f"\nWarning: {r['method']} {_label(r, keys)} has seed {r['repeated_seeds']} in more "
                f"than one job ({', '.join(r['jobs'])}) with the same swept settings; they are "
                "averaged as if they were different seeds.\n"
            )
    return text


def failed_jobs_markdown(rows: list[dict]) -> str:
    """The list of jobs without a result: folder, overrides (to run it again) and error."""
    failures = [line for r in rows for line in r.get("failed_jobs", [])]
    if not failures:
        return ""
    return "\nJobs without a result (folder, overrides, error):\n\n" + "".join(f"- {f}\n" for f in failures)


def _label(row: dict, keys: list[str]) -> str:
    return " ".join(f"{k}={row['setting'].get(k)}" for k in keys) or "(no swept key)"
