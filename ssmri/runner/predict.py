"""Reconstruct every slice of every volume a data source gives, and save the reconstructions.

``python predict.py ckpt_path=<ckpt> data=<source> data.images.root=<file or folder>``: no split
and no target. The checkpoint is rebuilt as ``eval.py`` rebuilds it (:func:`ssmri.runner.run.load_trained`,
with its checks), each slice is reconstructed with the method's own inference rule, and each
volume is written under ``<run dir>/reconstructions/``:

- ``<stem>.h5``: ``reconstruction`` ``(slices, H, W)`` float32 magnitudes, fastMRI's submission
  layout (``python -m ssmri.evaluation`` scores it); in the file's units where the source says how
  it scaled the k-space, else in the source's (each slice's target peaks at 1);
- ``<stem>.nii.gz``: the same volume as NIfTI ``(H, W, slices)``, voxel size from the file's
  header where it has one (else 1 mm);
- ``<stem>.png``: a montage of the slices.

Acquired scans are reconstructed from their measured k-space and masks; fully sampled data from
the measurements the chosen physics simulates. A source without files (phantoms, the brain
template) gives one volume, its test split, named after the source. Each file is listed and
read through a source of its own (:meth:`~ssmri.data.fastmri.VolumeFiles.only`), so a file that
cannot even be listed fails alone. Each file is written atomically; a volume that fails is named
and the others are still written.
"""

import gzip
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from ssmri.atomic import atomic_write, write_json
from ssmri.data.batch import MRIBatch
from ssmri.errors import DataError, is_user_error, one_line
from ssmri.physics.fft import magnitude

log = logging.getLogger(__name__)


@dataclass
class Volume:
    """One output: its name (file stem), the source that reads it and the source's keys of its
    slices, in slice order."""

    name: str
    source: object
    keys: list
    voxel_size: tuple[float, float, float] | None = None


@dataclass
class Outcome:
    """What a prediction wrote and what failed (volume name -> one-line error)."""

    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def predict(cfg: DictConfig, method: str = "predict") -> Outcome:
    """Reconstruct and write every volume of ``cfg.data``'s source with the checkpoint's method.

    Raises :class:`DataError` naming the volumes that failed, after the others were written.
    """
    from ssmri.runner.run import load_trained  # the run module imports Lightning; keep this one light

    module, datamodule, checkpoint_path, method = load_trained(cfg, method)
    output_dir = Path(cfg.paths.output_dir)
    folder = output_dir / "reconstructions"
    device = inference_device(str(cfg.trainer.get("accelerator", "auto")))
    module.to(device).eval()
    batch_size = int(cfg.get("predict", {}).get("batch_size") or datamodule.eval_batch_size)
    outcome = Outcome()
    volumes = list_volumes(datamodule, outcome)
    source = str(datamodule.images.describe()["source"])
    log.info(
        "predicting %d volume(s) of %s with %s (%s) on %s into %s",
        len(volumes),
        source,
        checkpoint_path,
        method,
        device,
        folder,
    )
    with tqdm(total=sum(len(v.keys) for v in volumes), desc="predict", unit="slice", disable=None) as bar:
        for volume in volumes:
            try:
                reconstruction, units = reconstruct_volume(
                    module, datamodule, volume, batch_size, device, bar
                )
                write_volume(
                    folder,
                    volume,
                    reconstruction,
                    {
                        "checkpoint": str(checkpoint_path),
                        "method": method,
                        "units": units,
                        "source": source,
                    },
                )
                outcome.written.append(volume.name)
            except Exception as error:  # noqa: BLE001 - one volume's failure must not stop the others
                outcome.failed[volume.name] = one_line(error).removeprefix("error: ")
                log.error(
                    "%s: %s", volume.name, outcome.failed[volume.name], exc_info=not is_user_error(error)
                )  # a bug keeps its traceback in the log
    write_json(
        output_dir / "predictions.json",
        {
            "checkpoint": str(checkpoint_path),
            "method": method,
            "reconstructions": str(folder),
            "written": outcome.written,
            "failed": outcome.failed,
        },
    )
    if outcome.failed:
        names = sorted(outcome.failed)
        first = names[0]
        raise DataError(
            f"{len(names)} of {len(names) + len(outcome.written)} volume(s) failed, the others "
            f"are in {folder}: {first}: {outcome.failed[first]}"
            + (f" (and {', '.join(names[1:4])}; see predictions.json)" if len(names) > 1 else "")
        )
    log.info("wrote %d reconstruction(s) to %s", len(outcome.written), folder)
    return outcome


def inference_device(accelerator: str) -> torch.device:
    """``trainer.accelerator``'s device: cpu, or the GPU where one is asked for (or auto) and present."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def list_volumes(datamodule, outcome: Outcome) -> list[Volume]:
    """Every volume of the source; a volume whose slices cannot be listed goes to ``outcome.failed``.

    Each file gets a source of its own: the folder's source lists (and validates) every file at
    once, which is right before training but would let one unreadable file fail them all here.
    """
    source = datamodule.images
    try:
        names = source.volumes()
    except NotImplementedError:  # phantoms, the brain template: one volume, the test split
        name = str(source.describe()["source"])
        return [Volume(name, source, list(source.keys("test", datamodule.counts["test"])))]
    volumes = []
    for number, name in enumerate(names):
        stem = Path(name).stem
        try:
            own = source.only(number)
            volumes.append(Volume(stem, own, list(own.volume_keys(0)), own.voxel_size(0)))
        except (ValueError, OSError) as error:
            outcome.failed[stem] = one_line(error).removeprefix("error: ")
            log.error("%s: %s", stem, outcome.failed[stem])
    return volumes


def reconstruct_volume(
    module, datamodule, volume: Volume, batch_size: int, device: torch.device, bar: tqdm
) -> tuple[np.ndarray, str]:
    """``(slices, H, W)`` float32 magnitudes of one volume and the units they are in.

    The volume's own source is read ``data.chunk_size`` slices at a time; each chunk becomes
    measurements as the cache would hold them (:meth:`MRIDataModule.simulate`: acquired k-space
    and masks as they are, fully sampled data through the physics), then batches of ``batch_size``.
    """
    source, chunk_size = volume.source, datamodule.chunk_size
    slices, scales = [], []
    for start in range(0, len(volume.keys), chunk_size):
        data = source.load(volume.keys[start : start + chunk_size])
        scale = getattr(data, "scale", None)
        scales.append(scale)
        # Fully sampled data: masks (and noise) from the test split's streams by slice number, so
        # a slice gets the same measurements in every prediction; acquired data: as measured.
        chunk = datamodule.simulate("test", start, data)
        for first in range(0, len(chunk.kspace), batch_size):
            batch = to_batch(chunk, first, min(first + batch_size, len(chunk.kspace)), start)
            with torch.inference_mode():
                x_hat = module.reconstruct(move(batch, device))
            if not torch.isfinite(x_hat).all():
                raise FloatingPointError(
                    f"{volume.name}: the reconstruction of slices from {start + first} holds NaN or "
                    f"infinite values; the checkpoint does not fit this data"
                )
            slices.append(magnitude(x_hat)[:, 0].float().cpu())
            bar.update(len(batch))
    reconstruction = torch.cat(slices)
    if all(scale is not None for scale in scales):
        reconstruction = reconstruction * torch.cat([torch.as_tensor(s) for s in scales]).reshape(-1, 1, 1)
        units = "file"
    else:
        units = "normalised: as the source serves the slices (a target's peak is 1)"
    return reconstruction.numpy().astype(np.float32), units


def to_batch(chunk, first: int, last: int, offset: int) -> MRIBatch:
    """Samples ``first..last`` of a cache chunk as the batch the test loader would serve."""
    kspace = chunk.kspace[first:last]
    height = kspace.shape[-2]
    mask = chunk.mask[first:last].float()[:, None, None, :].expand(-1, 1, height, -1).contiguous()
    maps = chunk.maps
    if maps is not None:
        maps = maps[first:last] if maps.dim() == kspace.dim() else maps.expand(len(kspace), *maps.shape)
    # Slice numbers as indices: a random inference rule draws per slice, whatever the batch size.
    index = torch.arange(offset + first, offset + last)
    return MRIBatch(y=kspace, mask=mask, index=index, maps=maps)


def move(batch: MRIBatch, device: torch.device) -> MRIBatch:
    return MRIBatch(
        y=batch.y.to(device),
        mask=batch.mask.to(device),
        index=batch.index,
        maps=None if batch.maps is None else batch.maps.to(device),
    )


def write_volume(folder: Path, volume: Volume, reconstruction: np.ndarray, attributes: dict) -> None:
    """``<name>.h5``, ``<name>.nii.gz`` and ``<name>.png``, each atomically; all three or none."""
    written = []
    try:
        for suffix, writer in ((".h5", write_hdf5), (".nii.gz", write_nifti), (".png", write_montage)):
            path = folder / f"{volume.name}{suffix}"
            writer(path, reconstruction, volume, attributes)
            written.append(path)
    except BaseException:
        for path in written:  # a volume is complete or absent, never half there
            path.unlink(missing_ok=True)
        raise


def write_hdf5(path: Path, reconstruction: np.ndarray, volume: Volume, attributes: dict) -> None:
    with atomic_write(path) as temporary, h5py.File(temporary, "w") as file:
        file.create_dataset("reconstruction", data=reconstruction)
        for key, value in {**attributes, "volume": volume.name}.items():
            file.attrs[key] = value
        if volume.voxel_size is not None:
            file.attrs["voxel_size_mm"] = np.asarray(volume.voxel_size, dtype=np.float64)


def write_nifti(path: Path, reconstruction: np.ndarray, volume: Volume, attributes: dict) -> None:
    import nibabel

    voxel = volume.voxel_size or (1.0, 1.0, 1.0)
    image = nibabel.Nifti1Image(
        np.ascontiguousarray(reconstruction.transpose(1, 2, 0)), np.diag([*map(float, voxel), 1.0])
    )
    image.header.set_xyzt_units("mm")
    with atomic_write(path) as temporary:
        # nibabel picks the format from the name, and a temporary's ends in .tmp: bytes instead.
        temporary.write_bytes(gzip.compress(image.to_bytes(), mtime=0))


def write_montage(path: Path, reconstruction: np.ndarray, volume: Volume, attributes: dict) -> None:
    """The slices tiled row by row, on one grey scale from 0 to the volume's 99.5th percentile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count, height, width = reconstruction.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tiles = np.zeros((rows * height, columns * width), dtype=np.float32)
    for number, image in enumerate(reconstruction):
        row, column = divmod(number, columns)
        tiles[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    top = float(np.percentile(reconstruction, 99.5)) or 1.0
    with atomic_write(path) as temporary:
        plt.imsave(temporary, tiles, cmap="gray", vmin=0.0, vmax=top, format="png")
