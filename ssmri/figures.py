"""Figures a person looks at: ground truth, zero-filled, reconstruction and error maps."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ssmri.metrics import psnr  # noqa: E402
from ssmri.physics.fft import magnitude  # noqa: E402


def save_samples(samples: dict[str, torch.Tensor], path: Path, title: str = "") -> Path:
    """One row per test image: |x|, |Aᴴy|, |x̂| and |x̂ - x| on one colour scale per kind.

    Args:
        samples: ``x``, ``zero_filled`` and ``x_hat``, each ``(N, 2, H, W)``.
        path: the PNG to write (atomically).
    """
    truth, zero_filled, estimate = (magnitude(samples[k]) for k in ("x", "zero_filled", "x_hat"))
    rows = len(truth)
    error_scale = float((estimate - truth).abs().max().clamp_min(1e-6))
    error_scale = max(error_scale, float((zero_filled - truth).abs().max()))
    figure, axes = plt.subplots(rows, 5, figsize=(11, 2.3 * rows + 0.4), squeeze=False)
    zf_psnr, est_psnr = psnr(samples["zero_filled"], samples["x"]), psnr(samples["x_hat"], samples["x"])
    for row in range(rows):
        panels = [
            (truth[row], "ground truth", "gray", 1.0),
            (zero_filled[row], f"zero-filled {zf_psnr[row]:.2f} dB", "gray", 1.0),
            (estimate[row], f"reconstruction {est_psnr[row]:.2f} dB", "gray", 1.0),
            ((zero_filled[row] - truth[row]).abs(), "|zero-filled - truth|", "magma", error_scale),
            ((estimate[row] - truth[row]).abs(), "|reconstruction - truth|", "magma", error_scale),
        ]
        for axis, (image, label, cmap, vmax) in zip(axes[row], panels):
            axis.imshow(image[0].numpy(), cmap=cmap, vmin=0, vmax=vmax)
            axis.set_title(label, fontsize=8)
            axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)
    return path
