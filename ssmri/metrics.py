"""Image quality per test image: PSNR and SSIM on magnitudes with each image's own data range."""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from ssmri.physics.fft import magnitude


def psnr(x_hat: Tensor, x: Tensor) -> Tensor:
    """``(B,)`` PSNR in dB of ``|x̂|`` against ``|x|``, data range = max ``|x|`` of each image."""
    estimate, target = magnitude(x_hat), magnitude(x)
    data_range = target.amax(dim=(1, 2, 3))
    error = (estimate - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-20)
    return 10 * torch.log10(data_range**2 / error)


def ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """``(B,)`` SSIM of ``|x̂|`` against ``|x|`` (Gaussian 11x11 window), per-image data range."""
    estimate, target = magnitude(x_hat), magnitude(x)
    values = [
        structural_similarity_index_measure(
            estimate[i : i + 1], target[i : i + 1], data_range=float(target[i].max())
        )
        for i in range(len(target))
    ]
    return torch.stack(values)


class PerImageQuality(Metric):
    """Collects per-image PSNR/SSIM (and zero-filled PSNR) over a whole evaluation.

    States are concatenated across processes (``dist_reduce_fx="cat"``); a distributed
    sampler pads the last batch with repeated images, so ``compute`` keeps each image index
    once.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        for name in ("index", "psnr", "ssim", "psnr_zero_filled", "ssim_zero_filled"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, index: Tensor, x_hat: Tensor, zero_filled: Tensor, x: Tensor) -> None:
        # Outside autocast: under bf16-mixed, SSIM's Gaussian window would otherwise be a
        # bfloat16 convolution, and the numbers would depend on the training precision.
        with torch.autocast(device_type=x.device.type, enabled=False):
            x_hat, zero_filled, x = x_hat.float(), zero_filled.float(), x.float()
            self.index.append(index.long())
            self.psnr.append(psnr(x_hat, x))
            self.ssim.append(ssim(x_hat, x))
            self.psnr_zero_filled.append(psnr(zero_filled, x))
            self.ssim_zero_filled.append(ssim(zero_filled, x))

    def compute(self) -> dict[str, Tensor]:
        def flat(state) -> Tensor:
            return torch.cat(state) if isinstance(state, list) else state

        index = flat(self.index)
        order = torch.argsort(index, stable=True)
        index = index[order]
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        keep = order[first]
        values = {"index": index[first]}
        for name in ("psnr", "ssim", "psnr_zero_filled", "ssim_zero_filled"):
            values[name] = flat(getattr(self, name))[keep]
        return values


def summarise(values: dict[str, Tensor], prefix: str) -> dict[str, float]:
    """Mean and standard deviation across images (unbiased) of each per-image metric."""
    summary = {}
    for name, column in values.items():
        if name == "index":
            continue
        summary[f"{prefix}/{name}"] = float(column.mean())
        std = column.std() if len(column) > 1 else torch.zeros(())
        summary[f"{prefix}/{name}_std"] = float(std)
    return summary
