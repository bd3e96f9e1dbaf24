"""The job folders of a sweep: each job's method, seed, overrides and results, or why it has none.

A job folder is one Hydra multirun job: ``.hydra/overrides.yaml`` (what it was asked to run), then
``metrics.json`` and ``test_per_image.csv`` when it finished, or ``failed.json`` when it raised. A
file that cannot be read makes its job a failed one whose error names the file; it never stops the
report of the other jobs.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ssmri.report.run_outputs import read_per_image

# Keys that are not a row's setting: the seed is what a row spreads over, the loss is its method.
NOT_SETTINGS = ("seed", "loss")
UNFINISHED = "no metrics.json or failed.json: still running, or killed before it could record a failure"


@dataclass
class Job:
    """One job of a sweep: its method, seed, overrides and metrics, or the one-line reason it has none.

    ``overrides`` is ``{key: value}`` of ``.hydra/overrides.yaml`` (``None`` when the folder has
    none, or it cannot be read); ``override_list`` the same overrides as written on the command line.
    """

    path: Path
    method: str
    seed: int | None
    overrides: dict[str, str] | None = None
    override_list: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    per_image: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def failure_line(self) -> str:
        """``<folder> (<overrides>): <error>``, enough to find the job and run it again."""
        overrides = " ".join(self.override_list) or "overrides unknown"
        return f"{self.name} ({overrides}): {self.error}"


def collect(sweep_dir: Path) -> list[Job]:
    """Every job folder of ``sweep_dir``, in the order Hydra numbered them."""
    folders = (p for p in Path(sweep_dir).iterdir() if p.is_dir())
    jobs = (read_job(path) for path in sorted(folders, key=_job_number))
    return [job for job in jobs if job is not None]


def _job_number(path: Path) -> tuple[int, str]:
    number = re.match(r"\d+", path.name)
    return (int(number.group()) if number else math.inf, path.name)


def read_job(path: Path) -> Job | None:
    """The job in ``path``; ``None`` for a folder that is no job (no results and no ``.hydra``)."""
    overrides, override_list, problem = read_overrides(path)
    job = Job(
        path, overrides.get("loss", "?") if overrides else "?", _seed(overrides), overrides, override_list
    )
    if (path / "metrics.json").is_file():
        _read_results(job)
    elif (path / "failed.json").is_file():
        _read_failure(job)
    elif (path / ".hydra").is_dir():
        job.error = UNFINISHED
    else:
        return None
    if problem and job.error is None:
        job.error = problem
    return job


def read_overrides(path: Path) -> tuple[dict[str, str] | None, list[str], str | None]:
    """``({key: value}, [override], problem)`` of ``path/.hydra/overrides.yaml``.

    ``+key=v`` and ``++key=v`` give ``key``; Hydra's own ``hydra.*`` overrides are left out.
    """
    file = path / ".hydra" / "overrides.yaml"
    if not file.is_file():
        return None, [], None
    try:
        listed = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
        return None, [], f"{file}: unreadable ({_first_line(error)}); a job folder needs Hydra's record"
    if listed is None:
        listed = []
    if not isinstance(listed, list) or not all(isinstance(o, str) for o in listed):
        return None, [], f"{file}: not a list of overrides; a job folder needs Hydra's record"
    overrides = {}
    for override in listed:
        key, _, value = override.lstrip("+~").partition("=")
        if not key.startswith("hydra."):
            overrides[key] = value
    return overrides, listed, None


def _seed(overrides: dict[str, str] | None) -> int | None:
    try:
        return int(overrides["seed"]) if overrides and "seed" in overrides else None
    except ValueError:
        return None


def _read_results(job: Job) -> None:
    file = job.path / "metrics.json"
    try:
        metrics = json.loads(file.read_text())
    except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        job.error = f"{file}: unreadable JSON ({_first_line(error)}); rerun the job or move its folder out"
        return
    if not isinstance(metrics, dict) or not isinstance(metrics.get("loss"), str):
        job.error = f"{file}: not a run's metrics (no 'loss'); rerun the job or move its folder out"
        return
    job.method, job.seed, job.metrics = metrics["loss"], metrics.get("seed", job.seed), metrics
    for key in ("test/psnr", "test/psnr_zero_filled"):
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            job.error = f"{file}: {key} is {value!r}, not a finite number; this run has no result to report"
            return
    table = job.path / "test_per_image.csv"
    try:
        job.per_image = read_per_image(table)
    except (ValueError, KeyError, OSError) as error:
        job.error = f"{table}: unreadable ({_first_line(error)}); rerun the job or move its folder out"
        return
    for key in ("psnr", "ssim"):
        values = job.per_image.get(key)
        if not values or not all(math.isfinite(v) for v in values):
            job.error = f"{table}: column {key} is missing, empty or not finite; this run has no result"
            return


def _read_failure(job: Job) -> None:
    file = job.path / "failed.json"
    try:
        failure = json.loads(file.read_text())
        trace = failure["error"]
    except (ValueError, OSError, KeyError, TypeError) as error:
        job.error = f"the job failed, and {file} is unreadable ({_first_line(error)})"
        return
    job.method, job.seed = failure.get("loss", job.method), failure.get("seed", job.seed)
    # "message" is the exception on one line; records from before it keep the traceback's last line.
    last_line = str(trace).strip().splitlines()[-1] if str(trace).strip() else "unknown error"
    job.error = _first_line(failure.get("message") or last_line)


def _first_line(error) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


def swept_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values differ between jobs (missing counts as a value), in the order
    they first appear; ``seed`` and ``loss`` are left out (the spread and the method column)."""
    known = [job.overrides for job in jobs if job.overrides is not None]
    keys = list(dict.fromkeys(key for overrides in known for key in overrides))
    return [key for key in keys if key not in NOT_SETTINGS and len({o.get(key) for o in known}) > 1]


def setting_of(job: Job, keys: list[str]) -> tuple[str | None, ...]:
    """The job's value of each swept key (``None``: not overridden, or overrides unknown)."""
    return tuple((job.overrides or {}).get(key) for key in keys)


def setting_label(keys: list[str], setting: tuple) -> str:
    """``key=value key=value`` of a setting ('' when nothing but the method is swept)."""
    return " ".join(f"{key}={'–' if value is None else value}" for key, value in zip(keys, setting))
