"""The skip-convolution discriminator of the adversarial MRI methods (Adversarial, UAIR)."""

from math import prod

import torch
from torch import Tensor, nn


def _conv_lrelu(in_channels: int, out_channels: int, negative_slope: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.LeakyReLU(negative_slope),
    )


class _SkipBlock(nn.Module):
    """``σ(conv(x)) + σ(conv'(x))``: two parallel 3x3 conv + LeakyReLU branches, summed."""

    def __init__(self, features: int, negative_slope: float):
        super().__init__()
        self.branch = _conv_lrelu(features, features, negative_slope)
        self.skip = _conv_lrelu(features, features, negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.branch(x) + self.skip(x)


class SkipConvDiscriminator(nn.Module):
    r"""Full-resolution convolutional critic with a dense head; one logit per image.

    .. math::
        h_0 = \sigma(W_0 * x),\quad h_j = \sigma(W_j * h_{j-1}) + \sigma(W'_j * h_{j-1}),
        \quad D(x) = w^\top \mathrm{vec}(h_J) + b

    with 3x3 bias-free convolutions at stride 1 (no downsampling), :math:`\sigma` a LeakyReLU
    and no output sigmoid (least-squares GAN). Because it never downsamples, the dense layer
    has ``features * H * W`` inputs and the network only accepts ``image_size`` inputs. Cole et
    al., "Fast Unsupervised MRI Reconstruction Without Fully-Sampled Ground Truth Data Using
    Generative Adversarial Networks", ICCVW 2021; SSIBench uses it with ``use_sigmoid=False``
    (DeepInverse ``SkipConvDiscriminator``).

    Args:
        image_size: ``(H, W)`` or an int: the only input size accepted.
        features: channels of every convolution (128).
        num_blocks: number of skip blocks (4).
        in_channels: input channels (2 for a complex image or k-space).
        negative_slope: LeakyReLU slope (PyTorch's default 0.01, as the reference).
        images_per_pass: images convolved together (``None``: the whole batch). The critic has
            no normalisation layer, so passes of fewer images give the same logits and
            gradients; on a CPU one image at a time keeps its full-resolution 128-channel
            activations in cache, which is faster (timings in docs/benchmark.md).
    """

    def __init__(
        self,
        image_size,
        features: int = 128,
        num_blocks: int = 4,
        in_channels: int = 2,
        negative_slope: float = 0.01,
        images_per_pass: int | None = None,
    ):
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = tuple(int(s) for s in image_size)
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be an int or (H, W) of positive ints, got {image_size}")
        if features < 1 or num_blocks < 0:
            raise ValueError(f"features must be >= 1 and num_blocks >= 0, got {features} and {num_blocks}")
        if images_per_pass is not None and images_per_pass < 1:
            raise ValueError(f"images_per_pass must be >= 1 or None, got {images_per_pass}")
        self.images_per_pass = images_per_pass
        self.head = _conv_lrelu(in_channels, features, negative_slope)
        self.blocks = nn.Sequential(*(_SkipBlock(features, negative_slope) for _ in range(num_blocks)))
        self.final = nn.Linear(features * prod(self.image_size), 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, C, H, W)`` with ``(H, W) == image_size`` -> ``(B,)`` logits."""
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"SkipConvDiscriminator was built for image_size={self.image_size}, got input "
                f"{tuple(x.shape)}; set the discriminator's image_size to the data's"
            )
        if self.images_per_pass is not None and len(x) > self.images_per_pass:
            return torch.cat([self(part) for part in x.split(self.images_per_pass)])
        features = self.blocks(self.head(x))
        return self.final(features.flatten(1)).squeeze(-1)


__all__ = ["SkipConvDiscriminator"]
