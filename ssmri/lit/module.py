"""The LightningModule: MoDL, the physics and one pluggable loss, trained and evaluated."""

from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn
from torchmetrics.aggregation import MeanMetric

from ssmri.data.batch import MRIBatch
from ssmri.evaluation.conventions import aggregate, volume_ranges
from ssmri.evaluation.metrics import PerImageQuality
from ssmri.lit.selection_checkpoints import validation_objective
from ssmri.losses.base import AdversarialLoss, ReconstructionLoss
from ssmri.physics.operator import SingleCoilMRI
from ssmri.seeding import seeded_rng


class ReconstructionModule(L.LightningModule):
    """Trains ``model`` with ``loss``; validates and tests with the loss's inference rule.

    Losses with a discriminator (:class:`AdversarialLoss`) switch to manual optimisation:
    per batch a generator step, then a discriminator step with its own optimiser, each with
    gradient clipping through ``clip_gradients``.

    Args:
        model: the network ``f(y, acq)`` (MoDL).
        loss: the training objective, which also owns the inference rule.
        physics: the acquisition.
        optimizer: partial optimiser, called with the model's parameters.
        discriminator_optimizer: partial optimiser for a discriminator, if the loss has one.
        scheduler: optional partial learning-rate scheduler of the (rng) optimiser.
        gradient_clip_val: norm clipping for adversarial (manual) optimisation; for other
            losses use ``trainer.gradient_clip_val``.
        seed: seed of the loss's random choices (split masks, transforms, fresh operators).
        num_samples: test images kept for the sample figure.
        metric_convention: how test PSNR/SSIM/NMSE are computed and averaged
            (:mod:`ssmri.evaluation.conventions`); validation metrics stay ``per_image``.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: ReconstructionLoss,
        physics: SingleCoilMRI,
        optimizer: Callable,
        discriminator_optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        gradient_clip_val: float | None = None,
        seed: int = 0,
        num_samples: int = 4,
        metric_convention: str = "per_image",
    ):
        super().__init__()
        self.model = model
        self.loss = loss
        self.physics = physics
        self.optimizer_factory = optimizer
        self.discriminator_optimizer_factory = discriminator_optimizer or optimizer
        self.scheduler_factory = scheduler
        self.gradient_clip_val = gradient_clip_val
        self.seed = seed
        self.num_samples = num_samples
        self.adversarial = isinstance(loss, AdversarialLoss)
        self.automatic_optimization = not self.adversarial
        self.metric_convention = metric_convention
        self.val_quality = PerImageQuality()
        self.test_quality = PerImageQuality(metric_convention)
        self.val_objective = MeanMetric()
        # Acquired scans have no target: the test split is scored by the method's own objective.
        self.test_objective = MeanMetric()
        self._test_objectives: list[Tensor] = []
        self.test_volume_ids: list[str] | None = None
        self._test_ranges: dict[int, float] = {}
        self.test_results: dict[str, Tensor] = {}
        self.test_samples: dict[str, Tensor] = {}

    # -- randomness ------------------------------------------------------------------------
    def training_rng(self, batch_idx: int) -> torch.Generator:
        """The loss's random stream for one step: a function of (seed, rank, epoch, batch).

        Different on every rank, and the same after resuming from a checkpoint (even one
        written mid-epoch) as in an uninterrupted run, with no random state to save.
        """
        return seeded_rng(self.seed, self.global_rank, self.current_epoch, batch_idx)

    def evaluation_rng(self, image_index: int) -> torch.Generator:
        """Evaluation randomness (Noise2Inverse splits) depends on the image alone, so a
        checkpoint evaluates to the same numbers with any batch size or number of ranks."""
        return seeded_rng(self.seed, int(image_index))

    # -- training --------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.adversarial:
            if self.trainer.gradient_clip_val:
                raise ValueError(
                    "adversarial losses optimise manually and cannot use "
                    f"trainer.gradient_clip_val={self.trainer.gradient_clip_val}; set "
                    "trainer.gradient_clip_val=null and module.gradient_clip_val instead"
                )
            if self.trainer.accumulate_grad_batches != 1:
                raise ValueError(
                    "adversarial losses do not support gradient accumulation "
                    f"(trainer.accumulate_grad_batches={self.trainer.accumulate_grad_batches}); "
                    "set it to 1 and raise data.batch_size instead"
                )
            strategy = self.trainer.strategy
            if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters"):
                # The generator step leaves the discriminator without gradients (and the other
                # way round), which DDP only accepts when it looks for unused parameters.
                raise ValueError(
                    "adversarial losses under DDP need trainer.strategy.find_unused_parameters=true "
                    "(each of the two steps leaves the other network's parameters unused)"
                )

    def training_step(self, batch: MRIBatch, batch_idx: int) -> Tensor | None:
        target = batch.x if self.loss.needs_ground_truth else None
        rng = self.training_rng(batch_idx)
        output = self.loss(self.model, self.physics, batch.y, batch.acq, target, rng)
        if not torch.isfinite(output.loss):
            raise FloatingPointError(self._non_finite_loss(output.loss.item(), batch))
        self.log("train/loss", output.loss.detach(), prog_bar=True, batch_size=len(batch))
        for name, value in output.terms.items():
            self.log(f"train/{name}", value, batch_size=len(batch))
        if not self.adversarial:
            return output.loss
        self._adversarial_step(batch, output, rng)
        return None

    def _non_finite_loss(self, value: float, batch: MRIBatch) -> str:
        """Why the loss is NaN/Inf, inputs first: a learning rate cannot be the cause of a
        measurement too large for float32, nor of a loss at the first step, before any update."""
        where = f"training loss is {value} at step {self.global_step}"
        largest = float(batch.y.abs().amax())
        if not torch.isfinite(batch.y.pow(2).sum()):  # NaN/Inf, or values whose squares overflow
            noise = getattr(self.physics, "noise_std", 0.0)
            return (
                f"{where}: the measurements are not usable in float32 (largest |y| {largest:.3g}, "
                f"images have peak 1, physics.noise_std={noise:g}); lower physics.noise_std or "
                f"check the data"
            )
        if self.global_step == 0:
            return (
                f"{where}, before any update (not the learning rate): check the data and the "
                f"loss and physics settings (largest |y| {largest:.3g})"
            )
        return f"{where}; lower module.optimizer.lr or check the data (the last good checkpoint is kept)"

    def _adversarial_step(self, batch: MRIBatch, output, rng: torch.Generator) -> None:
        generator_optimizer, discriminator_optimizer = self.optimizers()
        generator_optimizer.zero_grad()
        self.manual_backward(output.loss)
        self._clip(generator_optimizer)
        generator_optimizer.step()

        discriminator_loss = self.loss.discriminator_loss(self.physics, batch.y, batch.acq, output, rng)
        discriminator_optimizer.zero_grad()
        self.manual_backward(discriminator_loss)
        self._clip(discriminator_optimizer)
        discriminator_optimizer.step()
        self.log("train/discriminator", discriminator_loss.detach(), batch_size=len(batch))
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.trainer.is_last_batch:
            scheduler.step()

    def _clip(self, optimizer) -> None:
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, self.gradient_clip_val, "norm")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        optimizers = [optimizer]
        if self.adversarial:
            optimizers.append(self.discriminator_optimizer_factory(self.loss.discriminator.parameters()))
        if self.scheduler_factory is None:
            return optimizers
        return optimizers, [{"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"}]

    # -- evaluation ------------------------------------------------------------------------
    def reconstruct(self, batch: MRIBatch) -> Tensor:
        """The method's inference rule on one batch."""
        if not self.loss.random_inference:
            return self.loss.reconstruct(self.model, self.physics, batch.y, batch.acq)
        # One random stream per image, so the result never depends on how images are batched.
        rngs = [self.evaluation_rng(index) for index in batch.index.tolist()]
        return self.loss.reconstruct(self.model, self.physics, batch.y, batch.acq, rngs)

    def _evaluate(self, batch: MRIBatch, quality: PerImageQuality) -> tuple[Tensor, Tensor]:
        x_hat = self.reconstruct(batch)
        zero_filled = self.physics.zero_filled(batch.y, batch.acq)
        if batch.x is None:  # acquired scans: nothing to compare with
            return x_hat, zero_filled
        data_range = None
        if quality.convention == "fastmri":
            data_range = torch.tensor([self._test_ranges[i] for i in batch.index.tolist()])
        quality.update(batch.index, x_hat, zero_filled, batch.x, data_range)
        return x_hat, zero_filled

    def validation_step(self, batch: MRIBatch, batch_idx: int) -> None:
        if batch.x is not None:  # data.val_ground_truth=false: no PSNR, only the objective
            self._evaluate(batch, self.val_quality)
        objective = validation_objective(self, batch)
        if objective is not None:
            self.val_objective.update(objective)

    def on_validation_epoch_end(self) -> None:
        if self.val_quality.update_called:
            summary = aggregate(self.val_quality.compute(), "val", "per_image")
            for name in ("val/psnr", "val/ssim", "val/psnr_zero_filled"):
                # Already global (the metric gathers every rank's images): sync_dist only averages
                # equal values, and keeps Lightning from warning under DDP.
                self.log(name, summary[name], prog_bar=name == "val/psnr", sync_dist=True)
        self.val_quality.reset()
        if self.val_objective.update_called:
            self.log("val/loss", self.val_objective.compute(), sync_dist=True)
        self.val_objective.reset()

    def on_test_epoch_start(self) -> None:
        self.test_samples = {}
        self._test_objectives = []
        if self.metric_convention == "fastmri" and getattr(self.trainer.datamodule, "ground_truth", True):
            self._test_ranges = self._volume_ranges()

    def _volume_ranges(self) -> dict[int, float]:
        """Test image index -> the maximum |x| of its volume (one pass over the test targets)."""
        datamodule = self.trainer.datamodule
        self.test_volume_ids = getattr(datamodule, "test_volume_ids", None)
        if self.test_volume_ids is None:
            raise ValueError(
                "metrics.convention=fastmri needs a data module that names each test "
                "sample's volume (MRIDataModule.test_volume_ids)"
            )
        indices, peaks = [], []
        for batch in datamodule.test_dataloader():
            indices += batch.index.tolist()
            peaks.append(batch.x.pow(2).sum(dim=1).sqrt().amax(dim=(-2, -1)))
        ranges = volume_ranges([self.test_volume_ids[i] for i in indices], torch.cat(peaks))
        return dict(zip(indices, ranges.tolist()))

    def test_step(self, batch: MRIBatch, batch_idx: int) -> None:
        x_hat, zero_filled = self._evaluate(batch, self.test_quality)
        if batch.x is None:
            objective = validation_objective(self, batch)
            if objective is not None:
                self.test_objective.update(objective)
                self._test_objectives.append(torch.stack((batch.index.to(objective), objective), dim=1))
        # Keep test images spread evenly over the set (e.g. every orientation of the brain).
        count = len(self.trainer.test_dataloaders.dataset)
        stride = max(count // max(self.num_samples, 1), 1)
        take = (batch.index % stride == 0) & (batch.index // stride < self.num_samples)
        if take.any():
            pairs = (("x", batch.x), ("zero_filled", zero_filled), ("x_hat", x_hat), ("index", batch.index))
            for name, value in (pair for pair in pairs if pair[1] is not None):
                previous = self.test_samples.get(name)
                value = value[take.to(value.device)].detach().float().cpu()
                self.test_samples[name] = value if previous is None else torch.cat([previous, value])

    def on_test_epoch_end(self) -> None:
        if not self.test_quality.update_called:  # no ground truth: the objective alone
            rows = torch.cat(self._test_objectives).cpu() if self._test_objectives else torch.zeros(0, 2)
            self.test_results = {"index": rows[:, 0].long(), "loss": rows[:, 1]}
            if self.test_objective.update_called:
                self.log("test/loss", self.test_objective.compute(), sync_dist=True)
            self.test_objective.reset()
            self.test_samples = gather_samples(self.test_samples, self.trainer.world_size)
            return
        # One test image comes back from torchmetrics as 0-d tensors: keep one row per image.
        self.test_results = {k: v.cpu().reshape(-1) for k, v in self.test_quality.compute().items()}
        self.test_quality.reset()
        summary = aggregate(self.test_results, "test", self.metric_convention, self.test_volume_ids)
        for name, value in summary.items():
            self.log(name, value, sync_dist=True)
        self.test_samples = gather_samples(self.test_samples, self.trainer.world_size)


def gather_samples(samples: dict[str, Tensor], world_size: int) -> dict[str, Tensor]:
    """Every rank's sample images, each test image once, in index order (identity on one rank)."""
    if world_size == 1 or not torch.distributed.is_initialized():
        return samples
    gathered: list[dict] = [{} for _ in range(world_size)]
    torch.distributed.all_gather_object(gathered, samples)
    parts = [part for part in gathered if part]
    if not parts:
        return {}
    merged = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    index, first = merged["index"], {}
    for position, value in enumerate(index.tolist()):
        first.setdefault(value, position)  # the distributed sampler pads with repeated images
    keep = torch.tensor([first[value] for value in sorted(first)])
    return {name: value[keep] for name, value in merged.items()}
