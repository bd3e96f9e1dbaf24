"""``make gpu-check``: every GPU path of ssmri in one command of minutes, to ``bench/gpu-check.md``.

Checks, each in its own subprocess with a timeout (one failing never stops the others), all
within one time budget (8 minutes by default): ``fast_dev_run`` of every loss config on CUDA in
``32-true``, ``bf16-mixed`` and ``16-mixed`` (asserting that FFTs and data consistency stay
float32), ``physics=multicoil`` (CG data consistency) for two losses in ``bf16-mixed``,
``model.compile=true``, a 2-job multirun, and with 2 or more GPUs a 2-job multirun of
2-process DDP jobs and a ``hydra/launcher=local_parallel`` sweep with one GPU per job;
Noise2Inverse's batched inference. Each line of the report says passed, failed (with the error)
or not run (and why). Without a GPU it says so and exits 0, checking and writing nothing.
``--device cpu`` is a dry run of this checker on the CPU (one cheap check by default).
"""

import argparse
import datetime
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks import METHODS
from benchmarks.worker import REPO_ROOT, WorkerRun, module_command, run_worker, worker_env
from ssmri.atomic import write_text

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
#: Time-outs are sized for a GPU machine; a dry run on a (shared, slower) CPU gets this many times more.
CPU_TIMEOUT_FACTOR = 5
#: A whole training run in seconds, for the sweeps (32x32 phantoms, one epoch).
TINY = [
    "data=phantom",
    "data.image_size=32",
    "data.num_train=8",
    "data.num_val=4",
    "data.num_test=4",
    "data.batch_size=2",
    "model.denoiser.base_features=8",
    "logger=none",
    "trainer.max_epochs=1",
]
#: The check groups, in the order they run (``--only`` picks some).
GROUPS = (
    *(f"fast_dev_run {p}" for p in PRECISIONS),
    "fast_dev_run multicoil",
    "noise2inverse",
    "multirun",
    "multirun ddp",
    "local_parallel",
    "model.compile=true",
)
#: Losses of the multi-coil check (``physics=multicoil``, CG data consistency), in bf16-mixed.
MULTICOIL_LOSSES = ("mo_ei", "weighted_ssdu")
NO_GPU = "no GPU visible (torch.cuda.is_available() is False): nothing checked, no report written."


@dataclass
class Check:
    """One subprocess: the results it reports (worker) or a verification of its outputs (entry point)."""

    group: str
    command: list[str]
    timeout: float
    expects: list[str] = field(default_factory=list)
    min_gpus: int = 0
    outputs: Path | None = None  # sweep folder whose jobs must each have written metrics.json
    jobs: int = 2
    ddp_ranks: int = 0  # when > 0, every job must have a log of rank 1


@dataclass
class Result:
    name: str
    status: str  # "passed", "failed" or "not run"
    detail: str


def plan(device: str, losses: list[str], workdir: Path, overrides: list[str]) -> list[Check]:
    """Every check, in the order they run."""
    worker = module_command("benchmarks.gpu_check", "--device", device, "--workdir", str(workdir))
    train = [sys.executable, str(REPO_ROOT / "train.py"), "-m"]
    accelerator = [f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}"]
    extra = [arg for o in overrides for arg in ("--override", o)]
    checks = [
        Check(
            f"fast_dev_run {precision}",
            [
                *worker,
                "--worker",
                "fast_dev_run",
                "--precision",
                precision,
                "--losses",
                ",".join(losses),
                *extra,
            ],
            timeout=30 + 10 * len(losses),
            expects=[f"fast_dev_run loss={m} {precision}" for m in losses],
        )
        for precision in PRECISIONS
    ]
    multicoil = [m for m in MULTICOIL_LOSSES if m in losses]  # none chosen: no multi-coil check
    if multicoil:
        command = [
            *worker,
            "--worker",
            "fast_dev_run",
            "--precision",
            "bf16-mixed",
            "--losses",
            ",".join(multicoil),
            *extra,
            "--override",
            "physics=multicoil",
        ]
        expects = [f"fast_dev_run loss={m} bf16-mixed physics=multicoil" for m in multicoil]
        checks.append(Check("fast_dev_run multicoil", command, 30 + 20 * len(multicoil), expects))
    checks.append(
        Check(
            "noise2inverse",
            [*worker, "--worker", "noise2inverse"],
            timeout=90,
            expects=["Noise2Inverse batched inference"],
        )
    )
    sweeps = {
        "multirun": ([], 1),
        "multirun ddp": (["trainer=ddp", "trainer.devices=2"], 2),
        "local_parallel": (["hydra/launcher=local_parallel", "hydra.sweeper.max_batch_size=2"], 2),
    }
    for group, (options, gpus) in sweeps.items():
        folder = workdir / group.replace(" ", "-")
        checks.append(
            Check(
                group,
                [
                    *train,
                    "loss=sup,mc",
                    *TINY,
                    *accelerator,
                    *options,
                    *overrides,
                    f"hydra.sweep.dir={folder}",
                ],
                timeout=150,
                min_gpus=gpus if gpus > 1 else 0,
                outputs=folder,
                ddp_ranks=2 if "trainer=ddp" in options else 0,
            )
        )
    compile_name = "model.compile=true loss=sup bf16-mixed"  # last: compiling takes the longest
    compiled = [
        *worker,
        "--worker",
        "fast_dev_run",
        "--precision",
        "bf16-mixed",
        "--losses",
        "sup",
        "--label",
        compile_name,
        *extra,
        "--override",
        "model.compile=true",
    ]
    checks.append(Check("model.compile=true", compiled, timeout=240, expects=[compile_name]))
    if device == "cpu":
        for check in checks:
            check.timeout *= CPU_TIMEOUT_FACTOR
    return checks


def verify_outputs(check: Check) -> str | None:
    """What a sweep left wrong, or ``None``."""
    jobs = sorted(p.parent for p in check.outputs.glob("*/metrics.json"))
    if len(jobs) != check.jobs:
        return f"{len(jobs)} of {check.jobs} jobs wrote metrics.json"
    if check.ddp_ranks and not all((job / "train_ddp_process_1.log").is_file() for job in jobs):
        return "a job has no log of DDP rank 1"
    return None


def results_of(check: Check, run: WorkerRun) -> list[Result]:
    """The check's results from what its process reported, or from its exit and outputs."""
    if check.expects:
        reported = {
            item["name"]: Result(item["name"], "passed" if item["passed"] else "failed", item["detail"])
            for item in run.results
        }
        missing = f"no result: {run.error}"
        return [reported.get(name, Result(name, "failed", missing)) for name in check.expects]
    if run.status != 0:
        return [Result(check.group, "failed", run.error)]
    problem = verify_outputs(check) if check.outputs else None
    return [Result(check.group, "failed" if problem else "passed", problem or "every job finished")]


def run_checks(checks: list[Check], gpus: int, budget: float, workdir: Path) -> list[Result]:
    """Run the checks in order within ``budget`` seconds; each one's log goes to ``workdir``."""
    env = worker_env(SSMRI_CACHE_DIR=str(workdir / "cache"), WANDB_MODE="disabled", HYDRA_FULL_ERROR="1")
    deadline = time.monotonic() + budget
    results = []
    for check in checks:
        names = check.expects or [check.group]
        remaining = deadline - time.monotonic()
        if check.min_gpus > gpus:
            results += [Result(n, "not run", f"needs {check.min_gpus} GPUs, {gpus} visible") for n in names]
            continue
        if remaining < 10:
            results += [
                Result(
                    n,
                    "not run",
                    f"the {budget:.0f} s budget was spent (rerun it with --only '{check.group}')",
                )
                for n in names
            ]
            continue
        check.timeout = min(check.timeout, remaining)
        print(f"{check.group} ...", flush=True)
        run = run_worker(check.command, check.timeout, env, workdir)
        log = workdir / f"{check.group.replace(' ', '-')}.log"
        write_text(log, run.stdout + "\n--- stderr ---\n" + run.stderr)
        for result in results_of(check, run):
            print(f"  {result.status}: {result.name}: {result.detail}", flush=True)
            results.append(result)
    return results


def render_report(results: list[Result], environment: str, seconds: float, dry_run: bool) -> str:
    """``bench/gpu-check.md``: one line per check, passed / failed / not run, and a count."""
    lines = ["# GPU check (`make gpu-check`)", ""]
    if dry_run:
        lines += ["**Dry run on the CPU (`--device cpu`)**: it tests this checker, not a GPU.", ""]
    lines += [f"{environment}; took {seconds:.0f} s.", ""]
    lines += [f"- {r.status}: {r.name}" + (f": {r.detail}" if r.detail else "") for r in results]
    counts = {status: sum(r.status == status for r in results) for status in ("passed", "failed", "not run")}
    lines += ["", "Summary: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + "."]
    return "\n".join(lines) + "\n"


def environment_line(device: str, gpus: int) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if device == "cuda":
        names = sorted({torch.cuda.get_device_name(i) for i in range(gpus)})
        where = f"{gpus} x {', '.join(names)}, CUDA {torch.version.cuda}"
    else:
        where = "CPU"
    return f"Device: {where}; torch {torch.__version__}; {when}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out",
        default=None,
        help="the report (default bench/gpu-check.md; with --device cpu outputs/gpu-check-cpu.md)",
    )
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all checks (default 450)")
    parser.add_argument(
        "--losses",
        default=None,
        help="comma-separated loss configs (default: every conf/loss/*.yaml; with --device cpu: sup)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated check groups to run (default: all; with --device cpu: 'fast_dev_run 32-true')",
    )
    parser.add_argument("--override", action="append", default=[], help="Hydra override for every run")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--workdir", default=None, help="where runs and logs go (default: a new temporary folder)"
    )
    parser.add_argument("--worker", choices=["fast_dev_run", "noise2inverse"], help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="32-true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    dry = args.device == "cpu"
    args.losses = [m for m in (args.losses or ("sup" if dry else ",".join(METHODS))).split(",") if m]
    unknown = sorted(set(args.losses) - set(METHODS))
    if unknown:
        parser.error(f"unknown losses {unknown}; choose from {METHODS}")
    if args.only:
        args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    elif dry:
        args.only = ["fast_dev_run 32-true"]
    unknown_groups = sorted(set(args.only or ()) - set(GROUPS))
    if unknown_groups:
        parser.error(f"--only: unknown groups {unknown_groups}; choose from {list(GROUPS)}")
    args.out = args.out or ("outputs/gpu-check-cpu.md" if dry else "bench/gpu-check.md")
    if args.budget <= 0:
        parser.error(f"--budget must be > 0 seconds, got {args.budget}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ssmri-gpu-check-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.worker:
        from benchmarks import gpu_worker

        if args.worker == "fast_dev_run":
            gpu_worker.fast_dev_run(
                args.losses, args.precision, args.device, workdir, args.override, args.label
            )
        else:
            gpu_worker.noise2inverse(args.device)
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    checks = plan(args.device, args.losses, workdir, args.override)
    if args.only:
        checks = [c for c in checks if c.group in args.only]
    print(f"gpu-check: {len(checks)} checks, budget {args.budget:.0f} s, runs under {workdir}", flush=True)
    started = time.monotonic()
    results = run_checks(checks, gpus, args.budget, workdir)
    report = render_report(
        results, environment_line(args.device, gpus), time.monotonic() - started, dry_run=args.device == "cpu"
    )
    write_text(Path(args.out), report)
    print(f"wrote {args.out}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
