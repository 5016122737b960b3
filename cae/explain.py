"""The model explained: a convolution's output size, the model's own source, and what it does to
pictures (reconstructions, class probabilities)."""

from __future__ import annotations

import inspect

import torch

from cae.data import Dataset, balanced_subset
from cae.model import Classifier, ConvAutoencoder

RECON_IMAGES = 16  # the test images a training shows reconstructed, epoch by epoch


def conv_output_size(width: int, kernel: int, padding: int, stride: int) -> int:
    """floor((W - K + 2P) / S) + 1: the lecture's first layer (32, 3, 1, 2) gives 16, not 14."""
    if min(width, kernel, stride) < 1 or padding < 0:
        raise ValueError("Width, kernel and stride must be at least 1 and padding at least 0.")
    if kernel > width + 2 * padding:
        raise ValueError(f"A {kernel}x{kernel} kernel does not fit a {width}-wide input with padding {padding}.")
    return (width - kernel + 2 * padding) // stride + 1


def model_source() -> str:
    """The real source of the two model classes, as the app shows it."""
    return inspect.getsource(inspect.getmodule(ConvAutoencoder))


def fixed_test_images(dataset: Dataset, n: int = RECON_IMAGES) -> torch.Tensor:
    """The same n test images (class-balanced) every time: uint8 (n,3,32,32)."""
    return dataset.test.images[balanced_subset(dataset.test.labels, n, seed=0)]


@torch.no_grad()
def reconstruct(model: ConvAutoencoder, images: torch.Tensor) -> torch.Tensor:
    """uint8 or float (N,3,32,32) -> reconstructions as float in [0,1] (CPU)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    model.eval()
    return model(x.to(next(model.parameters()).device)).clamp(0, 1).cpu()


@torch.no_grad()
def class_probabilities(model: Classifier, images: torch.Tensor) -> torch.Tensor:
    """uint8 (N,3,32,32) -> softmax probabilities (N, classes)."""
    model.eval()
    x = images.float().div(255).to(next(model.parameters()).device)
    return model(x).softmax(1).cpu()
