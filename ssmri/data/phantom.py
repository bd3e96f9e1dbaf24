"""Procedural brain-like complex phantoms: any size, any count, deterministic, no files."""

import math

import torch
from torch import Tensor

from ssmri.data.sources import ImageSource, MissingSample, check_image_size, normalise_magnitude

# Offsets that keep the three splits' random streams apart for the same seed.
_SPLIT_STREAM = {"train": 0, "val": 1_000_003, "test": 2_000_003}


class PhantomImages(ImageSource):
    """Ellipse "brains" with a skull ring, ventricles, lesions, texture and a smooth phase.

    Image ``i`` of a split is a pure function of ``(seed, split, i)``, so counts can grow
    without changing the images already drawn.

    Args:
        image_size: side length of the square images.
        seed: base seed.
        phase_strength: peak of the smooth phase in radians (0 gives real images).
    """

    def __init__(self, image_size: int = 64, seed: int = 0, phase_strength: float = math.pi / 2):
        self.image_size = check_image_size(image_size)
        self.seed = int(seed)
        self.phase_strength = float(phase_strength)

    def describe(self) -> dict:
        return {
            "source": "phantom",
            "image_size": self.image_size,
            "seed": self.seed,
            "phase_strength": self.phase_strength,
        }

    def keys(self, split: str, count: int | None) -> list[int]:
        """The random streams of the split's phantoms."""
        self._check_split(split)
        if count is None or count < 1:
            raise ValueError(f"the phantom data set needs a positive count for {split}, got {count}")
        base = self.seed * 10_000_019 + _SPLIT_STREAM[split]
        return [base + i for i in range(count)]

    def load(self, keys) -> Tensor:
        return torch.stack([self.render(stream) for stream in keys])

    def sample_ids(self, split: str, count: int | None) -> list[dict]:
        self._check_split(split)
        # A phantom is a volume of its own: nothing groups them.
        return [
            {"seed": self.seed, "split": split, "index": i, "volume": f"{split}-{i}"}
            for i in range(count or 0)
        ]

    def images_for(self, ids: list[dict]) -> Tensor:
        streams = []
        for sample in ids:
            seed, split, index = sample.get("seed"), sample.get("split"), sample.get("index")
            if not isinstance(seed, int) or not isinstance(index, int) or seed < 0 or index < 0:
                raise MissingSample(sample, "a phantom is named by integers seed >= 0 and index >= 0")
            if split not in _SPLIT_STREAM:
                raise MissingSample(sample, f"split must be one of {list(_SPLIT_STREAM)}")
            streams.append(seed * 10_000_019 + _SPLIT_STREAM[split] + index)
        return torch.stack([self.render(stream) for stream in streams])

    def render(self, stream: int) -> Tensor:
        """One ``(2, H, W)`` phantom from its own random stream."""
        rng = torch.Generator().manual_seed(stream)

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * torch.rand((), generator=rng).item()

        size = self.image_size
        axis = torch.linspace(-1, 1, size)
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")

        def ellipse(cx, cy, ax, ay, angle) -> Tensor:
            c, s = math.cos(angle), math.sin(angle)
            u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
            return ((u / ax) ** 2 + (v / ay) ** 2 <= 1).float()

        tilt = uniform(-0.3, 0.3)
        ax, ay = uniform(0.62, 0.8), uniform(0.75, 0.92)
        head = ellipse(0, 0, ax, ay, tilt)
        brain = ellipse(0, 0, ax - 0.07, ay - 0.07, tilt)
        image = 0.9 * (head - brain) + uniform(0.45, 0.6) * brain
        # Grey/white matter: a smooth random field inside the brain.
        image = image + brain * 0.25 * self._smooth_field(rng, size, cells=6)
        for _ in range(2):  # ventricles, dark
            side = 1 if _ == 0 else -1
            image = image - 0.35 * brain * ellipse(
                side * uniform(0.08, 0.18),
                uniform(-0.15, 0.05),
                uniform(0.05, 0.1),
                uniform(0.15, 0.3),
                tilt + side * uniform(0.1, 0.4),
            )
        for _ in range(int(uniform(2, 6))):  # lesions, bright or dark
            image = image + uniform(-0.25, 0.35) * brain * ellipse(
                uniform(-0.45, 0.45),
                uniform(-0.55, 0.55),
                uniform(0.03, 0.1),
                uniform(0.03, 0.1),
                uniform(0, math.pi),
            )
        magnitude = image.clamp_min(0) * (1 + 0.05 * self._smooth_field(rng, size, cells=16))
        phase = self.phase_strength * self._smooth_field(rng, size, cells=2)
        complex_image = torch.stack((magnitude * torch.cos(phase), magnitude * torch.sin(phase)))
        return normalise_magnitude(complex_image[None])[0]

    @staticmethod
    def _smooth_field(rng: torch.Generator, size: int, cells: int) -> Tensor:
        """A random field in [-1, 1] smooth on the scale of ``size / cells`` pixels."""
        coarse = torch.rand(1, 1, cells + 1, cells + 1, generator=rng) * 2 - 1
        field = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
        return field[0, 0].clamp(-1, 1)
