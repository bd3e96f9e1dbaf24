"""Fail before training, not after: memory, writable folders and room, checked up front.

Cheap estimates, stated in the messages: the cache holds per sample its k-space (float32,
2 channels per coil), its mask (uint8) and its target (float32, 2 channels); a checkpoint
holds about three float32 copies of the parameters (weights and Adam's two moments), and a
run keeps one file per name its callbacks write (:func:`checkpoint_files`: ``last.ckpt``,
``best.ckpt`` and a ``select-<rule>.ckpt`` per other monitored rule), plus the temporary copy
an atomic write keeps beside its destination. Simulating a split keeps that split's images,
masks and measurements in memory with an FFT's worth of temporaries.
"""

import os
import shutil
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from ssmri.atomic import atomic_write
from ssmri.errors import ConfigError, DiskError
from ssmri.evaluation.selection_rules import RULES
from ssmri.lit.callbacks import CheckpointOnInterrupt
from ssmri.lit.selection_checkpoints import SelectionCheckpoints

GB = 1e9


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def simulation_bytes(image_size: int, count: int, coils: int = 1) -> int:
    """Memory to simulate ``count`` images: images, masks, measurements, FFT temporaries, and
    one image's rendering work (a dozen float32 fields)."""
    pixels = image_size * image_size
    per_sample = pixels * (8 + 4 + 8 * coils + 8 * coils)
    return count * per_sample + 12 * 4 * pixels


def cache_bytes(image_size: int, count: int, coils: int = 1) -> int:
    """Bytes of the HDF5 cache of ``count`` samples."""
    return count * image_size * image_size * (8 * coils + 1 + 8)


def _counts(cfg: DictConfig) -> list[int]:
    return [int(cfg.data.get(f"num_{split}") or 1) for split in ("train", "val", "test")]


def check_memory(cfg: DictConfig) -> None:
    """Refuse a data size whose simulation would not fit in memory, before allocating any of it."""
    size, coils = int(cfg.data.image_size), int(cfg.physics.get("coils") or 1)
    needed = simulation_bytes(size, max(_counts(cfg)), coils)
    available = available_memory()
    if available is not None and needed > available:
        raise ConfigError(
            f"data.image_size={size} with {max(_counts(cfg))} images per split needs about "
            f"{needed / GB:.1f} GB of memory to simulate, and {available / GB:.1f} GB are "
            f"available; choose a smaller data.image_size or fewer images (data.num_train)"
        )


def check_writable(folder: Path, key: str) -> None:
    """Write and remove a probe file in ``folder``; folders made for it are removed again."""
    folder = Path(folder)
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".ssmri-write-probe-{os.getpid()}"
        with atomic_write(probe) as temporary:
            temporary.write_bytes(b"probe")
        probe.unlink(missing_ok=True)
        for made in created:  # deepest first; a folder another process filled meanwhile stays
            try:
                made.rmdir()
            except OSError:
                break
    except OSError as error:
        raise DiskError(
            f"{key}: cannot write to {folder} ({error.strerror or error}); make it writable or "
            f"point {key} elsewhere. Nothing was trained"
        ) from None


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest existing parent (a folder is created only when first written)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_room(needs: dict[Path, tuple[str, int]]) -> None:
    """``needs``: folder -> (config key, bytes). Folders on one file system add up."""
    by_device: dict[int, list[tuple[Path, str, int]]] = {}
    for folder, (key, size) in needs.items():
        by_device.setdefault(os.stat(_existing(folder)).st_dev, []).append((folder, key, size))
    for entries in by_device.values():
        needed = sum(size for _, _, size in entries)
        free = shutil.disk_usage(_existing(entries[0][0])).free
        if needed > free:
            parts = ", ".join(f"{key} {size / 1e6:.1f} MB in {folder}" for folder, key, size in entries)
            raise DiskError(
                f"not enough disk space: this run needs about {needed / 1e6:.1f} MB ({parts}) and "
                f"the file system has {free / 1e6:.1f} MB free; free space or point those keys at "
                f"another disk. Nothing was trained"
            )


def checkpoint_files(trainer, module, datamodule) -> set[Path]:
    """Every checkpoint file the trainer's callbacks will write (one file per name).

    The selection callback writes ``best.ckpt`` for the configured rule and, with
    ``selection.test_all``, ``select-<rule>.ckpt`` for each other monitored rule (``last``
    monitors nothing: it reads ``last.ckpt``, or writes ``select-last.ckpt`` where no other
    callback keeps ``last.ckpt``); Lightning's ``ModelCheckpoint`` keeps ``save_top_k`` files
    (one per epoch with -1) plus ``last.ckpt`` with ``save_last``.
    """
    files: set[Path] = set()
    selectors = []
    for callback in trainer.callbacks:
        if isinstance(callback, SelectionCheckpoints):
            selectors.append(callback)
        elif isinstance(callback, CheckpointOnInterrupt):
            files.add(Path(callback.path))
        elif isinstance(callback, ModelCheckpoint) and callback.dirpath:
            folder = Path(callback.dirpath)
            kept = callback.save_top_k if callback.save_top_k >= 0 else max(trainer.max_epochs or 1, 1)
            if kept == 1 and callback.filename and "{" not in callback.filename:
                files.add(folder / f"{callback.filename}.ckpt")
            else:  # names chosen by epoch or metric: count them
                files |= {folder / f"{callback.filename or 'epoch'}-{n}.ckpt" for n in range(kept)}
            if callback.save_last:
                files.add(folder / "last.ckpt")
    for selector in selectors:
        choices = selector.selection.choices(module.loss, getattr(datamodule, "val_ground_truth", True))
        configured = choices[0].used
        for rule in dict.fromkeys(choice.used for choice in choices):
            if RULES[rule][0] is not None:
                files.add(selector.dirpath / ("best.ckpt" if rule == configured else f"select-{rule}.ckpt"))
        if selector.dirpath / "last.ckpt" not in files:
            files.add(selector.dirpath / "select-last.ckpt")
    return files


def check_run_folders(cfg: DictConfig, module, datamodule, trainer, output_dir: Path) -> None:
    """Output, checkpoint and cache folders writable, with room for the cache and every checkpoint."""
    check_writable(output_dir, "paths.output_dir")
    files = checkpoint_files(trainer, module, datamodule)
    folders = {path.parent for path in files}
    for folder in sorted(folders):
        check_writable(folder, "callbacks.*.dirpath (checkpoints)")
    parameters = sum(p.numel() for p in module.parameters())
    checkpoint = 3 * 4 * parameters
    needs = {}
    for folder in sorted(folders):
        count = sum(path.parent == folder for path in files)
        # One more copy: an atomic write keeps the new file beside the old until the rename.
        needs[folder] = (f"{count} checkpoints", (count + 1) * checkpoint)
    needs.setdefault(output_dir, ("outputs", 0))
    if datamodule.rebuild_cache or not datamodule.cache_path.exists():
        check_writable(datamodule.cache_dir, "paths.cache_dir (SSMRI_CACHE_DIR)")
        coils = int(cfg.physics.get("coils") or 1)
        size = cache_bytes(int(cfg.data.image_size), sum(_counts(cfg)), coils)
        key, previous = needs.get(datamodule.cache_dir, ("", 0))
        needs[datamodule.cache_dir] = ("the cache" + (f" and {key}" if key else ""), previous + size)
    check_room(needs)
