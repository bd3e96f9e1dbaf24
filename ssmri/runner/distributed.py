"""Multi-process jobs at the Hydra/Lightning edge: each sweep job's DDP ranks join that job only.

Lightning starts DDP ranks 1..N-1 by re-running ``sys.argv`` plus ``hydra.run.dir=<HydraConfig
run.dir>`` (``lightning.fabric.strategies.launchers.subprocess_script._hydra_subprocess_cmd``).
Inside a Hydra multirun that command is the whole sweep (``-m ...``) and ``run.dir`` is not the
job's folder. :func:`job_scope` points both at the running job while it runs, and afterwards
removes what the job left in this process, so that the next job of a sequential sweep starts
as cleanly as the first.
"""

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, read_write

log = logging.getLogger(__name__)

# What Lightning (and torch.distributed) write into this process's environment during a job:
# the launcher's rendezvous and rank variables (``_call_children_scripts``, ``_init_dist_connection``,
# ``SLURMEnvironment.main_port``), the thread count it picks for N ranks on one machine
# (``_set_num_threads_if_needed``), the seed that ranks inherit (``seed_everything``) and the
# cuBLAS setting of ``deterministic=True``. A LOCAL_RANK left behind makes the next job's
# Lightning believe its ranks were started externally, and it waits for them forever.
LAUNCHER_ENVIRONMENT = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "RANK",
    "GROUP_RANK",
    "OMP_NUM_THREADS",
    "PL_GLOBAL_SEED",
    "PL_SEED_WORKERS",
    "CUBLAS_WORKSPACE_CONFIG",
)
# Hydra overrides that the rank command must not repeat: Lightning appends its own run.dir,
# job.name and output_subdir, and the ranks of one job run that job, not a sweep.
_NOT_FOR_RANKS = ("hydra.mode", "hydra.run.dir", "hydra.job.name", "hydra.output_subdir")


def rank_command_overrides(hydra_cfg: DictConfig) -> list[str]:
    """The overrides that rebuild the running job, and only it, in run mode.

    The job's own task overrides (the sweep's values already chosen, e.g. ``loss=mc``), then the
    command line's Hydra overrides (``hydra.sweep.dir=...`` keeps ``${hydra:sweep.dir}``
    interpolations equal) less the ones that would make the ranks start a sweep.
    """
    keep = [o for o in hydra_cfg.overrides.hydra if not o.lstrip("+~").startswith(_NOT_FOR_RANKS)]
    return [*hydra_cfg.overrides.task, *keep]


def single_device_job(trainer_cfg: DictConfig | None) -> bool:
    """Whether ``trainer_cfg`` runs one process (``devices`` 1, ``auto``, -1 or one id; one node)."""
    if trainer_cfg is None:
        return True
    devices = trainer_cfg.get("devices", 1)
    nodes = int(trainer_cfg.get("num_nodes", 1) or 1)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, str) and "," in devices:  # "0,1": device ids
        devices = [d for d in devices.split(",") if d.strip()]
    if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, str) or devices in (-1, 0, 1):
        count = 1  # "auto"/-1 take every visible device: one after use_one_gpu_per_local_job
    else:
        count = int(devices)
    return count == 1 and nodes == 1


def use_one_gpu_per_local_job(job_num: int) -> None:
    """In a job of submitit's local executor, keep one of the GPUs it was given.

    submitit hands every local job the same ``CUDA_VISIBLE_DEVICES=0,...,n-1`` (``gpus_per_node``
    of hydra/launcher/local_parallel.yaml); job ``k`` keeps GPU ``k mod n``, so the jobs of a
    batch of at most ``n`` (``hydra.sweeper.max_batch_size``) each have a GPU to themselves.
    Must run before CUDA is initialised in this process.
    """
    visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if len(visible) > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible[job_num % len(visible)]
        log.info("local job %d uses GPU %s", job_num, os.environ["CUDA_VISIBLE_DEVICES"])


@contextmanager
def job_scope(cfg: DictConfig, rank_grace_s: float = 120.0) -> Iterator[None]:
    """Run one Hydra job so that its DDP ranks join it alone, then leave no trace of it.

    While the job runs (multirun only): ``sys.argv`` holds the job's own overrides without
    ``-m`` and ``hydra.run.dir`` the job's output directory, which is what Lightning's launcher
    reads to start ranks 1..N-1 (their log is ``<job dir>/train_ddp_process_<k>.log``).

    Afterwards, in any run mode: the rank processes this job started have exited (a job that
    raised ends them; one that finished gets ``rank_grace_s`` to let them finish too), the
    process group is destroyed and :data:`LAUNCHER_ENVIRONMENT` and the thread count are as
    they were before the job.

    Args:
        cfg: the job's config; ``cfg.trainer`` is checked against the launcher.
        rank_grace_s: how long finished jobs wait for their other ranks to exit.
    """
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    local_executor = os.environ.get("SUBMITIT_EXECUTOR") == "local"
    if local_executor and not single_device_job(cfg.get("trainer")):
        raise ValueError(
            f"hydra/launcher=local_parallel runs single-device jobs, got trainer.devices="
            f"{cfg.trainer.get('devices')} trainer.num_nodes={cfg.trainer.get('num_nodes', 1)}; "
            "sweep DDP jobs with the default launcher (one job after another, each on all "
            "devices) or hydra/launcher=slurm, or set trainer.devices=1"
        )
    restored = (*LAUNCHER_ENVIRONMENT, "CUDA_VISIBLE_DEVICES")  # the last one: a local job's GPU
    saved_environment = {name: os.environ.get(name) for name in restored}
    saved_threads = torch.get_num_threads()
    saved_argv, saved_run_dir = list(sys.argv), hydra_cfg.run.dir
    observers_before = set(_rank_observers())
    if local_executor and multirun:
        use_one_gpu_per_local_job(int(hydra_cfg.job.num))
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    if multirun:
        sys.argv = [sys.argv[0], *rank_command_overrides(hydra_cfg)]
    failed = False
    try:
        yield
    except Exception:
        failed = True  # not a signal's graceful stop (SystemExit), when all ranks stop together
        raise
    finally:
        sys.argv = saved_argv
        with read_write(hydra_cfg.run):
            hydra_cfg.run.dir = saved_run_dir
        observers = [o for o in _rank_observers() if o not in observers_before]
        _end_ranks(observers, failed, rank_grace_s)
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(saved_threads)


def _rank_observers() -> list:
    """Lightning's watchdog threads, one per launch, each holding the ranks it started."""
    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    return [t for t in threading.enumerate() if isinstance(t, _ChildProcessObserver)]


def _end_ranks(observers: list, failed: bool, grace_s: float) -> None:
    """Wait for the rank processes a finished job started, or end them if the job failed.

    Lightning's watchdog SIGKILLs this whole process when one of its ranks exits non-zero, which
    in a sweep would end every later job too; the job is over, so its ranks are ours to end.
    A failed job's ranks may wait in a collective for this one forever: SIGTERM, then SIGKILL.
    """
    processes: list[subprocess.Popen] = []
    for observer in observers:
        processes += observer._child_processes
        observer._child_processes = []  # the watchdog finds nothing left to watch and stops
    for process in processes:
        if not failed:
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("rank process %d runs on %.0f s after its job; ending it", process.pid, grace_s)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode and not failed:
            log.error("rank process %d of this job exited with code %d", process.pid, process.returncode)
