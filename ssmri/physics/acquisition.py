"""What one acquisition is, per sample: the sampling mask and, in multi-coil, the coil maps.

The two travel together through the batch, the network ``f(y, acq)``, the physics and every
loss, so that a loss that draws a new mask (MOI, MO-EI, splitting) keeps each sample's maps.
"""

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Acquisition:
    """The per-sample parameters of the forward operator ``A``.

    Attributes:
        mask: ``(B, 1, H, W)`` float 0/1 sampling mask, shared by the coils.
        maps: ``(B, C, 2, H, W)`` coil sensitivity maps (real/imaginary channels), or ``None``
            for single-coil data.
    """

    mask: Tensor
    maps: Tensor | None = None

    def __post_init__(self):
        if self.mask.dim() != 4 or self.mask.shape[1] != 1:
            raise ValueError(f"the sampling mask must be (B, 1, H, W), got {tuple(self.mask.shape)}")
        if self.maps is not None:
            expected = (len(self.mask), 2, *self.mask.shape[-2:])
            if self.maps.dim() != 5 or (self.maps.shape[0], *self.maps.shape[2:]) != expected:
                raise ValueError(
                    f"coil maps must be (B, C, 2, H, W) = ({expected[0]}, C, 2, "
                    f"{expected[2]}, {expected[3]}) to match the mask, got {tuple(self.maps.shape)}"
                )

    @property
    def multicoil(self) -> bool:
        return self.maps is not None

    @property
    def coils(self) -> int:
        """``C``; 1 for single-coil data."""
        return 1 if self.maps is None else self.maps.shape[1]

    def __len__(self) -> int:
        return len(self.mask)

    def with_mask(self, mask: Tensor) -> "Acquisition":
        """The same samples (and coil maps) seen through another mask."""
        return Acquisition(mask, self.maps)

    def __getitem__(self, index) -> "Acquisition":
        """Samples ``index`` (an int keeps the batch axis)."""
        if isinstance(index, int):
            index = slice(index, index + 1 or None)
        return Acquisition(self.mask[index], None if self.maps is None else self.maps[index])

    def repeat_interleave(self, count: int) -> "Acquisition":
        """Each sample ``count`` times in a row (sample 0, 0, ..., 1, 1, ...)."""
        maps = None if self.maps is None else self.maps.repeat_interleave(count, dim=0)
        return Acquisition(self.mask.repeat_interleave(count, dim=0), maps)

    def to(self, *args, **kwargs) -> "Acquisition":
        """Moved like :meth:`torch.Tensor.to`; the mask may change dtype, the maps only device."""
        mask = self.mask.to(*args, **kwargs)
        maps = None if self.maps is None else self.maps.to(device=mask.device)
        return Acquisition(mask, maps)


def apply_mask(kspace: Tensor, mask: Tensor) -> Tensor:
    """``M ⊙ y`` for single-coil ``(B, 2, H, W)`` or multi-coil ``(B, C, 2, H, W)`` k-space."""
    if kspace.dim() == 5:
        mask = mask.unsqueeze(1)
    return mask * kspace


def split_batch(acq: Acquisition, size: int) -> list[Acquisition]:
    """Consecutive chunks of ``size`` samples, like :meth:`torch.Tensor.split`."""
    return [acq[start : start + size] for start in range(0, len(acq), size)]


__all__ = ["Acquisition", "apply_mask", "split_batch"]
