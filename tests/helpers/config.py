"""Compose configs the way ``train.py`` does, without a Hydra run around the test."""

from pathlib import Path

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

CONF = Path(__file__).parents[2] / "ssmri" / "conf"

FAST = [
    "data=phantom",
    "data.image_size=32",
    "data.num_train=8",
    "data.num_val=4",
    "data.num_test=4",
    "data.batch_size=4",
    "model.denoiser.base_features=8",
    "trainer.accelerator=cpu",
    "logger=none",
]
"""Overrides that make a whole run take seconds: 32x32 phantoms, a narrow U-Net, no logger."""


def options(group: str) -> list[str]:
    """The option names of a config group, e.g. ``options("loss")`` -> ``["adversarial", ...]``."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def compose_only(
    overrides: list[str], config_name: str = "train", return_hydra_config: bool = False
) -> DictConfig:
    """The composed config, with the ``hydra`` node only when asked for; nothing is set up."""
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="ssmri.conf"):
        return compose(config_name, overrides=overrides, return_hydra_config=return_hydra_config)


def compose_config(tmp_path: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    """Compose like ``train.py`` would, with outputs and cache under ``tmp_path``."""
    cfg = compose_only(overrides, config_name, return_hydra_config=True)
    return _as_job(cfg, tmp_path / "run", tmp_path / "cache")


def compose_recorded(run_dir: Path, output_dir: Path, cache_dir: Path, overrides: list[str]) -> DictConfig:
    """Compose a run folder's own record, as ``--config-dir <run>/.hydra --config-name config`` does
    (``make robustness`` evaluates that way), with outputs in ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str((Path(run_dir) / ".hydra").resolve())):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    return _as_job(cfg, output_dir, cache_dir)


def _as_job(cfg: DictConfig, output_dir: Path, cache_dir: Path) -> DictConfig:
    """``cfg`` as a job's task function sees it: Hydra's runtime set, the ``hydra`` node gone."""
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.paths.cache_dir = str(cache_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in a real run: the task function never sees the hydra node
    return cfg
