"""The lecture's convolutional autoencoder and the classifier built from its encoder (nn.Modules only)."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from cae.config import Config

CODE_CHANNELS, CODE_SIDE = 128, 4
FLAT = CODE_CHANNELS * CODE_SIDE * CODE_SIDE  # 2048
NUM_CLASSES = 10


def activation(leak: float) -> nn.Module:
    """LeakyReLU with the given negative slope; a slope of 0 is the plain ReLU."""
    return nn.ReLU() if leak == 0 else nn.LeakyReLU(leak)


def conv_encoder(leak: float) -> nn.Sequential:
    """32x32 -> 16 -> 8 -> 4 with stride-2 convs, then one stride-1 conv: (B,3,32,32) -> (B,128,4,4)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2, padding=1),
        activation(leak),
        nn.Conv2d(64, 128, 3, stride=2, padding=1),
        activation(leak),
        nn.Conv2d(128, 128, 3, stride=2, padding=1),
        activation(leak),
        nn.Conv2d(128, 128, 3, stride=1, padding=1),
        activation(leak),
    )


def conv_decoder(leak: float, upsample: str) -> nn.Sequential:
    """(B,128,4,4) -> (B,3,32,32); the final ReLU keeps pixels non-negative like the [0,1] targets."""
    if upsample == "transpose":
        # the lecture's "deconvolution": each Upsample(x2) + Conv pair becomes one ConvTranspose2d
        return nn.Sequential(
            nn.Conv2d(128, 128, 3, padding=1),
            activation(leak),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
            activation(leak),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1),
            activation(leak),
            nn.ConvTranspose2d(64, 3, 4, stride=2, padding=1),
            nn.ReLU(),
        )
    # align_corners=False is today's default; the lecture's PyTorch <= 0.3 behaved like True
    extra = {"align_corners": False} if upsample == "bilinear" else {}
    up = lambda: nn.Upsample(scale_factor=2, mode=upsample, **extra)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(128, 128, 3, padding=1),
        activation(leak),
        up(),
        nn.Conv2d(128, 64, 3, padding=1),
        activation(leak),
        up(),
        nn.Conv2d(64, 64, 3, padding=1),
        activation(leak),
        up(),
        nn.Conv2d(64, 3, 3, padding=1),
        nn.ReLU(),
    )


# --- initialisation from an explicit generator ------------------------------------------------


def seeded(seed: int) -> torch.Generator:
    """A CPU generator for one model's initial weights (never the process-wide one)."""
    return torch.Generator().manual_seed(seed)


def reset_like_pytorch(layer: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's own default initialisation of a Conv/ConvTranspose/Linear layer (the same
    functions, in the same order), drawing from `generator`."""
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        if layer.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def initialise(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every weighted layer in registration order, which is the order PyTorch would have drawn
    them in at construction: `torch.manual_seed(s); Model()` and `build(Model, seeded(s))` agree bit
    for bit on the CPU."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            reset_like_pytorch(layer, generator)
    return model


def build(make: Callable[[], nn.Module], generator: torch.Generator | None) -> nn.Module:
    """A model from `make()`, initialised from `generator`, without touching the process-wide
    generator (layers are made on the meta device, so nothing is drawn twice). None: PyTorch's
    default, from the process-wide generator."""
    if generator is None:
        return make()
    with torch.device("meta"):
        model = make()
    return initialise(model.to_empty(device="cpu"), generator)


class ConvAutoencoder(nn.Module):
    """Images in [0,1], shape (B,3,32,32), to a code of `latent_dim` numbers and back."""

    def __init__(self, latent_dim: int = 1024, leak: float = 0.1, upsample: str = "bilinear"):
        super().__init__()
        self.latent_dim, self.leak, self.upsample = latent_dim, leak, upsample
        self.conv_encoder = conv_encoder(leak)
        self.fc_encoder = nn.Sequential(nn.Linear(FLAT, latent_dim), activation(leak))
        self.fc_decoder = nn.Sequential(nn.Linear(latent_dim, FLAT), activation(leak))
        self.conv_decoder = conv_decoder(leak, upsample)

    @classmethod
    def from_config(cls, cfg: Config, generator: torch.Generator | None = None) -> "ConvAutoencoder":
        return build(lambda: cls(cfg.latent_dim, cfg.leak, cfg.upsample), generator)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_encoder(x)  # (B,3,32,32) -> (B,128,4,4)
        return self.fc_encoder(h.flatten(1))  # (B,2048) -> (B,latent)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = self.fc_decoder(code).view(-1, CODE_CHANNELS, CODE_SIDE, CODE_SIDE)  # -> (B,128,4,4)
        return self.conv_decoder(h)  # -> (B,3,32,32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class Classifier(nn.Module):
    """The autoencoder's encoder with a new linear head: (B,3,32,32) in [0,1] -> (B,10) logits."""

    def __init__(self, latent_dim: int = 1024, leak: float = 0.1, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.latent_dim, self.leak = latent_dim, leak
        self.conv_encoder = conv_encoder(leak)
        self.fc_encoder = nn.Sequential(nn.Linear(FLAT, latent_dim), activation(leak))
        self.head = nn.Linear(latent_dim, num_classes)

    @classmethod
    def from_config(
        cls, cfg: Config, num_classes: int = NUM_CLASSES, generator: torch.Generator | None = None
    ) -> "Classifier":
        return build(lambda: cls(cfg.latent_dim, cfg.leak, num_classes), generator)

    @classmethod
    def from_autoencoder(
        cls, ae: ConvAutoencoder, num_classes: int = NUM_CLASSES, generator: torch.Generator | None = None
    ) -> "Classifier":
        """Encoder weights copied (not shared) from a trained autoencoder; the head is new
        (initialised from `generator`, else from the process-wide one)."""
        with torch.device("meta"):
            clf = cls(ae.latent_dim, ae.leak, num_classes)
        clf.conv_encoder = copy.deepcopy(ae.conv_encoder)
        clf.fc_encoder = copy.deepcopy(ae.fc_encoder)
        clf.head = clf.head.to_empty(device="cpu")
        if generator is None:
            clf.head.reset_parameters()
        else:
            reset_like_pytorch(clf.head, generator)
        return clf

    def new_head(self, generator: torch.Generator) -> "Classifier":
        """Re-initialise the linear head from `generator` (pretrained and scratch share one head)."""
        reset_like_pytorch(self.head, generator)
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_encoder(self.conv_encoder(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))


def first_layer_kernels(model: nn.Module) -> torch.Tensor:
    """The 64 first-layer 3x3 RGB kernels, (64,3,3,3), detached on the CPU in fp32."""
    return model.conv_encoder[0].weight.detach().float().cpu().clone()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_table(model: nn.Module) -> list[dict]:
    """Each layer's block, name, output shape and parameter count for one 3x32x32 input.

    Flatten and unflatten are not layers (they happen in `forward`); they appear as rows
    with block "(forward)" so the table reads like the lecture's.
    """
    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0 and name:

            def hook(mod, _inp, out, name=name):
                rows.append(
                    {
                        "block": name.split(".")[0],
                        "name": name,
                        "layer": _short_repr(mod),
                        "output": tuple(out.shape[1:]),
                        "params": sum(p.numel() for p in mod.parameters()),
                    }
                )

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return _with_reshapes(rows)


def _with_reshapes(rows: list[dict]) -> list[dict]:
    """Insert the flatten/unflatten steps between blocks, where the shape really changes."""
    out: list[dict] = []
    for row in rows:
        if out and out[-1]["block"] == "conv_encoder" and row["block"] == "fc_encoder":
            out.append(
                {"block": "(forward)", "name": "flatten", "layer": f"view(-1, {FLAT})", "output": (FLAT,), "params": 0}
            )
        if out and out[-1]["block"] == "fc_decoder" and row["block"] == "conv_decoder":
            out.append(
                {
                    "block": "(forward)",
                    "name": "unflatten",
                    "layer": f"view(-1, {CODE_CHANNELS}, {CODE_SIDE}, {CODE_SIDE})",
                    "output": (CODE_CHANNELS, CODE_SIDE, CODE_SIDE),
                    "params": 0,
                }
            )
        out.append(row)
    return out


def _short_repr(module: nn.Module) -> str:
    text = repr(module)
    return text if len(text) < 90 else text[:87] + "..."
