"""``make gpu-check``'s machinery on the CPU: checks derived from the loss configs, running each in a
subprocess that may fail or hang, the report, the no-GPU path, the dtype hooks, and one dry run."""

import sys

import pytest
import torch

from benchmarks import gpu_check
from benchmarks.gpu_check import (
    GROUPS,
    MULTICOIL_LOSSES,
    NO_GPU,
    PRECISIONS,
    Check,
    Result,
    parse_args,
    plan,
    render_report,
    results_of,
    run_checks,
)
from benchmarks.gpu_worker import dtype_problem, recorded_dtypes
from benchmarks.worker import RESULT_MARKER, WorkerRun
from ssmri.models import modl
from ssmri.physics import Acquisition
from ssmri.physics.multicoil import MultiCoilMRI
from tests.helpers.config import options
from tests.helpers.models import tiny_model
from tests.helpers.problems import acquisition_for, small_problem


def reporting(*lines: str, then: str = "") -> list[str]:
    """A fast subprocess that prints result lines, then runs ``then``."""
    printed = "".join(f"print({RESULT_MARKER + line!r}, flush=True);" for line in lines)
    return [sys.executable, "-c", printed + then]


def result_line(name: str, passed: bool, detail: str = "ok") -> str:
    return f'{{"name": "{name}", "passed": {str(passed).lower()}, "detail": "{detail}"}}'


def test_without_a_gpu_it_says_so_checks_nothing_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu-check.md"
    assert gpu_check.main(["--out", str(out), "--workdir", str(tmp_path / "work")]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == NO_GPU and "passed" not in printed
    assert not out.exists()


def test_the_checks_come_from_the_loss_configs(tmp_path):
    checks = plan("cuda", parse_args([]).losses, tmp_path, [])
    assert [c.group for c in checks] == list(GROUPS)
    for precision in PRECISIONS:
        (group,) = [c for c in checks if c.group == f"fast_dev_run {precision}"]
        assert group.expects == [f"fast_dev_run loss={m} {precision}" for m in options("loss")]
        assert "trainer.accelerator=gpu" not in group.command  # the worker sets it from --device
    by_group = {c.group: c for c in checks}
    assert by_group["multirun ddp"].min_gpus == 2 and by_group["local_parallel"].min_gpus == 2
    assert by_group["multirun"].min_gpus == 0 and by_group["multirun ddp"].ddp_ranks == 2
    assert "trainer.accelerator=gpu" in by_group["multirun"].command
    assert "hydra/launcher=local_parallel" in by_group["local_parallel"].command
    multicoil = by_group["fast_dev_run multicoil"]
    assert "physics=multicoil" in multicoil.command and "bf16-mixed" in multicoil.command
    assert multicoil.expects == [
        f"fast_dev_run loss={m} bf16-mixed physics=multicoil" for m in MULTICOIL_LOSSES
    ]
    assert "fast_dev_run multicoil" not in [c.group for c in plan("cuda", ["sup"], tmp_path, [])]


def test_arguments(monkeypatch):
    args = parse_args([])
    assert args.losses == options("loss") and args.only is None and args.out == "bench/gpu-check.md"
    dry = parse_args(["--device", "cpu"])
    assert dry.losses == ["sup"] and dry.only == ["fast_dev_run 32-true"] and dry.out != "bench/gpu-check.md"
    assert parse_args(["--only", "multirun, noise2inverse"]).only == ["multirun", "noise2inverse"]
    for bad in (["--losses", "sup,nonsense"], ["--only", "everything"], ["--budget", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_each_check_reports_passed_failed_or_not_run_and_one_failure_stops_nothing(tmp_path):
    checks = [
        Check(
            "good",
            reporting(result_line("a", True), result_line("b", False, "ValueError: b")),
            30,
            expects=["a", "b"],
        ),
        Check(
            "crashes",
            reporting(result_line("c", True), then="raise SystemExit('RuntimeError: died')"),
            30,
            expects=["c", "d"],
        ),
        Check("hangs", [sys.executable, "-c", "import time; time.sleep(60)"], 1.5, expects=["e"]),
        Check("entry point fails", [sys.executable, "-c", "raise ValueError('bad key')"], 30),
        Check("needs two", [sys.executable, "-c", "pass"], 30, min_gpus=2),
        Check("entry point", [sys.executable, "-c", "pass"], 30),
    ]
    results = {r.name: r for r in run_checks(checks, gpus=1, budget=60, workdir=tmp_path)}
    assert [(n, results[n].status) for n in results] == [
        ("a", "passed"),
        ("b", "failed"),
        ("c", "passed"),
        ("d", "failed"),
        ("e", "failed"),
        ("entry point fails", "failed"),
        ("needs two", "not run"),
        ("entry point", "passed"),
    ]
    assert results["b"].detail == "ValueError: b"
    assert "RuntimeError: died" in results["d"].detail and "timed out after 2 s" in results["e"].detail
    assert "ValueError: bad key" in results["entry point fails"].detail
    assert results["needs two"].detail == "needs 2 GPUs, 1 visible"
    assert (tmp_path / "crashes.log").is_file()
    late = run_checks([Check("late", [sys.executable, "-c", "pass"], 30, expects=["x"])], 1, 5, tmp_path)
    assert late == [Result("x", "not run", "the 5 s budget was spent (rerun it with --only 'late')")]


def test_a_sweep_passes_only_when_every_job_wrote_its_metrics(tmp_path):
    sweep = tmp_path / "sweep"
    check = Check("multirun ddp", [], 30, outputs=sweep, ddp_ranks=2)
    exited = WorkerRun(0, [], "", "")
    for job in ("0-sup-s0", "1-mc-s0"):
        (sweep / job).mkdir(parents=True)
        (sweep / job / "metrics.json").write_text("{}")
    assert results_of(check, exited)[0].detail == "a job has no log of DDP rank 1"
    for job in ("0-sup-s0", "1-mc-s0"):
        (sweep / job / "train_ddp_process_1.log").write_text("")
    assert results_of(check, exited) == [Result("multirun ddp", "passed", "every job finished")]
    (sweep / "1-mc-s0" / "metrics.json").unlink()
    assert results_of(check, exited)[0].detail == "1 of 2 jobs wrote metrics.json"


def test_the_report_has_one_line_per_check_and_a_count():
    results = [
        Result("fast_dev_run loss=sup bf16-mixed", "passed", "FFTs ['complex64']"),
        Result("fast_dev_run loss=uair 16-mixed", "failed", "RuntimeError: boom"),
        Result("local_parallel", "not run", "needs 2 GPUs, 1 visible"),
    ]
    text = render_report(results, "Device: 1 x NVIDIA H100, CUDA 12.8", 312.4, dry_run=False)
    assert "- passed: fast_dev_run loss=sup bf16-mixed: FFTs ['complex64']\n" in text
    assert "- failed: fast_dev_run loss=uair 16-mixed: RuntimeError: boom\n" in text
    assert "- not run: local_parallel: needs 2 GPUs, 1 visible\n" in text
    assert "Summary: 1 passed, 1 failed, 1 not run." in text and "took 312 s" in text
    assert "Dry run" not in text and "Dry run" in render_report(results, "Device: CPU", 1, dry_run=True)


def test_the_hooks_see_float32_ffts_and_data_consistency_under_bf16_autocast():
    _, _, y, mask = small_problem()
    original, solver = torch.fft.fft2, modl.conjugate_gradient
    with recorded_dtypes() as seen, torch.autocast("cpu", dtype=torch.bfloat16):
        tiny_model()(y, Acquisition(mask))
    assert seen == {"fft": {torch.complex64}, "dc": {torch.float32}, "cg": set()}
    assert dtype_problem(seen) is None
    assert dtype_problem(seen, multicoil=True) == "hooks saw no CG call"
    assert "hooks saw no FFT" in dtype_problem({"fft": set(), "dc": {torch.float32}, "cg": set()})
    half = {"fft": {torch.complex64}, "dc": {torch.bfloat16}, "cg": set()}
    assert "DC outputs ['torch.bfloat16']" in dtype_problem(half)
    assert "CG outputs ['torch.bfloat16']" in dtype_problem({**seen, "cg": {torch.bfloat16}})
    assert torch.fft.fft2 is original and modl.conjugate_gradient is solver  # unpatched after the block


def test_the_hooks_see_the_conjugate_gradients_of_multicoil_data_consistency():
    physics = MultiCoilMRI(16, 4, coils=2)
    _, _, y, mask = small_problem(batch=2, physics=physics)
    with recorded_dtypes() as seen, torch.autocast("cpu", dtype=torch.bfloat16):
        tiny_model()(y, acquisition_for(physics, mask))
    assert seen["cg"] == {torch.float32} and seen["dc"] == {torch.float32}
    assert dtype_problem(seen, multicoil=True) is None


@pytest.mark.slow
def test_a_dry_run_on_the_cpu_checks_one_loss_end_to_end(tmp_path):
    out = tmp_path / "report.md"
    status = gpu_check.main(
        [
            "--device",
            "cpu",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
            "--override",
            "model.denoiser.base_features=8",
        ]
    )
    text = out.read_text()
    assert status == 0, text
    assert "- passed: fast_dev_run loss=sup 32-true: FFTs ['complex64'], DC ['float32']" in text
    assert "Dry run on the CPU" in text and "Summary: 1 passed, 0 failed, 0 not run." in text
