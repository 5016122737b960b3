"""What the autoencoder's code learned, measured: the codes of a split, a 2-D map, neighbours,
k-nearest-neighbour accuracy and a linear probe for any features, interpolation between two codes,
decoded random codes, out-of-distribution probes and dead units.

The code is what `ConvAutoencoder.encode` returns. k-NN accuracy: cosine similarity, k = 10, a
majority vote (ties go to the lower class index), in percent, on a fixed class-balanced subset of
min(5,000, the training images) and min(1,000, the test images), seed 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cae.data import balanced_subset
from cae.model import ConvAutoencoder

K, METRIC, SUBSET_SEED = 10, "cosine", 0
TRAIN_SUBSET, TEST_SUBSET = 5000, 1000
EVAL_BATCH = 1000
# The linear probe's fixed recipe: standardised features, full-batch Adam, weight decay, a seed.
PROBE_STEPS, PROBE_LR, PROBE_WEIGHT_DECAY = 300, 1e-2, 1e-4


@dataclass
class FixedSubsets:
    """The fixed images a representation is measured on: indices into the train and test splits."""

    train: torch.Tensor
    test: torch.Tensor


def representation_subsets(train_labels: torch.Tensor, test_labels: torch.Tensor) -> FixedSubsets:
    """Class-balanced, seeded: the same images for every run on the same data."""
    return FixedSubsets(balanced_subset(train_labels, min(TRAIN_SUBSET, len(train_labels)), SUBSET_SEED),
                   balanced_subset(test_labels, min(TEST_SUBSET, len(test_labels)), SUBSET_SEED))


def as_unit_floats(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N,3,32,32) -> float in [0,1] on the device."""
    return images.to(device).float().div_(255)


@torch.no_grad()
def codes(model: ConvAutoencoder | nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The code of every image: uint8 (N,3,32,32) -> float (N, latent) on the CPU, in batches.
    For a classifier, its `encode`: the fine-tuned features its head reads."""
    model.eval()
    device = next(model.parameters()).device
    out = [model.encode(as_unit_floats(images[i:i + EVAL_BATCH], device)).float().cpu()
           for i in range(0, len(images), EVAL_BATCH)]
    return torch.cat(out) if out else torch.zeros(0, model.latent_dim)


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Raw pixels as features: uint8 (N,3,32,32) -> float (N, 3072) in [0,1]."""
    return images.flatten(1).float() / 255


def knn_accuracy(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
                 test_labels: torch.Tensor, k: int = K) -> float:
    """Percent of test items whose k nearest training items (cosine) vote for their class."""
    a, b = F.normalize(test.float(), dim=1), F.normalize(train.float(), dim=1)
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    correct = 0
    for start in range(0, len(a), EVAL_BATCH):
        nearest = (a[start:start + EVAL_BATCH] @ b.T).topk(min(k, len(b)), dim=1).indices
        votes = F.one_hot(train_labels[nearest], n_classes).sum(1)
        correct += int((votes.argmax(1) == test_labels[start:start + EVAL_BATCH]).sum())
    return 100.0 * correct / max(len(a), 1)


def linear_probe(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
                 test_labels: torch.Tensor, seed: int = 0) -> float:
    """Test accuracy (percent) of a linear layer trained on standardised frozen features: full-batch
    Adam, lr 1e-2, weight decay 1e-4, 300 steps, initialised from `seed`."""
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    x, t = (train - mean) / std, (test - mean) / std
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        bound = 1 / x.shape[1] ** 0.5
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.zero_()
    optimizer = torch.optim.Adam(head.parameters(), lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    for _ in range(PROBE_STEPS):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(head(x), train_labels).backward()
        optimizer.step()
    with torch.no_grad():
        return 100.0 * float((head(t).argmax(1) == test_labels).float().mean())


@dataclass
class Projection:
    """A 2-D PCA map fitted once; new points are placed with the same projection (no re-fit)."""

    mean: torch.Tensor
    axes: torch.Tensor  # (latent, 2)

    @classmethod
    def fit(cls, features: torch.Tensor) -> "Projection":
        mean = features.mean(0)
        _, _, v = torch.pca_lowrank(features - mean, q=2, center=False, niter=6)
        return cls(mean, v[:, :2])

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) @ self.axes


def nearest(query: torch.Tensor, features: torch.Tensor, k: int = 8, exclude: int | None = None) -> list[int]:
    """Indices of the k items most cosine-similar to `query` (optionally leaving one index out)."""
    sims = F.normalize(features.float(), dim=1) @ F.normalize(query.float().flatten(), dim=0)
    if exclude is not None:
        sims[exclude] = -2
    return sims.topk(min(k, len(sims))).indices.tolist()


@torch.no_grad()
def interpolate(model: ConvAutoencoder, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 images -> (decoded code interpolation, pixel cross-fade), each (steps,3,32,32) in [0,1]."""
    model.eval()
    device = next(model.parameters()).device
    pair = as_unit_floats(torch.stack([a, b]), device)
    za, zb = model.encode(pair)
    w = torch.linspace(0, 1, steps, device=device).view(-1, 1)
    decoded = model.decode((1 - w) * za + w * zb).clamp(0, 1).cpu()
    fade = ((1 - w.view(-1, 1, 1, 1)) * pair[0] + w.view(-1, 1, 1, 1) * pair[1]).cpu()
    return decoded, fade


@torch.no_grad()
def decode_random_codes(model: ConvAutoencoder, code_sample: torch.Tensor, n: int = 16, seed: int = 0) -> torch.Tensor:
    """Codes drawn from a Gaussian with the codes' own mean and covariance, decoded: (n,3,32,32)."""
    mean = code_sample.mean(0)
    centred = code_sample - mean
    cov = centred.T @ centred / max(len(code_sample) - 1, 1)
    scale = torch.linalg.cholesky(cov + 1e-4 * torch.eye(len(mean)))
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    return model.decode((mean + z @ scale.T).to(device)).clamp(0, 1).cpu()


def ood_probes(example: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Images unlike the training data, uint8 (3,32,32): noise, a flat colour, a checkerboard, a
    gradient, and `example` (a test image) inverted."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 255, 32)
    checker = ((torch.arange(32).view(-1, 1) // 4 + torch.arange(32) // 4) % 2 * 255).expand(3, 32, 32)
    return {"noise": torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8),
            "flat colour": torch.tensor([200, 60, 40], dtype=torch.uint8).view(3, 1, 1).expand(3, 32, 32).clone(),
            "checkerboard": checker.to(torch.uint8).clone(),
            "gradient": torch.stack([ramp.expand(32, 32), ramp.view(-1, 1).expand(32, 32),
                                     (255 - ramp).expand(32, 32)]).round().to(torch.uint8),
            "inverted": 255 - example}


@torch.no_grad()
def reconstruction_errors(model: ConvAutoencoder, images: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (pixels in [0,1]): uint8 (N,3,32,32) -> (N,)."""
    model.eval()
    device = next(model.parameters()).device
    x = as_unit_floats(images, device)
    return (model(x) - x).pow(2).flatten(1).mean(1).cpu()


@torch.no_grad()
def dead_units(model: ConvAutoencoder, images: torch.Tensor) -> dict[str, float]:
    """Per encoder layer, the share of units (conv channels, linear units) whose activation is never
    above zero on `images`."""
    model.eval()
    device = next(model.parameters()).device
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    layers = [(f"conv_encoder.{i}", m) for i, m in enumerate(model.conv_encoder) if not isinstance(m, nn.Conv2d)]
    layers += [("fc_encoder.1", model.fc_encoder[1])]
    for name, module in layers:
        def keep(_m, _i, out, name=name):
            peak = out.amax(dim=(0, 2, 3)) if out.dim() == 4 else out.amax(dim=0)
            seen[name] = torch.maximum(seen[name], peak) if name in seen else peak
        hooks.append(module.register_forward_hook(keep))
    try:
        for start in range(0, len(images), EVAL_BATCH):
            model.encode(as_unit_floats(images[start:start + EVAL_BATCH], device))
    finally:
        for h in hooks:
            h.remove()
    return {name: float((peak <= 0).float().mean()) for name, peak in seen.items()}


@dataclass
class RepresentationProbe:
    """The k-NN accuracy of a model's code on one experiment's fixed subsets (drawn from its own
    training and test images), measured after every autoencoder epoch."""

    train_images: torch.Tensor  # uint8 (N,3,32,32) on the CPU
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @classmethod
    def of(cls, dataset, train_idx: torch.Tensor, test_idx: torch.Tensor) -> "RepresentationProbe":
        train_labels, test_labels = dataset.train.labels[train_idx], dataset.test.labels[test_idx]
        chosen = representation_subsets(train_labels, test_labels)
        return cls(dataset.train.images[train_idx][chosen.train], train_labels[chosen.train],
                   dataset.test.images[test_idx][chosen.test], test_labels[chosen.test])

    def knn(self, model: ConvAutoencoder) -> float:
        return knn_accuracy(codes(model, self.train_images), self.train_labels,
                            codes(model, self.test_images), self.test_labels)

    def summary(self, initial: ConvAutoencoder) -> dict:
        """metrics["representation"]: the definition, and the pixel and initial-encoder baselines."""
        return {"k": K, "metric": METRIC, "train_size": len(self.train_labels), "test_size": len(self.test_labels),
                "seed": SUBSET_SEED,
                "pixels_knn": knn_accuracy(pixels(self.train_images), self.train_labels,
                                           pixels(self.test_images), self.test_labels),
                "initial_knn": self.knn(initial)}
