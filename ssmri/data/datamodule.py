"""LightningDataModule: simulate (or reuse) the k-space cache, then serve typed batches."""

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import h5py
import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torch.utils.data import DataLoader

from ssmri.data.batch import collate
from ssmri.data.cache import (
    CACHE_VERSION,
    CacheChunk,
    CacheError,
    check_cache,
    check_finite,
    config_hash,
    write_cache,
)
from ssmri.data.checks import check_images
from ssmri.data.kspace_dataset import KspaceDataset
from ssmri.data.sampler import ResumableSampler
from ssmri.data.sources import SPLITS, DataSource, MeasuredSlices
from ssmri.data.splits import read_splits, splits_record
from ssmri.physics.acquisition import Acquisition
from ssmri.physics.measured_law import MeasuredMaskLaw
from ssmri.physics.operator import SingleCoilMRI
from ssmri.seeding import seeded_rng

log = logging.getLogger(__name__)

_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}
MASK_LAWS = ("estimated", "configured")


class MRIDataModule(L.LightningDataModule):
    """Serves measurements ``y``, masks and (where allowed) ground truth of an image source.

    On first use the images are pushed through the physics (one fresh mask per sample, noise
    if configured) and stored in an HDF5 cache keyed by the data and physics configuration;
    later runs with the same configuration reuse it. Measured sources (raw multi-coil k-space)
    bring their own k-space and coil maps: the physics only draws each sample's mask (and
    noise), which masks the fully sampled k-space retrospectively. The cache is built
    ``chunk_size`` samples at a time, so memory does not grow with the data set. Training
    batches carry ground truth only when ``train_ground_truth`` is set, which the training
    code does for supervised losses alone.

    Args:
        images: the data source (phantom, brain template, fastMRI files, ...).
        physics: the acquisition that simulates the measurements.
        image_size: side length; must match the source and the physics.
        num_train, num_val, num_test: samples per split (``None``: all the source has).
        batch_size: training batch size; ``eval_batch_size`` for val/test (default the same).
        num_workers: data-loader worker processes.
        cache_dir: folder of the measurement caches.
        seed: seed of the masks and noise of the cache.
        rebuild_cache: rewrite the cache even if a valid one exists.
        chunk_size: samples loaded and simulated at a time while the cache is built; the
            cache does not depend on it.
        train_ground_truth: serve ``x`` in training batches (supervised training only).
        val_ground_truth: serve ``x`` in validation batches; ``False`` leaves a run no ground
            truth before its final test (selection by ``val_loss`` or ``last`` only).
        splits_file: a ``splits.json`` of an earlier run: use exactly its samples (the
            ``num_*`` counts are then those of the file).
        acquired_mask_law: for acquired scans (the source's own masks), the law losses draw
            fresh masks from: ``estimated`` from the training masks
            (:class:`~ssmri.physics.measured_law.MeasuredMaskLaw`), or ``configured``, the
            physics' own (``physics.sampling``, ``acceleration``, ``center_fraction``).

    Acquired scans (:attr:`DataSource.acquired`) keep their k-space and masks as measured: no
    mask is drawn and no noise added. A source without ground truth leaves every batch's ``x``
    ``None`` and the cache without targets.
    """

    def __init__(
        self,
        images: DataSource,
        physics: SingleCoilMRI,
        image_size: int,
        num_train: int | None = None,
        num_val: int | None = None,
        num_test: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str = "~/.cache/ssmri",
        seed: int = 0,
        rebuild_cache: bool = False,
        chunk_size: int = 64,
        train_ground_truth: bool = False,
        val_ground_truth: bool = True,
        splits_file: str | None = None,
        acquired_mask_law: str = "estimated",
    ):
        super().__init__()
        if acquired_mask_law not in MASK_LAWS:
            raise ValueError(f"data.acquired_mask_law={acquired_mask_law!r}; choose one of {MASK_LAWS}")
        self.acquired_mask_law = acquired_mask_law
        if images.image_size != image_size or physics.image_size != (image_size, image_size):
            raise ValueError(
                f"data.image_size={image_size}, but the images are {images.image_size} and the "
                f"physics {physics.image_size}; set sizes through data.image_size only"
            )
        if batch_size < 1 or num_workers < 0 or chunk_size < 1:
            raise ValueError(
                f"data.batch_size and data.chunk_size must be >= 1 and data.num_workers >= 0, "
                f"got {batch_size}, {chunk_size} and {num_workers}"
            )
        self.images = images
        self.physics = physics
        self._configured_law = physics.mask_law
        self.image_size = image_size
        self.counts = {"train": num_train, "val": num_val, "test": num_test}
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir).expanduser()
        self.seed = seed
        self.rebuild_cache = rebuild_cache
        self.chunk_size = chunk_size
        self._verified: Path | None = None  # the cache this object has read in full
        self.train_ground_truth = train_ground_truth
        self._val_ground_truth = bool(val_ground_truth)
        self.splits_file = splits_file
        self._sample_ids: dict[str, list[dict]] | None = None
        self.datasets: dict[str, KspaceDataset] = {}
        self._resume: tuple[int, int] | None = None

    @property
    def ground_truth(self) -> bool:
        """The source serves a target; acquired scans have none anywhere."""
        return bool(getattr(self.images, "ground_truth", True))

    @property
    def val_ground_truth(self) -> bool:
        """Validation batches carry ``x``: asked for (``data.val_ground_truth``) and available."""
        return self._val_ground_truth and self.ground_truth

    def cache_spec(self) -> dict:
        """Everything the cached measurements depend on."""
        physics = {
            "sampling": self.physics.sampling,
            "image_size": list(self.physics.image_size),
            # The law configured, not one estimated later from acquired masks (_adopt_mask_law).
            "acceleration": self._configured_law.acceleration,
            "center_fraction": self._configured_law.center_fraction,
            "noise_std": self.physics.noise_std,
        }
        if getattr(self.physics, "single_operator", False):  # only then: other caches keep their names
            physics["single_operator_seed"] = self.physics.operator_seed
        if self.simulates_maps:  # only then, so that single-coil caches keep their names
            physics["coils"] = self.physics.coils
        return {
            "cache_version": CACHE_VERSION,
            "images": self.images.describe(),
            "counts": self.counts,
            "physics": physics,
            "seed": self.seed,
            # The samples themselves only when a splits file chose them (else the counts do).
            **({"sample_ids": config_hash(self.sample_ids())} if self.splits_file else {}),
        }

    def sample_ids(self) -> dict[str, list[dict]]:
        """Each split's sample identities (``splits.json``), in the order of the cache."""
        if self._sample_ids is None:
            if self.splits_file:
                self._sample_ids = read_splits(self.splits_file, self.images)
            else:
                self._sample_ids = {s: self.images.sample_ids(s, self.counts[s]) for s in SPLITS}
        return self._sample_ids

    def splits_record(self) -> dict:
        """What ``splits.json`` holds: the source and every sample of every split."""
        return splits_record(self.images, self.sample_ids())

    @property
    def test_volume_ids(self) -> list[str]:
        """The volume each test sample belongs to (for metrics.convention=fastmri)."""
        return [str(sample["volume"]) for sample in self.sample_ids()["test"]]

    @property
    def simulates_maps(self) -> bool:
        """Multi-coil physics on image-domain data: the physics simulates the coil maps."""
        return hasattr(self.physics, "sensitivity_maps")

    @property
    def cache_path(self) -> Path:
        source = self.images.describe()["source"]
        return self.cache_dir / f"{source}-{config_hash(self.cache_spec())}.h5"

    def prepare_data(self) -> None:
        path = self.cache_path
        if path.exists() and not self.rebuild_cache:
            check_cache(path, self.cache_spec())
        else:
            totals = self.split_sizes()
            write_cache(path, self.cache_spec(), {split: self.chunks(split) for split in SPLITS}, totals)
        self._verified = path

    def chunks(self, split: str) -> Iterator[CacheChunk]:
        """The cache content of ``split``, ``chunk_size`` samples at a time."""
        start = 0
        for data in self._source_chunks(split):
            yield self.simulate(split, start, data)
            start += len(data)

    def _source_chunks(self, split: str) -> Iterator[Tensor | MeasuredSlices]:
        if not self.splits_file:
            yield from self.images.chunks(split, self.counts[split], self.chunk_size)
            return
        if not hasattr(self.images, "images_for"):
            raise ValueError(
                f"data.splits_file is not supported for {type(self.images).__name__}; remove data.splits_file"
            )
        ids = self.sample_ids()[split]
        for first in range(0, len(ids), self.chunk_size):
            yield self.images.images_for(ids[first : first + self.chunk_size])

    def split_sizes(self) -> dict[str, int]:
        """Samples per split in the cache."""
        if self.splits_file:
            return {split: len(ids) for split, ids in self.sample_ids().items()}
        return {split: len(self.images.keys(split, self.counts[split])) for split in SPLITS}

    def simulate(self, split: str, start: int, data: Tensor | MeasuredSlices) -> CacheChunk:
        """Measurements of samples ``start, start + 1, ...`` of ``split``.

        Each sample's mask and noise come from its own stream, seeded from (seed, split,
        sample index): the cache is the same whatever the chunk size.
        """
        measured = isinstance(data, MeasuredSlices)
        if measured and data.acquired:  # as measured: the file's masks, its own noise
            check_finite(data.kspace, split, start)
            if data.target is not None:
                check_images(data.target, split)
            return CacheChunk(data.kspace, data.mask.to(torch.uint8), data.target, data.maps)
        target = data.target if measured else data
        check_finite(target, split, start)
        check_images(target, split)
        # Simulated coil maps are the same for every sample (as the benchmark simulates them):
        # stored once, (C, 2, H, W). Measured data brings each slice's own estimated maps.
        shared_maps = None if measured or not self.simulates_maps else self.physics.sensitivity_maps(1)
        masks, kspace = [], []
        for offset in range(len(target)):
            rng = seeded_rng(self.seed, _SPLIT_SEED[split], start + offset)
            mask = self.physics.acquisition_masks(1, rng)  # the fixed mask under single_operator
            if measured:
                kspace.append(self.undersample(data.kspace[offset : offset + 1], mask, rng))
            else:
                acq = Acquisition(mask, shared_maps)
                kspace.append(self.physics.simulate(target[offset : offset + 1], acq, rng))
            masks.append(mask)
        mask = torch.cat(masks)
        maps = data.maps if measured else (None if shared_maps is None else shared_maps[0])
        return CacheChunk(torch.cat(kspace), mask_rows(mask), target, maps)

    def undersample(self, kspace: Tensor, mask: Tensor, rng: torch.Generator) -> Tensor:
        """Retrospective acquisition of fully sampled coil k-space ``(1, C, 2, H, W)``.

        The coils share the mask; noise, if configured, is added at the sampled entries as
        :meth:`SingleCoilMRI.simulate` adds it.
        """
        coil_mask = mask[:, :, None]  # (1, 1, 1, H, W) against (1, C, 2, H, W)
        if self.physics.noise_std > 0:
            noise = torch.randn(kspace.shape, generator=rng, dtype=kspace.dtype)
            kspace = kspace + self.physics.noise_std * noise
        return coil_mask * kspace

    def setup(self, stage: str | None = None) -> None:
        path = self.cache_path
        if not path.exists():
            raise CacheError(f"no measurement cache at {path}; call prepare_data() first")
        # Read in full once per process; later reads still verify each chunk's checksum.
        check_cache(path, self.cache_spec(), verify_data=self._verified != path)
        self._verified = path
        truth = self.ground_truth
        self.datasets = {
            "train": KspaceDataset(path, "train", with_target=self.train_ground_truth and truth),
            "val": KspaceDataset(path, "val", with_target=self.val_ground_truth),
            "test": KspaceDataset(path, "test", with_target=truth),
        }
        if getattr(self.images, "acquired", False):
            self._adopt_mask_law(path)

    def _adopt_mask_law(self, path: Path) -> None:
        """Give the physics the acquisition's mask law, for losses that draw fresh masks."""
        physics = self.physics
        if self.acquired_mask_law == "configured":
            log.info("mask law: the configured %r (data.acquired_mask_law=configured)", physics.mask_law)
            return
        if isinstance(physics.mask_law, MeasuredMaskLaw):
            return
        with h5py.File(path, "r") as file:
            columns = torch.from_numpy(file["train"]["mask"][()])
        physics.mask_law = MeasuredMaskLaw(columns, physics.image_size[0])
        log.info(
            "mask law: estimated from the %d training masks, %r (data.acquired_mask_law=estimated)",
            len(columns),
            physics.mask_law,
        )
        if physics.mask_law.distinct == 1:
            log.warning(
                "mask law: every training slice was acquired with the same mask, so losses that draw "
                "fresh masks (MOI, MO-EI, MoC-SSDU) see only that one; set data.acquired_mask_law="
                "configured and physics.sampling/acceleration to the law you want them to draw from"
            )

    def _loader(self, split: str, sampler=None) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate,
        )

    def train_dataloader(self) -> DataLoader:
        # Built after the process group exists, so the sampler shards across DDP ranks.
        sampler = ResumableSampler(self.datasets["train"], self.batch_size, seed=self.seed)
        if self._resume is not None:
            sampler.resume_at(*self._resume)
            self._resume = None
        return self._loader("train", sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    # -- mid-epoch resumption ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where training stands in the current epoch, saved in every checkpoint."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        completed = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"epoch": trainer.current_epoch, "batches_done": completed}

    def load_state_dict(self, state: dict) -> None:
        """Resume the interrupted epoch after the batches it already trained on."""
        if state:
            self._resume = (state["epoch"], state["batches_done"])
            # Lightning cannot see that our sampler skips the finished batches and would warn.
            warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before")


def mask_rows(mask: Tensor) -> Tensor:
    """``(N, 1, H, W)`` Cartesian masks -> their ``(N, W)`` sampled columns, as the cache stores them."""
    rows = mask[:, 0, 0, :]
    if not torch.equal(mask, rows[:, None, None, :].expand_as(mask)):
        raise ValueError(
            "the physics drew masks that are not constant along H (not Cartesian columns); "
            "the cache stores one row of columns per sample"
        )
    return rows
