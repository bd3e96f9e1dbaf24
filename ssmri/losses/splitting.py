"""Measurement splitting: predict held-out k-space from the rest (SSDU and its variants)."""

import torch
from torch import Tensor

from ssmri.losses.base import LossOutput, ReconstructionLoss, mse
from ssmri.physics.acquisition import apply_mask
from ssmri.transforms.split_masks import GaussianSplitter, MultiplicativeSplitter

#: Split reconstructions per forward pass on a CPU when ``splits_per_pass`` is left to the device.
CPU_SPLITS_PER_PASS = 1


class SSDULoss(ReconstructionLoss):
    r"""SSDU: reconstruct from ``M₁ y`` and score on the held-out entries ``M₂ y``.

    .. math::
        \mathcal{L} = \frac{\mathrm{MSE}(M_2 A \hat x_1, M_2 y)}{\mathrm{mean}(M_2)},
        \qquad \hat x_1 = f(M_1 y, M_1 A), \quad M_2 = M - M_1

    The ``1/mean(M₂)`` factor (the ``m/m₂`` of the reference ``SplittingLoss``) makes the loss
    the mean error over held-out entries. Inference uses all measurements, ``f(y, A)``. In
    multi-coil the split acts on the mask the coils share; each sample keeps its coil maps.
    Yaman et al., "Self-supervised learning of physics-guided reconstruction neural networks
    without fully sampled reference data", MRM 2020.

    Args:
        splitter: draws ``M₁`` from ``M`` (default: :class:`GaussianSplitter`, ratio 0.6).
    """

    def __init__(self, splitter=None):
        super().__init__()
        self.splitter = splitter if splitter is not None else GaussianSplitter()

    def split(self, y: Tensor, mask: Tensor, rng) -> tuple[Tensor, Tensor]:
        input_mask = self.splitter.split(mask, rng)
        return input_mask, mask - input_mask

    def forward(self, model, physics, y, acq, x=None, rng=None) -> LossOutput:
        input_mask, held_out = self.split(y, acq.mask, rng)
        x_hat = model(apply_mask(y, input_mask), acq.with_mask(input_mask))
        loss = self.held_out_error(physics, x_hat, y, acq.with_mask(held_out))
        return LossOutput(loss, x_hat, {"ssdu": loss.detach()})

    def held_out_error(self, physics, x_hat: Tensor, y: Tensor, held_out) -> Tensor:
        """Error on the held-out entries; ``held_out`` is the acquisition with mask ``M₂``."""
        mask = held_out.mask
        return mse(physics.measure(x_hat, held_out), apply_mask(y, mask)) / mask.mean().clamp_min(1e-12)


class Noise2InverseLoss(SSDULoss):
    r"""Noise2Inverse: SSDU training; inference averages reconstructions from random splits.

    .. math:: \hat x = \frac{1}{N}\sum_{i=1}^{N} f(M_1^{(i)} y, M_1^{(i)} A)

    with a fresh split per ``i``. All ``N B`` splits of a batch are drawn first, then
    reconstructed ``splits_per_pass`` at a time, so the result does not depend on the grouping.
    By default the device chooses: on CUDA all of them in one batched pass (halved after an
    out-of-memory error until it fits), on a CPU :data:`CPU_SPLITS_PER_PASS` at a time, since
    there large passes cost more per image (their activations leave the caches; timings in
    docs/benchmark.md).
    Hendriksen, Pelt & Batenburg, "Noise2Inverse", IEEE TCI 2020.

    Args:
        splitter: as for :class:`SSDULoss`.
        num_splits: ``N`` (20 in the tutorial's table).
        splits_per_pass: split reconstructions per forward pass; ``None``: chosen by the device.
        images_per_pass: the older form, images whose ``N`` splits share a pass (kept so that
            checkpoints that name it still load); not together with ``splits_per_pass``.
    """

    random_inference = True

    def __init__(
        self,
        splitter=None,
        num_splits: int = 20,
        splits_per_pass: int | None = None,
        images_per_pass: int | None = None,
    ):
        super().__init__(splitter)
        if num_splits < 1:
            raise ValueError(f"num_splits must be >= 1, got {num_splits}")
        if splits_per_pass is not None and images_per_pass is not None:
            raise ValueError("set loss.splits_per_pass or the older loss.images_per_pass, not both")
        if images_per_pass is not None:
            if images_per_pass < 1:
                raise ValueError(f"images_per_pass must be >= 1 or None, got {images_per_pass}")
            splits_per_pass = images_per_pass * int(num_splits)
        if splits_per_pass is not None and splits_per_pass < 1:
            raise ValueError(f"loss.splits_per_pass must be >= 1 or null (by device), got {splits_per_pass}")
        self.num_splits = int(num_splits)
        self.splits_per_pass = splits_per_pass

    def pass_size(self, total: int, device: torch.device) -> int:
        """How many of ``total`` split reconstructions go through the network together."""
        if self.splits_per_pass is not None:
            return min(self.splits_per_pass, total)
        return total if device.type == "cuda" else min(CPU_SPLITS_PER_PASS, total)

    def reconstruct(self, model, physics, y, acq, rng=None) -> Tensor:
        """``rng``: one CPU rng, or one per image (then each image's splits depend
        on that image alone, not on what else is in the batch)."""
        rngs = rng if isinstance(rng, (list, tuple)) else [rng] * len(y)
        if len(rngs) != len(y):
            raise ValueError(f"got {len(rngs)} rngs for {len(y)} images")
        count = self.num_splits
        input_masks = torch.cat(
            [  # image-major: the N splits of image 0, then of image 1, ...
                self.splitter.split(image_mask.expand(count, *image_mask.shape[1:]), image_rng)
                for image_mask, image_rng in zip(acq.mask.split(1), rngs)
            ]
        )
        inputs = apply_mask(y.repeat_interleave(count, dim=0), input_masks)
        split_acq = acq.repeat_interleave(count).with_mask(input_masks)
        chunk = self.pass_size(len(inputs), y.device)
        while True:
            try:
                reconstructions = torch.cat(
                    [
                        model(inputs[start : start + chunk], split_acq[start : start + chunk])
                        for start in range(0, len(inputs), chunk)
                    ]
                )
                break
            except torch.OutOfMemoryError:
                if self.splits_per_pass is not None or chunk == 1:
                    raise
                chunk = (chunk + 1) // 2  # the device's choice was too large: same result, smaller passes
                if y.is_cuda:
                    torch.cuda.empty_cache()
        return reconstructions.reshape(len(y), count, *reconstructions.shape[1:]).mean(dim=1)


class WeightedSSDULoss(SSDULoss):
    r"""Weighted SSDU: a multiplicative split and the Noisier2Noise weighting of held-out entries.

    .. math::
        \mathcal{L} = \mathrm{MSE}(w \odot M_2 A \hat x_1, w \odot M_2 y), \quad
        w = (1 - K)^{-1/2}, \quad K = (1 - \tilde P P)^{-1} (1 - P)

    per column, with ``M₁ = M̃ ⊙ M``, ``P`` the exact sampling probability of the data's masks
    and ``P̃`` that of ``M̃`` (clipped to ``1 - 1e-9``); no ``mean(M₂)`` normalisation. The
    weights stay exact in multi-coil: the coils share the mask, so its law is coil-independent.
    Millard & Chiew, IEEE TCI 2023. The reference estimates ``P`` and ``P̃`` by averaging 2000
    random masks; ``estimate_with`` reproduces that, the default uses the exact probabilities.

    Args:
        splitter: :class:`~ssmri.transforms.split_masks.MultiplicativeSplitter` (Gaussian, R = 2).
        clip: upper clip of ``P̃``.
        estimate_with: 0 for exact probabilities, else the number of masks to average.
    """

    def __init__(
        self, splitter: MultiplicativeSplitter | None = None, clip: float = 1 - 1e-9, estimate_with: int = 0
    ):
        super().__init__(splitter if splitter is not None else MultiplicativeSplitter())
        if not isinstance(self.splitter, MultiplicativeSplitter):
            raise ValueError("Weighted-SSDU needs a MultiplicativeSplitter, whose mask law is known")
        self.clip = float(clip)
        self.estimate_with = int(estimate_with)
        self._k: dict = {}

    def column_k(self, physics, height: int, width: int) -> Tensor:
        """``(W,)`` float64 ``K = (1 - P̃ P)⁻¹ (1 - P)`` of each column."""
        key = (height, width, repr(physics.mask_law))
        if key not in self._k:
            acquisition = physics.mask_law
            split_law = self.splitter.law_for(height, width)
            if self.estimate_with:
                rng = torch.Generator().manual_seed(0)
                p = acquisition.sample_columns(self.estimate_with, rng).double().mean(0)
                p_split = split_law.sample_columns(self.estimate_with, rng).double().mean(0)
            else:
                p, p_split = acquisition.column_probability(), split_law.column_probability()
            self._k[key] = (1 - p) / (1 - p_split.clamp(max=self.clip) * p)
        return self._k[key]

    def column_weight(self, physics, height: int, width: int) -> Tensor:
        """``(W,)`` float64 weight ``w = (1 - K)^{-1/2}`` of each column."""
        return (1 - self.column_k(physics, height, width)).clamp_min(1e-12).rsqrt()

    def held_out_error(self, physics, x_hat: Tensor, y: Tensor, held_out) -> Tensor:
        weight = self.column_weight(physics, *y.shape[-2:]).to(device=y.device, dtype=y.dtype)
        return mse(weight * physics.measure(x_hat, held_out), weight * apply_mask(y, held_out.mask))


__all__ = ["Noise2InverseLoss", "SSDULoss", "WeightedSSDULoss"]
