"""Scaling out: DDP ranks on CPU (gloo) reproduce the one-process numbers, each sweep job's ranks
stay in that job, SLURM requeue is Lightning's alone, and the local-parallel launcher runs."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd
from omegaconf import read_write

from ssmri.runner.distributed import (
    LAUNCHER_ENVIRONMENT,
    job_scope,
    single_device_job,
    use_one_gpu_per_local_job,
)
from ssmri.runner.run import train
from tests.helpers.config import FAST, compose_config, compose_only

ROOT = Path(__file__).parents[1]
# 5 test images in batches of 2 on 2 ranks: the distributed sampler pads the set to 6.
TINY = [*FAST, "data.num_test=5", "data.batch_size=2", "trainer.max_epochs=1"]
DDP = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]


def run_entry(script: str, args: list[str], cwd: Path, cache: Path, timeout: int = 300):
    """The real entry point in a fresh process, as a user would start it."""
    env = {**os.environ, "SSMRI_CACHE_DIR": str(cache), "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def without_launcher_environment(monkeypatch) -> None:
    """Unset Lightning's launcher variables now, and whatever the test sets of them afterwards."""
    for name in LAUNCHER_ENVIRONMENT:
        monkeypatch.setenv(name, "")  # recorded as absent before the test, so restored as absent
        monkeypatch.delenv(name)


def per_image(run: Path) -> list[dict]:
    with open(run / "test_per_image.csv") as file:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]


# -- DDP on CPU ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_ranks_evaluate_each_test_image_once_with_the_one_process_numbers(tmp_path):
    trained = train(compose_config(tmp_path, TINY), method="sup")
    common = [*[o for o in TINY if o != "logger=none"], f"ckpt_path={trained['best_checkpoint']}"]
    run_entry("eval.py", [*common, f"hydra.run.dir={tmp_path / 'one'}"], tmp_path, tmp_path / "cache")
    ddp = run_entry(
        "eval.py", [*common, *DDP, f"hydra.run.dir={tmp_path / 'two'}"], tmp_path, tmp_path / "cache"
    )
    assert "Using `DistributedSampler`" in ddp.stderr  # 3 images per rank: image 0 twice

    one, two = per_image(tmp_path / "one"), per_image(tmp_path / "two")
    assert [r["index"] for r in two] == [r["index"] for r in one] == [0, 1, 2, 3, 4]
    for a, b in zip(one, two):
        for name, value in a.items():
            assert b[name] == pytest.approx(value, rel=1e-5, abs=1e-6), (a["index"], name)
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert one["num_test_images"] == two["num_test_images"] == 5
    for name in (k for k in one if k.startswith("test/")):
        assert two[name] == pytest.approx(one[name], rel=1e-5, abs=1e-6), name
    assert (tmp_path / "two" / "train_ddp_process_1.log").is_file()


@pytest.mark.slow
def test_two_rank_training_completes_and_writes_its_outputs_once(tmp_path):
    run = tmp_path / "run"
    run_entry("train.py", [*TINY, *DDP, f"hydra.run.dir={run}"], tmp_path, tmp_path / "cache")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_images"] == 5 and metrics["epochs"] == 1
    assert len(per_image(run)) == 5
    # best.ckpt: the val_loss pick; select-val_psnr.ckpt: the oracle's, tested beside it
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
        "select-val_psnr.ckpt",
    ]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (run / "train_ddp_process_1.log").read_text()
    # the sample figure gathers both ranks' images (rank 0 alone holds images 0, 2, 4)
    assert torch.load(run / "samples.pt", weights_only=True)["index"].tolist() == [0, 1, 2, 3]
    # rank 1 writes neither its own .hydra nor a folder of its own
    assert [p.parent.name for p in tmp_path.rglob(".hydra")] == ["run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]


@pytest.mark.slow
def test_adversarial_ddp_without_unused_parameter_search_is_refused_clearly(tmp_path):
    env = {
        **os.environ,
        "SSMRI_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(ROOT),
    }
    args = [*TINY, *DDP, "loss=adversarial", "loss.discriminator.features=4", f"hydra.run.dir={tmp_path}/run"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "need trainer.strategy.find_unused_parameters=true" in result.stderr
    run_entry(
        "train.py",
        [*args[:-1], "trainer.strategy.find_unused_parameters=true", f"hydra.run.dir={tmp_path}/ok"],
        tmp_path,
        tmp_path / "cache",
    )
    assert (tmp_path / "ok" / "metrics.json").is_file()


@pytest.mark.slow
def test_each_sweep_job_has_its_own_ranks_in_its_own_directory(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_entry(
        "train.py",
        ["-m", "loss=sup,mc", *TINY, *DDP, f"hydra.sweep.dir={sweep}"],
        tmp_path,
        tmp_path / "cache",
    )
    # Rank 1 of a job runs that job: had it re-run `-m ...`, it would have launched a sweep too.
    assert (result.stdout + result.stderr).count("Launching 2 jobs locally") == 1
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0-sup-s0", "1-mc-s0"]
    for job in jobs:
        assert json.loads((sweep / job / "metrics.json").read_text())["num_test_images"] == 5
        log = (sweep / job / "train_ddp_process_1.log").read_text()
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log and f"outputs in {sweep / job}" in log
    assert "| sup |" in (sweep / "results.md").read_text()
    assert "| mc |" in (sweep / "results.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "sweep"]  # no stray run folders


@pytest.mark.slow
def test_a_ddp_sweep_records_a_failed_job_and_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    # lr=1e30: the loss is NaN at the second step, on both ranks
    with pytest.raises(AssertionError, match="1 of 2 jobs have no result: 0-mc-s0"):  # exit status 1
        run_entry(
            "train.py",
            [
                "-m",
                "loss=mc",
                "module.optimizer.lr=1e30,1e-3",
                *TINY,
                *DDP,
                "data.num_train=16",
                f"hydra.sweep.dir={sweep}",
            ],
            tmp_path,
            tmp_path / "cache",
        )
    assert "training loss is nan" in json.loads((sweep / "0-mc-s0" / "failed.json").read_text())["error"]
    assert json.loads((sweep / "1-mc-s0" / "metrics.json").read_text())["num_test_images"] == 5
    table = (sweep / "results.md").read_text()
    # One row per learning rate (as Hydra records it); no sup row: the gap reads "–", never "nan".
    finished = next(line for line in table.splitlines() if line.startswith("| mc | 0.001 | "))
    assert "| mc | 1e+30 | failed: 0-mc-s0: " in table and "nan" not in finished


def test_job_scope_points_lightnings_rank_command_at_the_running_job(tmp_path, monkeypatch):
    cfg = compose_config(tmp_path, [*FAST, "loss=mc"])
    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg):
        hydra_cfg.mode = RunMode.MULTIRUN
        hydra_cfg.overrides.task = ["loss=mc", "data=phantom", '+note="a b,c"']
        hydra_cfg.overrides.hydra = [f"hydra.sweep.dir={tmp_path}", "hydra.mode=MULTIRUN"]
    run_dir = hydra_cfg.run.dir
    argv = ["train.py", "-m", "loss=sup,mc", "data=phantom", '+note="a b,c"']
    monkeypatch.setattr(sys, "argv", argv)
    without_launcher_environment(monkeypatch)

    with job_scope(cfg):
        command, _ = _hydra_subprocess_cmd(local_rank=1)
        os.environ.update(LOCAL_RANK="0", WORLD_SIZE="2", MASTER_PORT="29511")  # as Lightning does
    job = command[command.index("loss=mc") :]
    assert job == [
        "loss=mc",
        "data=phantom",
        '+note="a b,c"',
        f"hydra.sweep.dir={tmp_path}",
        f'hydra.run.dir="{tmp_path / "run"}"',
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]
    assert "loss=sup,mc" not in command  # the job alone, not the sweep
    assert sys.argv == argv and HydraConfig.get().run.dir == run_dir
    assert not {"LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"} & set(os.environ)


def test_a_failed_jobs_ranks_are_ended_without_lightnings_watchdog_killing_the_sweep(tmp_path):
    # In a child process: if the watchdog fired, it would SIGKILL the process running it.
    script = textwrap.dedent("""
        import subprocess, sys, time
        from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
        from ssmri.runner.distributed import _end_ranks, _rank_observers
        rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        watchdog = _ChildProcessObserver(main_pid=__import__("os").getpid(),
                                         child_processes=[rank], sleep_period=0.2)
        watchdog.start()
        _end_ranks(_rank_observers(), failed=True, grace_s=1.0)
        assert rank.returncode not in (None, 0), rank.returncode
        time.sleep(1.0)  # the watchdog wakes up, sees nothing left to watch and stops
        assert not watchdog.is_alive()
        print("sweep goes on")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "sweep goes on" in result.stdout, result.stderr[-2000:]


# -- SLURM -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, tasks, nodes",
    [
        ([], 1, 1),
        (["trainer=ddp"], 2, 1),
        (["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=3"], 4, 3),
    ],
)
def test_slurm_launcher_asks_one_task_per_device(overrides, tasks, nodes):
    launcher = compose_only(["hydra/launcher=slurm", *overrides], return_hydra_config=True).hydra.launcher
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (tasks, tasks, nodes)
    assert launcher.max_num_timeout == 0


def test_slurm_sbatch_file_sends_lightnings_requeue_signal(tmp_path, monkeypatch):
    """The sbatch text that the plugin would submit, built by submitit itself."""
    import submitit.slurm.slurm as submitit_slurm

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")  # submitit only checks that it exists
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    sbatch = []

    class Submitted(Exception):
        pass

    def capture(executor, command):
        sbatch.append(executor._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "_submit_command", capture)
    cfg = compose_only(
        [
            "hydra/launcher=slurm",
            "trainer=ddp",
            "trainer.devices=4",
            "trainer.num_nodes=2",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        return_hydra_config=True,
    )
    launcher = hydra.utils.instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    with pytest.raises(Submitted):
        launcher.launch([["loss=sup"], ["loss=mc"]], initial_job_idx=0)
    lines = sbatch[0].splitlines()
    for line in (
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --nodes=2",
        "#SBATCH --signal=USR1@120",
        "#SBATCH --array=0-1%2",
    ):
        assert line in lines, sbatch[0]
    assert not [line for line in lines if "USR2" in line]


class SignalAtStep(L.Callback):
    """Sends this process ``signum`` after training step ``step`` (SLURM's warning, in a test)."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class RecordResume(L.Callback):
    """Remembers which checkpoint fit started from."""

    resumed_from: list = []

    def on_fit_start(self, trainer, pl_module):
        RecordResume.resumed_from.append(trainer.ckpt_path)


def test_on_slurm_lightning_saves_requeues_and_resumes_while_submitits_handler_stays_idle(
    tmp_path, monkeypatch
):
    from submitit.core.utils import DelayedSubmission, JobPaths
    from submitit.slurm.slurm import SlurmJobEnvironment

    for name, value in dict(
        SLURM_NTASKS="1",
        SLURM_NTASKS_PER_NODE="1",
        SLURM_NNODES="1",
        SLURM_JOB_ID="4242",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SLURM_NODEID="0",
        SLURM_JOB_NAME="train",
        SLURM_NODELIST="localhost",
        SUBMITIT_EXECUTOR="slurm",
    ).items():
        monkeypatch.setenv(name, value)
    without_launcher_environment(monkeypatch)
    (tmp_path / "bin").mkdir()
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.calls"}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    signals = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGCONT)
    saved = {signum: signal.getsignal(signum) for signum in signals}
    # What submitit's job process does before it calls the Hydra job: its own handlers.
    SlurmJobEnvironment()._handle_signals(JobPaths(tmp_path / "submitit"), DelayedSubmission(print))
    submitit_handler = signal.getsignal(signal.SIGUSR2)
    RecordResume.resumed_from = []
    record = [f"+callbacks.resume._target_={__name__}.RecordResume"]
    try:
        warned = [
            f"+callbacks.signal._target_={__name__}.SignalAtStep",
            "+callbacks.signal.step=3",
            f"+callbacks.signal.signum={int(signal.SIGUSR1)}",
        ]
        train(
            compose_config(tmp_path, [*FAST, "data.batch_size=2", "trainer.max_epochs=2", *warned, *record])
        )
        run = tmp_path / "run"
        assert (tmp_path / "scontrol.calls").read_text().split() == ["requeue", "4242"]
        assert torch.load(run / "hpc_ckpt_1.ckpt", weights_only=True)["global_step"] == 3
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler  # never replaced, never called
        # The requeued job: same directory, no ckpt_path, and Lightning resumes by itself.
        train(compose_config(tmp_path, [*FAST, "data.batch_size=2", "trainer.max_epochs=2", *record]))
        assert RecordResume.resumed_from == [None, str(run / "hpc_ckpt_1.ckpt")]
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


# -- several jobs side by side ---------------------------------------------------------------------
@pytest.mark.slow
def test_local_parallel_launcher_runs_a_two_job_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    run_entry(
        "train.py",
        ["-m", "hydra/launcher=local_parallel", "loss=sup,mc", *TINY, f"hydra.sweep.dir={sweep}"],
        tmp_path,
        tmp_path / "cache",
    )
    for job in ("0-sup-s0", "1-mc-s0"):
        assert json.loads((sweep / job / "metrics.json").read_text())["num_test_images"] == 5
    assert "| mc |" in (sweep / "results.md").read_text()
    # each job ran in its own submitit process, with its own log
    assert len(list((sweep / ".submitit").rglob("*_0_log.out"))) == 2


def test_local_jobs_take_one_gpu_each_and_refuse_ddp(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    use_one_gpu_per_local_job(4)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    use_one_gpu_per_local_job(4)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    cfg = compose_config(tmp_path, [*FAST, *DDP])
    assert not single_device_job(cfg.trainer)
    assert single_device_job(compose_config(tmp_path, FAST).trainer)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    with pytest.raises(ValueError, match=r"local_parallel runs single-device jobs.*trainer.devices=2"):
        with job_scope(cfg):
            pass
