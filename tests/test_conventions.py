"""Each metric convention against a direct NumPy / scikit-image computation on made-up images."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import structural_similarity_index_measure

from ssmri.evaluation.conventions import aggregate, volume_ranges
from ssmri.evaluation.metrics import PerImageQuality


def made_up_images(count=6, size=24, seed=0):
    """Complex targets with peaks other than 1, reconstructions with errors of varied size."""
    rng = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 2, size, size, generator=rng) * torch.linspace(0.5, 3, count)[:, None, None, None]
    x_hat = x + torch.randn(x.shape, generator=rng) * torch.linspace(0.05, 0.5, count)[:, None, None, None]
    zero_filled = x + 0.8 * torch.randn(x.shape, generator=rng)
    return x, x_hat, zero_filled


def magnitude(t):
    return t.pow(2).sum(dim=1).sqrt().double().numpy()


def measured(convention, x, x_hat, zero_filled, volumes=None):
    quality = PerImageQuality(convention)
    data_range = None
    if convention == "fastmri":
        data_range = volume_ranges(volumes, torch.from_numpy(magnitude(x)).amax(dim=(1, 2)))
    quality.update(torch.arange(len(x)), x_hat, zero_filled, x, data_range)
    values = quality.compute()
    return values, aggregate(values, "test", convention, volumes)


@pytest.mark.parametrize("convention", ["per_image", "unit_range"])
def test_per_image_conventions_match_scikit_image(convention):
    x, x_hat, zero_filled = made_up_images()
    values, summary = measured(convention, x, x_hat, zero_filled)
    target, estimate = magnitude(x), magnitude(x_hat)
    ranges = [t.max() if convention == "per_image" else 1.0 for t in target]
    psnr = [peak_signal_noise_ratio(t, e, data_range=r) for t, e, r in zip(target, estimate, ranges)]
    nmse = [np.sum((t - e) ** 2) / np.sum(t**2) for t, e in zip(target, estimate)]
    # Gaussian 11x11 window, sigma 1.5 (torchmetrics, as DeepInverse's SSIM): scikit-image's
    # gaussian_weights=True with sample covariance off is the same filter, truncated at 3.5 sigma.
    ssim = [
        structural_similarity(
            t, e, data_range=r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for t, e, r in zip(target, estimate, ranges)
    ]
    np.testing.assert_allclose(values["psnr"].numpy(), psnr, rtol=1e-4)
    np.testing.assert_allclose(values["nmse"].numpy(), nmse, rtol=1e-4)
    np.testing.assert_allclose(values["ssim"].numpy(), ssim, atol=2e-2)
    assert summary["test/psnr"] == pytest.approx(np.mean(psnr), rel=1e-4)
    assert summary["test/psnr_std"] == pytest.approx(np.std(psnr, ddof=1), rel=1e-3)

    # And exactly what torchmetrics gives with the convention's data range.
    def torchmetrics_ssim(t, e, r):
        as_image = lambda a: torch.from_numpy(a)[None, None].float()  # noqa: E731
        return float(structural_similarity_index_measure(as_image(e), as_image(t), data_range=float(r)))

    direct = [torchmetrics_ssim(t, e, r) for t, e, r in zip(target, estimate, ranges)]
    np.testing.assert_allclose(values["ssim"].numpy(), direct, rtol=1e-5)


def test_fastmri_convention_matches_its_evaluate_script():
    x, x_hat, zero_filled = made_up_images(count=7)
    volumes = ["a", "a", "a", "b", "b", "c", "c"]
    values, summary = measured("fastmri", x, x_hat, zero_filled, volumes)
    target, estimate = magnitude(x), magnitude(x_hat)
    psnr, ssim, nmse = [], [], []
    for volume in ("a", "b", "c"):  # fastMRI evaluate.py, one volume at a time
        members = [i for i, v in enumerate(volumes) if v == volume]
        gt, pred = target[members], estimate[members]
        maxval = gt.max()
        psnr.append(peak_signal_noise_ratio(gt, pred, data_range=maxval))
        nmse.append(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2)
        ssim.append(np.mean([structural_similarity(g, p, data_range=maxval) for g, p in zip(gt, pred)]))
    assert summary["test/num_volumes"] == 3
    assert summary["test/psnr"] == pytest.approx(np.mean(psnr), rel=1e-5)
    assert summary["test/psnr_std"] == pytest.approx(np.std(psnr, ddof=1), rel=1e-4)
    assert summary["test/nmse"] == pytest.approx(np.mean(nmse), rel=1e-5)
    assert summary["test/ssim"] == pytest.approx(np.mean(ssim), rel=1e-5)
    # The per-slice SSIM uses the volume's range, not the slice's.
    slice_ssim = structural_similarity(target[0], estimate[0], data_range=target[:3].max())
    assert float(values["ssim"][0]) == pytest.approx(slice_ssim, rel=1e-5)


def test_conventions_disagree_where_they_should():
    x, x_hat, zero_filled = made_up_images()
    per_image = measured("per_image", x, x_hat, zero_filled)[1]["test/psnr"]
    unit = measured("unit_range", x, x_hat, zero_filled)[1]["test/psnr"]
    assert unit < per_image - 1  # peaks above 1: a range of 1 reads a lower PSNR
    with pytest.raises(ValueError, match="metrics.convention='dicom' is not a metric convention"):
        PerImageQuality("dicom")


@pytest.mark.parametrize("convention", ["per_image", "unit_range", "fastmri"])
def test_a_split_of_one_image_gives_its_numbers_and_a_zero_spread(convention):
    x, x_hat, zero_filled = made_up_images(count=1)
    values, summary = measured(convention, x, x_hat, zero_filled, ["a"])
    target, estimate = magnitude(x)[0], magnitude(x_hat)[0]
    expected = peak_signal_noise_ratio(target, estimate, data_range=target.max())
    if convention == "unit_range":
        expected = peak_signal_noise_ratio(target, estimate, data_range=1.0)
    assert summary["test/psnr"] == pytest.approx(expected, rel=1e-4)
    # A spread over one sample is undefined: written as 0.0, never NaN (the count says n = 1).
    stds = {k: v for k, v in summary.items() if k.endswith("_std")}
    assert len(stds) == 6 and set(stds.values()) == {0.0}
    assert summary.get("test/num_volumes", 1) == 1
