"""``python -m benchmarks.twix_r3``: self-supervised training on one prospectively undersampled scan.

twixtools' GRE phantom (``tests/data/twix/gre.dat``, 2 coils, fully sampled) is undersampled
retrospectively to R = 3 (every 3rd phase-encoding line counted from the centre, plus the 24
central ones) and written as an ISMRMRD file holding only those lines, as a scanner would
write a prospectively undersampled scan. Then, with the repository's own commands:

1. ``train.py data=ismrmrd data.images.split=scan physics=multicoil loss=ssdu``: scan-specific
   SSDU on that one slice (train, val and test are the same slice; no ground truth read);
2. ``predict.py ckpt_path=<the selected checkpoint> data=ismrmrd``: its reconstruction;
3. PSNR against the fully sampled root-sum-of-squares image of gre.dat, after the same readout
   oversampling removal and central k-space crop, on magnitudes, with fastMRI's convention
   (no rescaling of either image; data range = the reference's maximum), for the zero-filled
   RSS, the zero-filled coil combination ``|Sᴴ Fᴴ y|`` and the model.

Writes ``<out>/twix_r3.json`` and prints the numbers, the commands and their times.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
GRE = REPO / "tests" / "data" / "twix" / "gre.dat"
CENTRAL_LINES, EVERY = 24, 3

_HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
 <experimentalConditions><H1resonanceFrequency_Hz>123000000</H1resonanceFrequency_Hz></experimentalConditions>
 <encoding>
  <encodedSpace><matrixSize><x>{samples}</x><y>{width}</y><z>1</z></matrixSize>
   <fieldOfView_mm><x>{fov_x}</x><y>{fov_y}</y><z>{thickness}</z></fieldOfView_mm></encodedSpace>
  <reconSpace><matrixSize><x>{rows}</x><y>{width}</y><z>1</z></matrixSize>
   <fieldOfView_mm><x>{fov_recon}</x><y>{fov_y}</y><z>{thickness}</z></fieldOfView_mm></reconSpace>
  <encodingLimits>
   <kspace_encoding_step_1><minimum>0</minimum><maximum>{last}</maximum><center>{centre}</center></kspace_encoding_step_1>
   <slice><minimum>0</minimum><maximum>0</maximum><center>0</center></slice>
  </encodingLimits>
  <trajectory>cartesian</trajectory>
 </encoding>
</ismrmrdHeader>"""


def r3_mask(width: int) -> np.ndarray:
    """``(W,)`` bool: every 3rd line counted from the centre ``W // 2``, plus the 24 central lines."""
    columns = np.arange(width)
    mask = (columns - width // 2) % EVERY == 0
    mask[width // 2 - CENTRAL_LINES // 2 : width // 2 + CENTRAL_LINES // 2] = True
    return mask


def write_acquired(path: Path, kspace: np.ndarray, mask: np.ndarray, rows: int, voxel) -> None:
    """An ISMRMRD file holding only the lines of ``mask`` of one slice ``(C, samples, W)``."""
    import ismrmrd

    coils, samples, width = kspace.shape
    fov_recon, fov_y, thickness = voxel[0] * rows, voxel[1] * width, voxel[2]
    path.unlink(missing_ok=True)
    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dataset.write_xml_header(
        _HEADER.format(
            samples=samples,
            width=width,
            rows=rows,
            fov_x=fov_recon * samples / rows,
            fov_y=fov_y,
            fov_recon=fov_recon,
            thickness=thickness,
            last=width - 1,
            centre=width // 2,
        )
    )
    for column in np.flatnonzero(mask):
        acquisition = ismrmrd.Acquisition.from_array(np.ascontiguousarray(kspace[:, :, column]))
        acquisition.idx.kspace_encode_step_1 = int(column)  # the centre line is W // 2
        acquisition.center_sample = samples // 2
        dataset.append_acquisition(acquisition)
    dataset.close()


def coil_images(kspace: np.ndarray, rows: int, size: int) -> torch.Tensor:
    """``(C, samples, W)`` k-space -> ``(C, size, size)`` complex coil images, as the sources
    prepare a slice (readout oversampling removed, central k-space square)."""
    from ssmri.data.acquired import crop_readout
    from ssmri.data.fastmri_multicoil import central_crop
    from ssmri.physics.fft import ifft2c, to_channels, to_complex

    cropped = central_crop(crop_readout(torch.from_numpy(kspace).to(torch.complex64), rows), size)
    return to_complex(ifft2c(to_channels(cropped)))


def rss(images: torch.Tensor) -> np.ndarray:
    return images.abs().pow(2).sum(dim=0).sqrt().numpy().astype(np.float64)


def psnr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """fastMRI's PSNR: magnitudes as they are, data range = the reference's maximum."""
    error = np.mean((estimate - reference) ** 2)
    return float(10 * np.log10(reference.max() ** 2 / error))


def run(command: list[str], log: Path) -> float:
    """Run one of the repository's commands, its output to ``log``; returns its wall time."""
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    with open(log, "w") as handle:
        result = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{command[1]} failed (exit {result.returncode}); its output is in {log}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "twix_r3")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--loss", default="ssdu")
    parser.add_argument("--epochs", type=int, default=200, help="one step each: the scan is one slice")
    parser.add_argument("--val-every", type=int, default=20, help="epochs between validations")
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=["model.denoiser.base_features=32"],
        help="further train.py overrides (model size, ...)",
    )
    args = parser.parse_args()

    from ssmri.data.ismrmrd import ISMRMRDFiles
    from ssmri.data.twix import read_twix

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    raw = read_twix(GRE)
    full = raw.kspace[0]  # (C, samples, W), fully sampled
    mask = r3_mask(full.shape[-1])
    scan = out / "gre_r3.h5"
    write_acquired(scan, full * mask, mask, raw.rows, raw.voxel_size)

    size = args.image_size
    data = [
        f"data.images.root={scan}",
        f"data.image_size={size}",
        "physics=multicoil",
        "trainer.accelerator=cpu",
        f"paths.cache_dir={out / 'cache'}",
    ]
    train = [
        sys.executable,
        "train.py",
        "data=ismrmrd",
        "data.images.split=scan",
        *data,
        f"loss={args.loss}",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.check_val_every_n_epoch={args.val_every}",
        "trainer.log_every_n_steps=1",
        "logger=none",
        f"hydra.run.dir={out / 'train'}",
        *args.overrides,
    ]
    train_seconds = run(train, out / "train.log")
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    checkpoint = metrics["tested_checkpoint"]
    predict = [
        sys.executable,
        "predict.py",
        f"ckpt_path={checkpoint}",
        "data=ismrmrd",
        *data,
        f"hydra.run.dir={out / 'predict'}",
    ]
    predict_seconds = run(predict, out / "predict.log")
    with h5py.File(out / "predict" / "reconstructions" / "gre_r3.h5") as file:
        reconstruction = file["reconstruction"][0].astype(np.float64)

    reference = rss(coil_images(full, raw.rows, size))
    zero_filled = rss(coil_images(full * mask, raw.rows, size))
    acquired = ISMRMRDFiles(str(scan), image_size=size).load([(0, 0)])  # what the model was given
    from ssmri.physics.fft import ifft2c, to_complex

    combined = (to_complex(acquired.maps[0]).conj() * to_complex(ifft2c(acquired.kspace[0]))).sum(dim=0)
    combined = combined.abs().double().numpy() * float(acquired.scale[0])
    kept = mask[(len(mask) - size) // 2 :][:size]
    result = {
        "scan": str(GRE.relative_to(REPO)),
        "image_size": size,
        "coils": int(full.shape[0]),
        "lines": f"{int(mask.sum())} of {len(mask)} (R = {len(mask) / mask.sum():.2f}); "
        f"{int(kept.sum())} of {size} in the central square (R = {size / kept.sum():.2f})",
        "convention": "fastMRI: magnitudes, no rescaling, data range = max of the fully sampled RSS",
        "psnr_zero_filled_rss": round(psnr(zero_filled, reference), 2),
        "psnr_zero_filled_coil_combined": round(psnr(combined, reference), 2),
        "psnr_model": round(psnr(reconstruction, reference), 2),
        "loss": args.loss,
        "epochs": metrics["epochs"],
        "global_step": metrics["global_step"],
        "selection": metrics["selection"]["label"],
        "test_loss": metrics.get("test/loss"),
        "train_seconds_total": round(train_seconds, 1),
        "train_seconds_fit": metrics["train_seconds"],
        "predict_seconds_total": round(predict_seconds, 1),
        "commands": {"train": " ".join(train[1:]), "predict": " ".join(predict[1:])},
    }
    (out / "twix_r3.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
