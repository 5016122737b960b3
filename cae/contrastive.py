"""The contrastive objective (SimCLR, Chen et al. 2020) for the lecture's encoder: no decoder, no
pixels to rebuild. Each training image becomes two views by random augmentation; a small projection
head maps each view's code to a vector, and the NT-Xent loss asks each view to pick its twin out of
the batch's other 2B - 2 views. What it rewards is a code that stays the same under crops, flips and
colour changes and differs between images: invariances, not pixels.

The views are made on the device for a whole batch at once (one affine grid for the crops and
flips, per-image factors for the colours); their random draws come from a generator of their own
(the run's seed + VIEW_SEED), as the reconstruction options' do.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2.functional import rgb_to_grayscale

from cae.config import Config, optimiser_steps
from cae.data import batches
from cae.devices import autocast
from cae.model import ConvAutoencoder, build, seeded
from cae.plan import MFLOP

TEMPERATURE = 0.5  # NT-Xent's temperature: SimCLR's value for CIFAR-10
PROJECTION = (512, 128)  # the projection head's hidden and output sizes
VIEW_SEED = 104_729  # added to the run's seed for the views' generator
HEAD_SEED = 15_485_863  # added to the run's seed for the projection head's initial weights
AREA = (0.2, 1.0)  # a crop keeps this share of the image's area
RATIO = (3 / 4, 4 / 3)  # and this aspect ratio
JITTER = 0.4  # brightness, contrast and saturation factors drawn from 1 ± JITTER
P_JITTER, P_GRAY = 0.8, 0.2  # the chance each view gets colour jitter, and is made grey


NO_RECONSTRUCTIONS = (
    "This run was pretrained with the contrastive objective: its decoder was never trained, so there are no "
    "reconstructions or decoded codes to show."
)


def rebuilds(config: dict) -> bool:
    """Whether a run's config (its metrics' "config") trained the decoder: every objective but the
    contrastive one."""
    return config.get("objective", "reconstruction") != "contrastive"


def projection_head(latent_dim: int, seed: int) -> nn.Sequential:
    """code -> PROJECTION[0] -> batch norm -> ReLU -> PROJECTION[1], as SimCLR's, trained with the
    encoder and then discarded. Without the batch norm the loss falls more slowly on the lecture's
    encoder, which has none: 5.43 against 5.25 after 3 epochs on 5,000 CIFAR-10 images at batch 256
    (chance: ln 511 = 6.24)."""
    hidden, out = PROJECTION
    head = build(
        lambda: nn.Sequential(nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out)),
        seeded(seed + HEAD_SEED),
    )
    head[1].reset_parameters()  # `build` draws the linear layers; the batch norm starts at 1 and 0, drawing nothing
    return head


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def crops_and_flips(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of (B,3,H,W) `x` cropped at its own random size, shape and place (AREA, RATIO),
    resized back to H×W (bilinear), and flipped left-right with probability 1/2."""
    b = x.shape[0]
    area = _uniform(b, *AREA, generator)
    ratio = torch.exp(_uniform(b, math.log(RATIO[0]), math.log(RATIO[1]), generator))
    width, height = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    left, top = (1 - width) * torch.rand(b, generator=generator), (1 - height) * torch.rand(b, generator=generator)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = width * flip, height  # grid coordinates run from -1 to 1
    theta[:, 0, 2], theta[:, 1, 2] = 2 * left + width - 1, 2 * top + height - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colours(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image: with P_JITTER, brightness, contrast and saturation each scaled by a factor from
    1 ± JITTER; then with P_GRAY, grey. Pixels stay in [0, 1]."""
    b = x.shape[0]

    def factors() -> torch.Tensor:
        jittered = torch.rand(b, generator=generator) < P_JITTER
        drawn = _uniform(b, 1 - JITTER, 1 + JITTER, generator)
        return torch.where(jittered, drawn, 1.0).to(x.device, x.dtype).view(b, 1, 1, 1)

    brightness, contrast, saturation = factors(), factors(), factors()
    x = (x * brightness).clamp(0, 1)
    mean = rgb_to_grayscale(x).mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp(0, 1)
    gray = rgb_to_grayscale(x)
    x = ((x - gray) * saturation + gray).clamp(0, 1)
    grey = (torch.rand(b, generator=generator) < P_GRAY).to(x.device).view(b, 1, 1, 1)
    return torch.where(grey, rgb_to_grayscale(x).expand_as(x), x)


def view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random view of each image in (B,3,H,W) `x` in [0, 1]."""
    return colours(crops_and_flips(x, generator), generator).contiguous(memory_format=torch.channels_last)


def two_views(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views of every image (drawn in order: the first, then the second)."""
    return view(x, generator), view(x, generator)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """SimCLR's NT-Xent loss for B pairs of projections: each of the 2B vectors (L2-normalised) must
    pick its twin by cosine similarity / temperature among the other 2B - 1 (cross-entropy, mean)."""
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    twins = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, twins)


def contrastive_step(
    model: ConvAutoencoder,
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    generator: torch.Generator,
    precision: str,
) -> torch.Tensor:
    """Two views of the batch, their projections (under autocast), NT-Xent in fp32, one Adam step."""
    v1, v2 = two_views(x, generator)
    with autocast(x.device, precision):
        z = head(model.encode(torch.cat([v1, v2])))
    z1, z2 = z.float().chunk(2)
    loss = nt_xent(z1, z2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_contrastive(
    model: ConvAutoencoder, train_images: torch.Tensor, _test, cfg: Config, precision: str, reporter, probe=None
) -> list[dict]:
    """`cfg.ae_epochs` epochs of NT-Xent + Adam (the autoencoder's learning rate and batch size) on
    the encoder; the decoder is left as it was built (no test MSE: the test images serve the probe only).
    History rows {epoch, train_loss, seconds}, and
    `knn_acc` when a `probe` is given."""
    head = projection_head(cfg.latent_dim, cfg.seed).to(train_images.device)
    encoder = [p for name, p in model.named_parameters() if name.startswith(("conv_encoder", "fc_encoder"))]
    optimizer = torch.optim.Adam(encoder + list(head.parameters()), lr=cfg.lr)
    order, views = torch.Generator().manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + VIEW_SEED)
    no_labels = torch.zeros(train_images.shape[0], dtype=torch.int64, device=train_images.device)
    steps, history = optimiser_steps(train_images.shape[0], cfg.batch_size), []
    for epoch in range(1, cfg.ae_epochs + 1):
        t0, total, seen = time.perf_counter(), torch.zeros((), device=train_images.device), 0
        model.train()
        for b, (x, _) in enumerate(batches(train_images, no_labels, cfg.batch_size, order, cfg.flip), start=1):
            reporter.check()
            total += contrastive_step(model, head, optimizer, x, views, precision) * len(x)
            seen += len(x)
            reporter.done_work += len(x) * MFLOP["contrastive"]
            reporter.batch("autoencoder", epoch, cfg.ae_epochs, b, steps, total.item() / seen)
        history.append({"epoch": epoch, "train_loss": total.item() / max(seen, 1), "seconds": time.perf_counter() - t0})
        if probe is not None:
            history[-1]["knn_acc"] = probe.knn(model)
            reporter.done_work += probe.work()
        reporter.epoch("autoencoder", history[-1], model)
    return history
