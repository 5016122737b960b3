"""Small computations the app explains with: conv output sizes, where a training step spends
its time, a model's source, and turning an uploaded picture into a 32x32 input."""

from __future__ import annotations

import inspect
import io
import statistics
import time

import numpy as np
import torch
from torch import nn

from cae.data import open_image
from cae.model import Classifier, ConvAutoencoder
from cae.train import reconstruction_loss, training_step

MAX_UPLOAD_PIXELS = 40_000_000  # refuse decompression bombs long before memory runs out


class ImageInputError(ValueError):
    """An uploaded file cannot be used as a picture; the message says why."""


def conv_output_size(width: int, kernel: int, padding: int, stride: int) -> int:
    """floor((W - K + 2P) / S) + 1: the lecture's first layer (32, 3, 1, 2) gives 16, not 14."""
    if min(width, kernel, stride) < 1 or padding < 0:
        raise ValueError("Width, kernel and stride must be at least 1 and padding at least 0.")
    if kernel > width + 2 * padding:
        raise ValueError(f"A {kernel}x{kernel} kernel does not fit a {width}-wide input with padding {padding}.")
    return (width - kernel + 2 * padding) // stride + 1


def layer_kind(name: str, module: nn.Module) -> str:
    """The timing group of a leaf module: encoder convs, fc layers, decoder convs or upsampling."""
    if isinstance(module, nn.Upsample):
        return "upsampling"
    if name.startswith(("fc_", "head")):
        return "fc layers"
    return "encoder convs" if name.startswith("conv_encoder") else "decoder convs"


def time_blocks(model: ConvAutoencoder, device: torch.device, batch_size: int = 256,
                precision: str = "fp32", repeats: int = 3) -> dict[str, float]:
    """Seconds of one forward + backward of a batch, split by kind of layer (median of repeats).

    Forward and backward hooks time each leaf module; activations count with their layer's group.
    """
    model = model.to(device, memory_format=torch.channels_last).train()
    # the input takes gradients too, so the first layer's backward hooks fire
    x = torch.rand(batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last).requires_grad_()
    spent: dict[str, list[float]] = {}
    starts: dict[int, float] = {}
    hooks = []

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for name, module in model.named_modules():
        if name and not list(module.children()):
            kind = layer_kind(name, module)
            for pre, post in ((module.register_forward_pre_hook, module.register_forward_hook),
                              (module.register_full_backward_pre_hook, module.register_full_backward_hook)):
                def begin(*_a, key=id(module)):
                    sync()
                    starts[key] = time.perf_counter()

                def end(*_a, key=id(module), kind=kind):
                    sync()
                    spent.setdefault(kind, []).append(time.perf_counter() - starts.pop(key, time.perf_counter()))
                hooks += [pre(begin), post(end)]
    totals = []
    optimizer = torch.optim.Adam(model.parameters())
    try:
        for _ in range(repeats + 1):  # the first pass warms up and is dropped
            spent.clear()
            training_step(model, optimizer, reconstruction_loss, x, None, precision)
            totals.append({k: sum(v) for k, v in spent.items()})
    finally:
        for h in hooks:
            h.remove()
    order = ("encoder convs", "fc layers", "decoder convs", "upsampling")
    return {k: statistics.median(t.get(k, 0.0) for t in totals[1:]) for k in order}


def model_source() -> str:
    """The real source of the two model classes, as the app shows it."""
    return inspect.getsource(inspect.getmodule(ConvAutoencoder))


def image_from_bytes(data: bytes) -> tuple[torch.Tensor, list[str]]:
    """An uploaded PNG/JPEG -> uint8 (3,32,32) and notes on what was changed (mode, size)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageInputError("The file is empty; upload a PNG or JPEG picture.")
    notes = []
    try:
        with open_image(io.BytesIO(data)) as img:  # the header only, so far
            if img.width * img.height > MAX_UPLOAD_PIXELS:
                raise ImageInputError(f"This picture has {img.width * img.height / 1e6:.0f} megapixels; upload one "
                                      f"under {MAX_UPLOAD_PIXELS // 1_000_000}.")
            if img.mode != "RGB":
                notes.append(f"converted from {img.mode} to RGB")
            rgb = img.convert("RGB")
            if rgb.size != (32, 32):
                notes.append(f"resized from {rgb.size[0]}x{rgb.size[1]} to 32x32, the size the model was trained on")
                rgb = rgb.resize((32, 32), Image.BILINEAR)
            array = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ImageInputError("This file is not a picture this app can read; upload a PNG or JPEG.") from None
    except Image.DecompressionBombError:
        raise ImageInputError(f"This picture is far too large; upload one under "
                              f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels.") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1), notes


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
