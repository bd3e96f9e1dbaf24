"""Metric conventions: which data range, SSIM window and averaging a reported number uses.

Papers disagree on these, and the differences are larger than many method gaps:

- ``per_image``: PSNR, SSIM and NMSE per image on magnitudes, data range = that image's max
  ``|x|``, SSIM with torchmetrics' 11x11 Gaussian window (sigma 1.5); mean over images.
- ``fastmri``: as fastMRI's ``evaluate.py``: data range = the maximum of the whole volume,
  PSNR and NMSE over the volume, SSIM per slice with scikit-image's default 7x7 uniform window
  (sample covariance, K1 = 0.01, K2 = 0.03) averaged over the volume's slices; then the mean
  over volumes (``_std`` across volumes).
- ``unit_range``: as DeepInverse 0.5's ``PSNR()`` and ``SSIM()`` defaults with
  ``complex_abs=True`` (SSIBench): magnitudes as they are, data range fixed to 1 (max_pixel 1,
  min_pixel 0), SSIM with torchmetrics' 11x11 Gaussian window; mean over images.

Every ssmri image source normalises each ground-truth slice to max ``|x|`` = 1, so on its
data ``unit_range`` equals ``per_image`` and ``fastmri``'s volume maximum is 1 as well;
``fastmri`` then differs by its SSIM window and by averaging per volume.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

CONVENTIONS = ("per_image", "fastmri", "unit_range")


def check_convention(name: str) -> str:
    if name not in CONVENTIONS:
        raise ValueError(
            f"metrics.convention={name!r} is not a metric convention; choose one of "
            f"{list(CONVENTIONS)} (e.g. metrics.convention=fastmri)"
        )
    return name


def ssim_uniform(estimate: Tensor, target: Tensor, data_range: Tensor, window: int = 7) -> Tensor:
    """``(B,)`` SSIM of ``(B, 1, H, W)`` magnitudes with a ``window``-pixel uniform window.

    scikit-image's ``structural_similarity`` defaults (what fastMRI calls): sample covariance
    ``N / (N - 1)``, ``K1 = 0.01``, ``K2 = 0.03``, the SSIM map averaged over the pixels at
    least ``window // 2`` from the border; computed in float64.
    """
    x, y = estimate.double(), target.double()
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM with a {window}x{window} window needs images of at least that size")
    mean = lambda image: F.avg_pool2d(image, window, stride=1)  # noqa: E731  (valid region)
    n = window * window
    covariance = n / (n - 1)
    mu_x, mu_y = mean(x), mean(y)
    var_x = covariance * (mean(x * x) - mu_x**2)
    var_y = covariance * (mean(y * y) - mu_y**2)
    cov_xy = covariance * (mean(x * y) - mu_x * mu_y)
    r = data_range.double().reshape(-1, 1, 1, 1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)).float()


def volume_ranges(volume_ids: list[str], peaks: Tensor) -> Tensor:
    """Per image: the largest of ``peaks`` (each image's max ``|x|``) over the image's volume."""
    largest: dict[str, float] = {}
    for volume, peak in zip(volume_ids, peaks.tolist()):
        largest[volume] = max(largest.get(volume, 0.0), peak)
    return torch.tensor([largest[v] for v in volume_ids])


def aggregate(
    values: dict[str, Tensor], prefix: str, convention: str, volume_ids: list[str] | None = None
) -> dict[str, float]:
    """Summary numbers ``{prefix}/psnr``, ``..._std``, ... of per-image results under ``convention``.

    ``values`` holds, per image, ``psnr``, ``ssim``, ``nmse`` (and the ``_zero_filled`` ones),
    and the ``mse``, ``energy`` (mean ``|x|²``) and ``data_range`` they came from. Under
    ``fastmri`` images are grouped by ``volume_ids`` (indexed by ``values["index"]``).
    """
    check_convention(convention)
    # torchmetrics squeezes what ``compute`` returns: one image's values arrive as 0-d tensors.
    values = {name: value.reshape(-1) for name, value in values.items()}
    if convention != "fastmri":
        columns = {k: v for k, v in values.items() if k in _REPORTED}
        return _mean_std(columns, prefix)
    if volume_ids is None:
        raise ValueError("metrics.convention=fastmri needs a volume id per test image")
    volumes = [volume_ids[i] for i in values["index"].tolist()]
    per_volume: dict[str, list] = {name: [] for name in _REPORTED}
    for volume in dict.fromkeys(volumes):
        members = torch.tensor([v == volume for v in volumes])
        data_range = values["data_range"][members].max()
        energy = values["energy"][members].mean()
        for suffix in ("", "_zero_filled"):
            mse = values["mse" + suffix][members].mean()  # equal-sized slices: the volume MSE
            per_volume["psnr" + suffix].append(10 * torch.log10(data_range**2 / mse.clamp_min(1e-20)))
            per_volume["nmse" + suffix].append(mse / energy)
            per_volume["ssim" + suffix].append(values["ssim" + suffix][members].mean())
    summary = _mean_std({k: torch.stack(v) for k, v in per_volume.items()}, prefix)
    summary[f"{prefix}/num_volumes"] = float(len(per_volume["psnr"]))
    return summary


_REPORTED = ("psnr", "ssim", "nmse", "psnr_zero_filled", "ssim_zero_filled", "nmse_zero_filled")


def _mean_std(columns: dict[str, Tensor], prefix: str) -> dict[str, float]:
    """Mean and unbiased std of each column; the std of a single value is undefined and written
    as 0.0 (the count beside it, ``num_test_images`` or ``num_volumes``, says it is one)."""
    summary = {}
    for name in _REPORTED:
        if name not in columns:
            continue
        column = columns[name].double()
        if not torch.isfinite(column).all():
            raise FloatingPointError(f"{prefix}/{name} has non-finite per-image values: {column.tolist()}")
        summary[f"{prefix}/{name}"] = float(column.mean())
        summary[f"{prefix}/{name}_std"] = float(column.std()) if column.numel() > 1 else 0.0
    return summary
