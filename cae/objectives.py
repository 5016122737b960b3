"""What the autoencoder is asked to do with each training batch. The lecture's recipe rebuilds its
input. Three options change what the code must keep, the input corrupted and the clean image the
target:

- `noise` (denoising, Vincent et al. 2008): Gaussian noise of this standard deviation (pixels in
  [0, 1]) added to the input, clipped back to [0, 1];
- `mask` (masking, after He et al. 2021): this fraction of the 64 patches of 4×4 pixels set to 0
  (black) in the input. Zero rather than the image's mean: the mean would hand the network each
  image's average colour in every hidden patch, a hint the code should have to carry. The loss
  covers every pixel, as in the lecture: the code must still hold the whole image, and the test
  MSE stays comparable across options (on clean images, like the lecture's);
- `augment`: a random 32×32 crop of the image padded by 4 pixels (zeros), of input and target
  alike (`flip`, the lecture-era option, already flips both).

Noise, masks and crops are drawn from a generator of their own (the run's seed + OWN_SEED), so a
run without these options draws exactly what it drew before they existed.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

PATCH = 4  # masking hides squares of PATCH×PATCH pixels
PAD = 4  # crops are taken from the image padded by this many pixels
OWN_SEED = 7919  # added to the run's seed for the options' generator

Pretext = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def random_crops(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """Each image of (B,C,H,W) `x` cut at a random offset from itself padded by `pad` zeros."""
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B,H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B,W)
    images = torch.arange(b, device=x.device)[:, None, None]
    return padded[images, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def with_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """`x` plus Gaussian noise of standard deviation `std`, clipped to [0, 1]."""
    return (x + std * torch.randn(x.shape, generator=generator).to(x.device)).clamp(0, 1)


def hidden_patches(batch: int, fraction: float, generator: torch.Generator, side: int = 32) -> torch.Tensor:
    """(B, side/PATCH, side/PATCH) booleans: exactly round(fraction × patches) True per image."""
    per_row = side // PATCH
    n = per_row * per_row
    order = torch.rand(batch, n, generator=generator).argsort(1)
    hidden = torch.zeros(batch, n, dtype=torch.bool)
    hidden.scatter_(1, order[:, : round(fraction * n)], True)
    return hidden.view(batch, per_row, per_row)


def with_mask(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """`x` with `fraction` of its PATCH×PATCH patches set to 0."""
    hidden = hidden_patches(x.shape[0], fraction, generator, x.shape[-1])
    pixels = hidden.repeat_interleave(PATCH, 1).repeat_interleave(PATCH, 2)[:, None]
    return x.masked_fill(pixels.to(x.device), 0.0)


def pretext_for(noise: float, mask: float, augment: bool, seed: int) -> Pretext | None:
    """(input, target) from a clean batch for these options, drawing from their own generator (in
    this order: crops, noise, masks); None for the lecture's plain recipe (input = target)."""
    if not (noise or mask or augment):
        return None
    generator = torch.Generator().manual_seed(seed + OWN_SEED)

    def pretext(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = random_crops(x, generator) if augment else x
        inputs = with_noise(target, noise, generator) if noise else target
        if mask:
            inputs = with_mask(inputs, mask, generator)
        return inputs, target

    return pretext
