"""Robustness at test time: ``python -m ssmri.report.robustness <sweep dir>`` (``make robustness``).

Each finished job's selected checkpoint (the file its ``metrics.json`` says its selection rule
picked: ``best.ckpt``, or ``last.ckpt`` for the methods that keep their last weights) is tested
through ``eval.py`` at other accelerations and noise levels under the job's own recorded config
(``.hydra/config.yaml``), so its data and its mask law stay as trained and only R and σ change.
Each evaluation writes into ``<out>/<job>/R<R>_noise<σ>/``; one whose ``metrics.json`` is newer
than the checkpoint is read, not run again, so an interrupted report resumes; with ``--out``
elsewhere, the evaluations already in ``<sweep>/robustness`` are read too. Writes
``robustness.csv``, ``robustness.md`` and ``robustness.png`` into ``<out>``.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmri.atomic import atomic_write, write_text  # noqa: E402
from ssmri.report.sweep import collect  # noqa: E402

ACCELERATIONS = (2.0, 4.0, 6.0, 8.0, 12.0)
NOISE_LEVELS = (0.0, 0.05, 0.1)
EVAL_SCRIPT = Path(__file__).resolve().parents[2] / "eval.py"
COLUMNS = [
    "method",
    "seed",
    "job",
    "trained_acceleration",
    "trained_noise_std",
    "acceleration",
    "noise_std",
    "psnr",
    "ssim",
    "psnr_zero_filled",
    "eval_dir",
]


@dataclass(frozen=True)
class Checkpoint:
    """A finished job's selected weights and the physics they were trained under."""

    job: Path
    method: str
    seed: int | None
    acceleration: float
    noise_std: float
    path: Path


def selected_checkpoint(job_dir: Path, metrics: dict) -> Path:
    """The file the job's selection rule picked, found by its name in the job's own
    ``checkpoints/`` (so a moved or copied sweep tests its own files, never where a path points).

    A ``metrics.json`` that names no checkpoint file is read as ``best.ckpt``, the configured
    rule's file.
    """
    picked = (metrics.get("selection") or {}).get("checkpoint") or metrics.get("tested_checkpoint")
    name = Path(picked).name if picked and str(picked).endswith(".ckpt") else "best.ckpt"
    return job_dir / "checkpoints" / name


def checkpoints(sweep_dir: Path) -> tuple[list[Checkpoint], list[str]]:
    """The sweep's finished jobs that kept their selected checkpoint and recorded config, and why
    the rest are left out."""
    found, problems = [], []
    for job in collect(sweep_dir):
        if job.error is not None:
            continue  # a failed job has no selected weights; the sweep's own table lists it
        config = job.path / ".hydra" / "config.yaml"
        selected = selected_checkpoint(job.path, job.metrics or {})
        if not selected.is_file() or not config.is_file():
            problems.append(
                f"{job.path.name}: no checkpoints/{selected.name} (its selected weights) or "
                ".hydra/config.yaml; only jobs that kept their selected checkpoint "
                "(callbacks=default) can be re-tested"
            )
            continue
        physics = (yaml.safe_load(config.read_text()) or {}).get("physics") or {}
        found.append(
            Checkpoint(
                job.path,
                job.method,
                job.seed,
                _number(physics.get("acceleration")),
                _number(physics.get("noise_std")),
                selected,
            )
        )
    return found, problems


def _number(value) -> float:
    """A recorded physics value as a float; NaN (no mark in the table) for an interpolation."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def eval_folder(out_dir: Path, checkpoint: Checkpoint, acceleration: float, noise_std: float) -> Path:
    return Path(out_dir) / checkpoint.job.name / f"R{acceleration:g}_noise{noise_std:g}"


def _quoted(path: Path) -> str:
    """``path`` as a Hydra override value: quoted, so ``=``, ``,`` or spaces in it are no syntax."""
    text = str(Path(path).resolve())
    if "'" in text or "${" in text:
        raise ValueError(f"{text}: a path holding ' or ${{ cannot be passed to eval.py; move it")
    return f"'{text}'"


def eval_command(checkpoint: Checkpoint, acceleration: float, noise_std: float, folder: Path) -> list[str]:
    """``eval.py`` composed from the job's own config: only R, σ, the checkpoint and the folder change."""
    return [
        sys.executable,
        str(EVAL_SCRIPT),
        "--config-dir",
        str((checkpoint.job / ".hydra").resolve()),
        "--config-name",
        "config",
        f"ckpt_path={_quoted(checkpoint.path)}",
        f"physics.acceleration={acceleration:g}",
        f"physics.noise_std={noise_std:g}",
        f"hydra.run.dir={_quoted(folder)}",
        "task_name=eval",
    ]


def _is_fresh(metrics_file: Path, checkpoint: Checkpoint) -> bool:
    """Whether an evaluation's ``metrics.json`` exists and was written after the checkpoint."""
    return metrics_file.is_file() and metrics_file.stat().st_mtime >= checkpoint.path.stat().st_mtime


def evaluate(
    checkpoint: Checkpoint,
    acceleration: float,
    noise_std: float,
    out_dir: Path,
    runner=subprocess.run,
    earlier_dir: Path | None = None,
) -> dict:
    """One result row, from the folder's ``metrics.json`` when it is newer than the checkpoint
    (in ``out_dir``, else in ``earlier_dir``: the sweep's own report folder when ``--out`` points
    elsewhere), else from a new ``eval.py`` run; raises ``RuntimeError`` naming the job when eval
    fails."""
    folder = eval_folder(out_dir, checkpoint, acceleration, noise_std)
    if earlier_dir is not None and not _is_fresh(folder / "metrics.json", checkpoint):
        earlier = eval_folder(earlier_dir, checkpoint, acceleration, noise_std)
        folder = earlier if _is_fresh(earlier / "metrics.json", checkpoint) else folder
    metrics_file = folder / "metrics.json"
    where = f"{checkpoint.job.name} at R={acceleration:g}, noise_std={noise_std:g}"
    if not _is_fresh(metrics_file, checkpoint):
        if not EVAL_SCRIPT.is_file():
            raise RuntimeError(f"{EVAL_SCRIPT} not found: the report runs eval.py of a source checkout")
        done = runner(
            eval_command(checkpoint, acceleration, noise_std, folder),
            cwd=EVAL_SCRIPT.parent,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            write_text(folder / "eval_stderr.txt", done.stderr)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(
                f"{where}: eval.py exited {done.returncode} ({last}); see {folder / 'eval_stderr.txt'}"
            )
    metrics = json.loads(metrics_file.read_text())
    values = {key: metrics.get(f"test/{key}") for key in ("psnr", "ssim", "psnr_zero_filled")}
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values()):
        raise RuntimeError(
            f"{where}: {metrics_file} has no finite test PSNR, SSIM and zero-filled PSNR "
            f"({values}); delete the folder to evaluate again"
        )
    return {
        "method": checkpoint.method,
        "seed": checkpoint.seed,
        "job": checkpoint.job.name,
        "trained_acceleration": checkpoint.acceleration,
        "trained_noise_std": checkpoint.noise_std,
        "acceleration": acceleration,
        "noise_std": noise_std,
        **values,
        "eval_dir": str(folder),
    }


def run_grid(
    sweep_dir: Path,
    out_dir: Path,
    accelerations=ACCELERATIONS,
    noise_levels=NOISE_LEVELS,
    runner=subprocess.run,
) -> tuple[list[dict], list[str]]:
    """Every checkpoint at every (R, σ): the result rows and one line per evaluation that failed."""
    found, problems = checkpoints(sweep_dir)
    if not found:
        raise ValueError(
            f"{sweep_dir}: no finished job with its selected checkpoint; pass a sweep folder "
            "(outputs/train/multirun/<date>)" + (f" ({problems[0]})" if problems else "")
        )
    default_dir = Path(sweep_dir) / "robustness"
    earlier_dir = default_dir if Path(out_dir).resolve() != default_dir.resolve() else None
    rows = []
    for checkpoint in found:
        for noise_std in noise_levels:
            for acceleration in accelerations:
                try:
                    rows.append(evaluate(checkpoint, acceleration, noise_std, out_dir, runner, earlier_dir))
                except (RuntimeError, ValueError) as error:
                    problems.append(str(error))
                    print(f"error: {error}", file=sys.stderr)
    return rows, problems


def _mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in rows)


def grid(rows: list[dict]) -> tuple[list[str], list[float], list[float], dict]:
    """``(methods, accelerations, noise levels, {(method, R, σ): rows})``; ``method`` is
    ``zero_filled`` for the floor (the mean over jobs of their zero-filled PSNR)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    accelerations = sorted({r["acceleration"] for r in rows})
    noise_levels = sorted({r["noise_std"] for r in rows})
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["method"], r["acceleration"], r["noise_std"]), []).append(r)
    return methods, accelerations, noise_levels, cells


def markdown(rows: list[dict], problems: list[str]) -> str:
    methods, accelerations, noise_levels, cells = grid(rows)
    trained = {(r["method"], r["trained_acceleration"], r["trained_noise_std"]) for r in rows}
    lines = []
    for noise_std in noise_levels:
        lines += [
            f"Test PSNR (dB) at noise_std = {noise_std:g}",
            "",
            "| method | " + " | ".join(f"R = {a:g}" for a in accelerations) + " |",
            "|" + " --- |" * (1 + len(accelerations)),
        ]
        for method in methods:
            texts = []
            for a in accelerations:
                here = cells.get((method, a, noise_std))
                mark = "*" if (method, a, noise_std) in trained else ""
                texts.append(f"{_mean(here, 'psnr'):.2f}{mark}" if here else "–")
            lines.append(f"| {method} | " + " | ".join(texts) + " |")
        floor = [[r for m in methods for r in cells.get((m, a, noise_std), [])] for a in accelerations]
        lines.append(
            "| zero-filled | "
            + " | ".join(f"{_mean(f, 'psnr_zero_filled'):.2f}" if f else "–" for f in floor)
            + " |"
        )
        lines.append("")
    lines.append(
        "Each cell: the job's selected checkpoint (mean over seeds) tested through eval.py under "
        "its own recorded data and mask law, at that acceleration and noise; * the operator it "
        "was trained at; zero-filled: the mean over the jobs of the zero-filled PSNR."
    )
    if problems:
        lines += ["", "Not evaluated:", *(f"- {p}" for p in problems)]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    def cell(value) -> str:
        if value is None:
            return ""
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        return f'"{text}"' if "," in text else text

    return "\n".join([",".join(COLUMNS), *(",".join(cell(r[c]) for c in COLUMNS) for r in rows)]) + "\n"


def save_figure(rows: list[dict], path: Path) -> None:
    """PSNR against R, one line per method, zero-filled as the dashed floor; one panel per σ."""
    methods, accelerations, noise_levels, cells = grid(rows)
    figure, axes = plt.subplots(
        1, len(noise_levels), figsize=(4.5 * len(noise_levels) + 1.5, 4.5), sharey=True, squeeze=False
    )
    palette = plt.get_cmap("tab20")
    for axis, noise_std in zip(axes[0], noise_levels):
        for k, method in enumerate(methods):
            points = [
                (a, _mean(cells[method, a, noise_std], "psnr"))
                for a in accelerations
                if (method, a, noise_std) in cells
            ]
            axis.plot(*zip(*points), marker="o", color=palette((2 * k + (k // 10) % 2) % 20), label=method)
        floor = [
            (a, _mean(here, "psnr_zero_filled"))
            for a in accelerations
            if (here := [r for m in methods for r in cells.get((m, a, noise_std), [])])
        ]
        axis.plot(*zip(*floor), linestyle="--", color="black", label="zero-filled")
        for k, trained_at in enumerate(
            sorted({r["trained_acceleration"] for r in rows if r["trained_noise_std"] == noise_std})
        ):
            axis.axvline(trained_at, color="grey", linestyle=":", label="trained at" if k == 0 else None)
        axis.set_title(f"noise_std = {noise_std:g}")
        axis.set_xlabel("acceleration R")
        axis.set_xticks(accelerations, [f"{a:g}" for a in accelerations])
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test PSNR (dB)")
    entries = {label: handle for axis in axes[0] for handle, label in zip(*axis.get_legend_handles_labels())}
    axes[0][-1].legend(
        entries.values(), entries.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)


def write_report(rows: list[dict], problems: list[str], out_dir: Path) -> None:
    out_dir = Path(out_dir)
    write_text(out_dir / "robustness.csv", csv_text(rows))
    write_text(out_dir / "robustness.md", markdown(rows, problems))
    if rows:
        save_figure(rows, out_dir / "robustness.png")


def levels(text: str, name: str, minimum: float) -> tuple[float, ...]:
    """``"2,4,6"`` -> ``(2.0, 4.0, 6.0)``; each at least ``minimum``."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{name} {text!r}: give comma-separated numbers, e.g. {name} 2,4,8") from None
    if not values or any(not math.isfinite(v) or v < minimum for v in values):
        raise ValueError(f"{name} {text!r}: every value must be a finite number >= {minimum:g}")
    return tuple(dict.fromkeys(values))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Each method's selected checkpoint of a sweep tested at "
        "other accelerations and noise levels (its mask law kept)."
    )
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--accelerations", default=",".join(f"{a:g}" for a in ACCELERATIONS))
    parser.add_argument("--noise", default=",".join(f"{s:g}" for s in NOISE_LEVELS))
    parser.add_argument("--out", type=Path, default=None, help="default: <sweep dir>/robustness")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else args.sweep_dir / "robustness"
    try:
        if not args.sweep_dir.is_dir():
            raise ValueError(f"sweep directory {args.sweep_dir} does not exist")
        accelerations = levels(args.accelerations, "--accelerations", 1.0)
        noise_levels = levels(args.noise, "--noise", 0.0)
        rows, problems = run_grid(args.sweep_dir, out, accelerations, noise_levels)
        write_report(rows, problems, out)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print((out / "robustness.md").read_text())
    if problems:
        raise SystemExit(
            f"error: {len(problems)} evaluations failed or were skipped; listed in {out / 'robustness.md'}"
        )


if __name__ == "__main__":
    main()
