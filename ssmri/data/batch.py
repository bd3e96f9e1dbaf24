"""The typed batch every data loader serves."""

from dataclasses import dataclass

import torch
from torch import Tensor

from ssmri.physics.acquisition import Acquisition


@dataclass
class MRIBatch:
    """A batch of measurements.

    Attributes:
        y: ``(B, 2, H, W)`` measured k-space, zero off the mask; ``(B, C, 2, H, W)`` in multi-coil.
        mask: ``(B, 1, H, W)`` float 0/1 sampling mask of each sample (shared by its coils).
        index: ``(B,)`` position of each sample in its split (for per-image results).
        x: ``(B, 2, H, W)`` ground truth, or ``None`` where it must not be seen
            (self-supervised training batches).
        maps: ``(B, C, 2, H, W)`` coil sensitivity maps, or ``None`` for single-coil data.
    """

    y: Tensor
    mask: Tensor
    index: Tensor
    x: Tensor | None = None
    maps: Tensor | None = None

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def acq(self) -> Acquisition:
        """The acquisition of the batch: what the network, the physics and the losses take."""
        return Acquisition(self.mask, self.maps)


def collate(samples: list[dict]) -> MRIBatch:
    """Stack per-sample dicts into an :class:`MRIBatch`; ``x`` (``maps``) only if every sample has it."""
    has_target = all("x" in sample for sample in samples)
    has_maps = all("maps" in sample for sample in samples)
    return MRIBatch(
        y=torch.stack([s["y"] for s in samples]),
        mask=torch.stack([s["mask"] for s in samples]),
        index=torch.tensor([s["index"] for s in samples]),
        x=torch.stack([s["x"] for s in samples]) if has_target else None,
        maps=torch.stack([s["maps"] for s in samples]) if has_maps else None,
    )
