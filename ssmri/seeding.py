"""Random streams that are pure functions of named integers (seed, rank, epoch, step, image)."""

import numpy as np
import torch


def seeded_rng(*keys: int) -> torch.Generator:
    """A CPU random stream (torch.Generator) seeded from ``keys`` through NumPy's ``SeedSequence`` hash.

    Streams for different key tuples are independent for practical purposes, and the same
    keys always give the same stream, so a resumed run draws what an uninterrupted one drew.
    """
    entropy = [int(key) for key in keys]
    if any(key < 0 for key in entropy):
        raise ValueError(f"seed keys must be non-negative integers, got {keys}")
    seed = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed)
