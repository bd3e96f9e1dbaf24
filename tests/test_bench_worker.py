"""The benchmark tools' one worker-process helper, and the line between them and the library."""

import ast
import sys
import time
from pathlib import Path

import ssmri
from benchmarks.worker import REPO_ROOT, RESULT_MARKER, emit, module_command, run_worker, worker_env


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_results_are_the_marked_lines_in_order_and_everything_else_is_ignored():
    code = (
        "from benchmarks.worker import emit; print('a warning'); emit({'n': 1}); "
        "import sys; print('noise', file=sys.stderr); emit({'n': 2, 'x': [0.5]})"
    )
    run = run_worker(python(code), timeout=60)
    assert run.status == 0 and run.results == [{"n": 1}, {"n": 2, "x": [0.5]}]
    assert "a warning" in run.stdout and "noise" in run.stderr


def test_a_crash_keeps_what_was_reported_and_names_the_error():
    code = "from benchmarks.worker import emit; emit({'n': 1}); raise ValueError('bad key: data.size')"
    run = run_worker(python(code), timeout=60)
    assert run.status == 1 and run.results == [{"n": 1}]
    assert run.error == "ValueError: bad key: data.size"
    assert run_worker(python("import sys; sys.exit(3)")).error == "exit status 3, no output"


def test_a_hung_worker_and_its_children_are_killed_at_the_timeout(tmp_path):
    marker = tmp_path / "child-survived"
    child = f"import time, pathlib; time.sleep(3); pathlib.Path({str(marker)!r}).touch()"
    code = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
        "from benchmarks.worker import emit; emit({'started': True}); time.sleep(60)"
    )
    started = time.monotonic()
    run = run_worker(python(code), timeout=1.5)
    assert time.monotonic() - started < 30
    assert run.status is None and run.error == "timed out after 2 s" and run.results == [{"started": True}]
    time.sleep(3.5)
    assert not marker.exists()  # the whole process group went


def test_a_command_that_cannot_start_is_a_failed_run(tmp_path):
    run = run_worker([str(tmp_path / "no-such-python")])
    assert run.status == 1 and run.results == [] and "FileNotFoundError" in run.error


def test_workers_run_this_checkout_from_any_folder(tmp_path):
    code = "import benchmarks, ssmri; print(benchmarks.__file__); print(ssmri.__file__)"
    run = run_worker(python(code), timeout=60, cwd=tmp_path)
    benchmarks_file, ssmri_file = run.stdout.split()
    assert Path(benchmarks_file).parent == REPO_ROOT / "benchmarks"
    assert Path(ssmri_file).resolve().parent == Path(ssmri.__file__).resolve().parent
    assert worker_env(EXTRA="1")["EXTRA"] == "1"
    assert module_command("benchmarks.scaling", "--x") == [sys.executable, "-m", "benchmarks.scaling", "--x"]


def test_emit_writes_one_marked_json_line(capsys):
    emit({"name": "a", "passed": True})
    assert capsys.readouterr().out == RESULT_MARKER + '{"name": "a", "passed": true}\n'


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_library_never_imports_the_benchmark_tools():
    sources = sorted((REPO_ROOT / "ssmri").rglob("*.py"))
    assert sources
    offenders = [
        str(p.relative_to(REPO_ROOT))
        for p in sources
        if any(name.split(".")[0] == "benchmarks" for name in imported_modules(p))
    ]
    assert offenders == []
    assert not (REPO_ROOT / "ssmri" / "bench").exists()
