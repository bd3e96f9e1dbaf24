"""The training sampler: a seeded shuffle per epoch, sharded across ranks, resumable mid-epoch."""

import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can skip the batches an interrupted epoch already trained on.

    The order of every epoch is a pure function of ``(seed, epoch)`` (never of the global RNG),
    each rank takes its own shard of it, and after :meth:`resume_at` the first iteration of
    that epoch starts at the given batch. Lightning calls ``set_epoch`` before each epoch and
    leaves a ``DistributedSampler`` in place under DDP, so one class serves one and many ranks.

    Args:
        dataset: the training set.
        batch_size: samples per batch (per rank), to turn batches into samples.
        seed: shuffling seed, shared by all ranks.
        shuffle: shuffle each epoch (else the data set's order).
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, shuffle: bool = True):
        distributed = dist.is_available() and dist.is_initialized()
        super().__init__(
            dataset,
            num_replicas=dist.get_world_size() if distributed else 1,
            rank=dist.get_rank() if distributed else 0,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self.batch_size = batch_size
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Make the next iteration of ``epoch`` start after its first ``batches_done`` batches."""
        self._resume = (int(epoch), int(batches_done))

    def __iter__(self):
        indices = list(super().__iter__())
        if self._resume is not None:
            epoch, batches_done = self._resume
            self._resume = None
            if epoch == self.epoch:
                indices = indices[batches_done * self.batch_size :]
        return iter(indices)
