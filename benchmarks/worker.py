"""A worker process: started fresh, read back from the JSON result lines it prints.

Every tool here measures or checks in its own process, so that a peak memory is that process's
own and a crash or a hang stops one measurement, not the run. A worker prints each result as one
line, :data:`RESULT_MARKER` then JSON (:func:`emit`); everything else it prints (warnings,
tracebacks) is ignored. :func:`run_worker` starts one, kills its whole process group on a
time-out (DDP ranks and launcher jobs with it) and returns what it reported.
"""

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The checkout this folder belongs to: it goes first on a worker's path, so that the worker runs
#: this ``benchmarks`` and this ``ssmri`` whatever the interpreter has installed.
REPO_ROOT = Path(__file__).resolve().parents[1]
#: The start of a result line on a worker's stdout.
RESULT_MARKER = "SSMRI_BENCH_RESULT "


def emit(result: dict) -> None:
    """Report one result to the parent (flushed at once, so a later crash cannot lose it)."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


def module_command(module: str, *args: str, python: str = sys.executable) -> list[str]:
    """``python -m module args...``: how a tool starts its own workers."""
    return [python, "-m", module, *args]


def worker_env(**variables: str) -> dict[str, str]:
    """This process's environment with the checkout first on ``PYTHONPATH``, plus ``variables``."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **variables}


def last_error(stderr: str) -> str:
    """The line of a failed process's output that names the error (``""`` when it printed nothing)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Exception" in line:
            return line[:300]
    return lines[-1][:300] if lines else ""


def parse_results(stdout: str) -> list[dict]:
    """The results a worker reported, in order."""
    return [
        json.loads(line[len(RESULT_MARKER) :])
        for line in stdout.splitlines()
        if line.startswith(RESULT_MARKER)
    ]


@dataclass
class WorkerRun:
    """What one worker process did."""

    status: int | None  # exit status; None: it ran past its time-out and was killed
    results: list[dict]
    stdout: str
    stderr: str
    timeout: float | None = None

    @property
    def error(self) -> str:
        """One line saying why it failed (meaningful when it reported less than expected)."""
        if self.status is None:
            return f"timed out after {self.timeout:.0f} s"
        return last_error(self.stderr) or f"exit status {self.status}, no output"


def run_worker(
    command: list[str], timeout: float | None = None, env: dict | None = None, cwd: Path | None = None
) -> WorkerRun:
    """Run ``command`` in a new process group and collect its result lines.

    Args:
        command: the process (e.g. :func:`module_command`).
        timeout: seconds before its process group is killed (``None``: no limit).
        env: its environment (default :func:`worker_env`).
        cwd: its working directory (default this one).
    """
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env() if env is None else env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as error:  # could not even start it
        return WorkerRun(1, [], "", f"{type(error).__name__}: {error}", timeout)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        status = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        status = None
    return WorkerRun(status, parse_results(stdout), stdout, stderr, timeout)
