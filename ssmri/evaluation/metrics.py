"""Image quality per test image: PSNR, SSIM and NMSE on magnitudes, under a metric convention.

The conventions (data range, SSIM window, averaging) are in :mod:`ssmri.evaluation.conventions`.
:func:`check_metrics` refuses a number that is not finite before it is written anywhere.
"""

import math

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from ssmri.errors import DataError
from ssmri.evaluation.conventions import check_convention, ssim_uniform
from ssmri.physics.fft import magnitude


def psnr(x_hat: Tensor, x: Tensor) -> Tensor:
    """``(B,)`` PSNR in dB of ``|x̂|`` against ``|x|``, data range = max ``|x|`` of each image."""
    estimate, target = magnitude(x_hat), magnitude(x)
    data_range = target.amax(dim=(1, 2, 3))
    error = (estimate - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-20)
    return 10 * torch.log10(data_range**2 / error)


_STATES = ("index", "data_range", "energy", "mse", "ssim", "mse_zero_filled", "ssim_zero_filled")


class PerImageQuality(Metric):
    """Collects per-image PSNR/SSIM/NMSE (and the zero-filled ones) over a whole evaluation.

    States are concatenated across processes (``dist_reduce_fx="cat"``); a distributed
    sampler pads the last batch with repeated images, so ``compute`` keeps each image index
    once.

    Args:
        convention: ``per_image``, ``fastmri`` or ``unit_range`` (:mod:`ssmri.evaluation.conventions`);
            under ``fastmri`` each ``update`` must be given the images' volume maxima.
    """

    full_state_update = False

    def __init__(self, convention: str = "per_image"):
        super().__init__()
        self.convention = check_convention(convention)
        for name in _STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self, index: Tensor, x_hat: Tensor, zero_filled: Tensor, x: Tensor, data_range: Tensor | None = None
    ) -> None:
        # Outside autocast: under bf16-mixed, SSIM's Gaussian window would otherwise be a
        # bfloat16 convolution, and the numbers would depend on the training precision.
        with torch.autocast(device_type=x.device.type, enabled=False):
            x_hat, zero_filled, x = x_hat.float(), zero_filled.float(), x.float()
            target = magnitude(x)
            if self.convention == "per_image":
                data_range = target.amax(dim=(1, 2, 3))
            elif self.convention == "unit_range":
                data_range = torch.ones(len(x), device=x.device)
            elif data_range is None:
                raise ValueError("metrics.convention=fastmri needs each image's volume maximum")
            data_range = data_range.to(x.device, torch.float32)
            self.index.append(index.long())
            self.data_range.append(data_range)
            self.energy.append(target.pow(2).mean(dim=(1, 2, 3)))
            for suffix, estimate in (("", x_hat), ("_zero_filled", zero_filled)):
                error = (magnitude(estimate) - target).pow(2).mean(dim=(1, 2, 3))
                getattr(self, "mse" + suffix).append(error)
                getattr(self, "ssim" + suffix).append(self._ssim(estimate, x, data_range))

    def _ssim(self, estimate: Tensor, x: Tensor, data_range: Tensor) -> Tensor:
        target, estimate = magnitude(x), magnitude(estimate)
        if self.convention == "fastmri":
            return ssim_uniform(estimate, target, data_range)
        return torch.stack(
            [
                structural_similarity_index_measure(
                    estimate[i : i + 1], target[i : i + 1], data_range=float(data_range[i])
                )
                for i in range(len(target))
            ]
        )

    def compute(self) -> dict[str, Tensor]:
        """Per image, in index order: psnr, ssim, nmse, the zero-filled ones, and their inputs."""

        def flat(state) -> Tensor:
            return torch.cat(state) if isinstance(state, list) else state

        index = flat(self.index)
        order = torch.argsort(index, stable=True)
        index = index[order]
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        keep = order[first]
        values = {"index": index[first]}
        for name in _STATES[1:]:
            values[name] = flat(getattr(self, name))[keep]
        for suffix in ("", "_zero_filled"):
            mse = values["mse" + suffix].clamp_min(1e-20)
            values["psnr" + suffix] = 10 * torch.log10(values["data_range"] ** 2 / mse)
            values["nmse" + suffix] = values["mse" + suffix] / values["energy"].clamp_min(1e-20)
        return values


def check_metrics(metrics: dict) -> None:
    """Refuse a metric that is NaN or infinite, so that none reaches metrics.json or a table."""
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise DataError(
                f"metric {name} is {value}: the test set or the reconstructions are not usable "
                f"(an all-zero target image, or a diverged network); nothing was written"
            )
