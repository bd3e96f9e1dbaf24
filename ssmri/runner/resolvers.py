"""OmegaConf resolvers the configs use; registered when ``ssmri`` is imported."""

from omegaconf import OmegaConf


def num_gpus() -> int:
    """GPUs this process can use, counted without initialising CUDA (Lightning's NVML count)."""
    from lightning.pytorch.accelerators import CUDAAccelerator

    return CUDAAccelerator.auto_device_count() if CUDAAccelerator.is_available() else 0


def sweep_group() -> str | None:
    """The sweep directory of a multirun job (its wandb group); ``None`` for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    return str(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None


def checkpoint_method(path: str | None) -> str:
    """The loss a checkpoint was trained with (``eval.yaml`` names its output folder after it)."""
    from ssmri.checkpoints.load import checkpoint_method as read

    return read(path)


# `${ssmri.num_gpus:}` in hydra/launcher/local_parallel.yaml, `${ssmri.sweep_group:}` in logger/wandb.yaml.
OmegaConf.register_new_resolver("ssmri.num_gpus", num_gpus, replace=True)
OmegaConf.register_new_resolver("ssmri.sweep_group", sweep_group, replace=True)
# `${ssmri.checkpoint_method:...}` in eval.yaml.
OmegaConf.register_new_resolver("ssmri.checkpoint_method", checkpoint_method, replace=True)
