"""The sweep's second table: every method under every selection rule, side by side.

One sweep is enough: each run tests the pick of every rule (``selection.test_all``) and keeps
the numbers in ``metrics.json`` under ``rules``. The last column is what not having ground
truth for selection costs: oracle (``val_psnr``) PSNR minus GT-free (``val_loss``) PSNR.
"""

import math
import statistics

from ssmri.evaluation.selection_rules import RULES, label
from ssmri.report.jobs import setting_of

METRICS = ("psnr", "ssim", "nmse")


def selection_rows(jobs, keys: list[str]) -> list[dict]:
    """One row per configuration (method and the value of each swept key in ``keys``): mean over
    seeds of each rule's test PSNR/SSIM/NMSE and epoch; in the sweep's order of settings."""
    groups: dict[tuple, list] = {}
    for job in jobs:
        if job.error is None and job.metrics.get("rules"):
            groups.setdefault((setting_of(job, keys), job.method), []).append(job.metrics["rules"])
    settings = list(dict.fromkeys(setting for setting, _ in groups))
    rows = []
    for (setting, method), runs in groups.items():
        row = {"method": method, "setting": dict(zip(keys, setting)), "seeds": len(runs)}
        for rule in RULES:
            entries = [r[rule] for r in runs if rule in r]
            if not entries:
                continue
            for metric in METRICS:
                values = [e.get(f"test/{metric}", math.nan) for e in entries]
                row[f"{rule}_{metric}"] = statistics.fmean(values)
            row[f"{rule}_epoch"] = statistics.fmean(float(e["epoch"]) for e in entries)
            row[f"{rule}_used"] = entries[0]["used"]
        if "val_psnr_psnr" in row and "val_loss_psnr" in row:
            row["oracle_gain_db"] = row["val_psnr_psnr"] - row["val_loss_psnr"]
        rows.append(row)
    rows.sort(
        key=lambda r: (settings.index(tuple(r["setting"].values())), -r.get("val_loss_psnr", -math.inf))
    )
    return rows


def selection_markdown(rows: list[dict], convention: str, keys: list[str]) -> str:
    """The side-by-side table, its header naming the convention, each rule labelled."""
    rules = [rule for rule in RULES if any(f"{rule}_psnr" in r for r in rows)]
    lines = [
        f"Selection rules side by side (metric convention: {convention}; "
        "PSNR in dB, SSIM, NMSE, epoch of the tested weights; mean over seeds)",
        "",
    ]
    header = [
        "method",
        *keys,
        *(f"{label(rule)} {m}" for rule in rules for m in (*METRICS, "epoch")),
        "oracle gain (dB)",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [row["method"], *("–" if row["setting"].get(k) is None else row["setting"][k] for k in keys)]
        for rule in rules:
            if f"{rule}_psnr" not in row:
                cells += ["–"] * 4
                continue
            fallback = "" if row[f"{rule}_used"] == rule else f" ({row[f'{rule}_used']})"
            cells += [
                f"{row[f'{rule}_psnr']:.2f}{fallback}",
                f"{row[f'{rule}_ssim']:.4f}",
                f"{row[f'{rule}_nmse']:.4f}",
                f"{row[f'{rule}_epoch']:g}",
            ]
        gain = row.get("oracle_gain_db")
        cells.append("–" if gain is None else f"{gain:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "oracle gain: test PSNR under oracle selection (val_psnr, which reads validation "
        "ground truth) minus GT-free selection (val_loss, the method's own objective); "
        "a rule in brackets is the one applied instead (e.g. (last) for a method with no "
        "objective to select on).",
    ]
    return "\n".join(lines) + "\n"


def selection_columns() -> list[str]:
    """The CSV's columns (a column per swept key goes after ``method``)."""
    return [
        "method",
        *(f"{rule}_{m}" for rule in RULES for m in (*METRICS, "epoch", "used")),
        "oracle_gain_db",
        "seeds",
    ]
