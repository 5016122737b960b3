"""What the autoencoder's code learned, measured: the codes of a split, a 2-D map, neighbours,
k-nearest-neighbour accuracy and a linear probe for any features, interpolation between two codes,
decoded random codes, out-of-distribution probes and dead units.

The code is what `ConvAutoencoder.encode` returns. k-NN accuracy: cosine similarity, k = 10, a
majority vote (ties go to the lower class index), in percent, on a fixed class-balanced subset of
min(5,000, the training images) and min(1,000, the test images), seed 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cae.data import balanced_subset
from cae.model import ConvAutoencoder

K, METRIC, SUBSET_SEED = 10, "cosine", 0
TRAIN_SUBSET, TEST_SUBSET = 5000, 1000
ENCODE_MFLOP = 24.0  # one image through the encoder (cae.plan.MFLOP["eval_classifier"])
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
    return FixedSubsets(
        balanced_subset(train_labels, min(TRAIN_SUBSET, len(train_labels)), SUBSET_SEED),
        balanced_subset(test_labels, min(TEST_SUBSET, len(test_labels)), SUBSET_SEED),
    )


def as_unit_floats(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N,3,32,32) -> float in [0,1] on the device."""
    return images.to(device).float().div_(255)


@torch.no_grad()
def codes(model: ConvAutoencoder | nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The code of every image: uint8 (N,3,32,32) -> float (N, latent) on the CPU, in batches.
    For a classifier, its `encode`: the fine-tuned features its head reads."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model.encode(as_unit_floats(images[i : i + EVAL_BATCH], device)).float().cpu()
        for i in range(0, len(images), EVAL_BATCH)
    ]
    return torch.cat(out) if out else torch.zeros(0, model.latent_dim)


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Raw pixels as features: uint8 (N,3,32,32) -> float (N, 3072) in [0,1]."""
    return images.flatten(1).float() / 255


def knn_accuracy(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, k: int = K
) -> float:
    """Percent of test items whose k nearest training items (cosine) vote for their class."""
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    votes = F.one_hot(train_labels[most_similar(test, train, k)], n_classes).sum(1)
    return 100.0 * float((votes.argmax(1) == test_labels).sum()) / max(len(test), 1)


def linear_probe(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, seed: int = 0
) -> float:
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


@torch.no_grad()
def interpolate(
    model: ConvAutoencoder, a: torch.Tensor, b: torch.Tensor, steps: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
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
    return {
        "noise": torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8),
        "flat colour": torch.tensor([200, 60, 40], dtype=torch.uint8).view(3, 1, 1).expand(3, 32, 32).clone(),
        "checkerboard": checker.to(torch.uint8).clone(),
        "gradient": torch.stack([ramp.expand(32, 32), ramp.view(-1, 1).expand(32, 32), (255 - ramp).expand(32, 32)])
        .round()
        .to(torch.uint8),
        "inverted": 255 - example,
    }


@torch.no_grad()
def reconstruction_errors(model: ConvAutoencoder, images: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (pixels in [0,1]): uint8 (N,3,32,32) -> (N,)."""
    model.eval()
    device = next(model.parameters()).device
    x = as_unit_floats(images, device)
    return (model(x) - x).pow(2).flatten(1).mean(1).cpu()


# Activation histograms share one range so that runs (and leak values) can be compared.
HISTOGRAM_RANGE, HISTOGRAM_BINS = (-1.0, 3.0), 80
ENCODER_LAYERS = {
    "conv_encoder.1": "conv 1 (64 channels)",
    "conv_encoder.3": "conv 2 (128 channels)",
    "conv_encoder.5": "conv 3 (128 channels)",
    "conv_encoder.7": "conv 4 (128 channels)",
    "fc_encoder.1": "code (linear units)",
}


@torch.no_grad()
def layer_activity(model: ConvAutoencoder, images: torch.Tensor) -> dict[str, dict]:
    """Per encoder activation layer (`ENCODER_LAYERS`, after each LeakyReLU): "dead", the share of
    units (conv channels, linear units) whose activation is never above zero on `images`;
    "negative", the share of all activation values at or below zero; "counts", a histogram of all
    activation values over `HISTOGRAM_RANGE` in `HISTOGRAM_BINS` bins (values outside it are
    counted in the end bins)."""
    model.eval()
    device = next(model.parameters()).device
    modules = dict(model.named_modules())
    lo, hi = HISTOGRAM_RANGE
    seen: dict[str, dict] = {
        name: {"peak": None, "counts": torch.zeros(HISTOGRAM_BINS), "negative": 0, "total": 0}
        for name in ENCODER_LAYERS
    }

    def keep(name: str, out: torch.Tensor) -> None:
        out = out.float()
        record = seen[name]
        peak = out.amax(dim=(0, 2, 3)) if out.dim() == 4 else out.amax(dim=0)
        record["peak"] = peak if record["peak"] is None else torch.maximum(record["peak"], peak)
        record["counts"] += torch.histc(out.clamp(lo, hi).cpu(), HISTOGRAM_BINS, lo, hi)
        record["negative"] += int((out <= 0).sum())
        record["total"] += out.numel()

    hooks = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: keep(name, out)) for name in ENCODER_LAYERS
    ]
    try:
        for start in range(0, len(images), EVAL_BATCH):
            model.encode(as_unit_floats(images[start : start + EVAL_BATCH], device))
    finally:
        for hook in hooks:
            hook.remove()
    return {
        name: {
            "dead": float((r["peak"] <= 0).float().mean()),
            "negative": r["negative"] / max(r["total"], 1),
            "counts": r["counts"].tolist(),
        }
        for name, r in seen.items()
        if r["peak"] is not None
    }


def dead_units(model: ConvAutoencoder, images: torch.Tensor) -> dict[str, float]:
    """Per encoder layer, the share of units never above zero on `images` (see `layer_activity`)."""
    return {name: layer["dead"] for name, layer in layer_activity(model, images).items()}


@dataclass
class RepresentationProbe:
    """The k-NN accuracy of a model's code on one experiment's fixed subsets (drawn from its own
    training and test images), measured after every autoencoder epoch."""

    train_index: torch.Tensor  # into the dataset's training split
    test_index: torch.Tensor  # into its test split
    train_images: torch.Tensor  # uint8 (N,3,32,32) on the CPU
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @classmethod
    def of(cls, dataset, train_idx: torch.Tensor, test_idx: torch.Tensor) -> "RepresentationProbe":
        chosen = representation_subsets(dataset.train.labels[train_idx], dataset.test.labels[test_idx])
        train_index, test_index = train_idx[chosen.train], test_idx[chosen.test]
        return cls(
            train_index,
            test_index,
            dataset.train.images[train_index],
            dataset.train.labels[train_index],
            dataset.test.images[test_index],
            dataset.test.labels[test_index],
        )

    def work(self) -> float:
        """MFLOP one `knn` spends: every probe image through the encoder (as cae.plan counts it)."""
        return (len(self.train_labels) + len(self.test_labels)) * ENCODE_MFLOP

    def knn(self, model: ConvAutoencoder) -> float:
        return knn_accuracy(
            codes(model, self.train_images), self.train_labels, codes(model, self.test_images), self.test_labels
        )

    def scores(self, features: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """{"knn", "probe"}: k-NN and linear-probe test accuracy of a feature function."""
        train, test = features(self.train_images), features(self.test_images)
        return {
            "knn": knn_accuracy(train, self.train_labels, test, self.test_labels),
            "probe": linear_probe(train, self.train_labels, test, self.test_labels),
        }

    def summary(self, initial: ConvAutoencoder) -> dict:
        """metrics["representation"]: the definition, and the pixel and initial-encoder baselines."""
        return {
            "k": K,
            "metric": METRIC,
            "train_size": len(self.train_labels),
            "test_size": len(self.test_labels),
            "seed": SUBSET_SEED,
            "pixels_knn": knn_accuracy(
                pixels(self.train_images), self.train_labels, pixels(self.test_images), self.test_labels
            ),
            "initial_knn": self.knn(initial),
        }


# --- what the Latent space page draws -------------------------------------------------------

MAP_POINTS, NEIGHBOURS, RANDOM_CODES = 2000, 8, 16


def feature_functions(
    autoencoder: ConvAutoencoder, initial: ConvAutoencoder, classifier: nn.Module | None
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The features the page compares: raw pixels, the initial (random) encoder's code, the trained
    code, and the fine-tuned classifier's features (what its head reads), when there is one."""
    features = {"pixels": pixels, "initial": lambda x: codes(initial, x), "code": lambda x: codes(autoencoder, x)}
    if classifier is not None:
        features["finetuned"] = lambda x: codes(classifier, x)
    return features


def quality(probe: RepresentationProbe, features: dict[str, Callable]) -> dict:
    """k-NN and linear-probe accuracy of each feature function on the probe's fixed subsets."""
    return {
        "train_size": len(probe.train_labels),
        "test_size": len(probe.test_labels),
        "scores": {name: probe.scores(f) for name, f in features.items()},
    }


@torch.no_grad()
def explore(model: ConvAutoencoder, dataset, probe: RepresentationProbe) -> dict:
    """The map and what surrounds it, for one autoencoder on one dataset, as tensors and plain values:

    "index" (test images on the map, at most `MAP_POINTS`, class-balanced), "labels", "xy" (their 2-D
    PCA coordinates), "mean"/"axes" (the projection, to place a new image without re-fitting),
    "explained" (share of the codes' variance the two axes show), "code_neighbours" and
    "pixel_neighbours" (for each map image, the `NEIGHBOURS` most similar of the probe's training
    images, as indices into the training split), "random" (decoded random codes, uint8),
    "errors" (each map image's reconstruction error), "activity" (`layer_activity` on the probe's
    test images)."""
    model.eval()
    chosen = balanced_subset(probe.test_labels, min(MAP_POINTS, len(probe.test_labels)), SUBSET_SEED)
    index, images = probe.test_index[chosen], probe.test_images[chosen]
    pool_codes, map_codes = codes(model, probe.train_images), codes(model, images)
    projection = Projection.fit(map_codes)
    xy = projection(map_codes)
    total = (map_codes - map_codes.mean(0)).pow(2).sum(1).mean()
    return {
        "index": index,
        "labels": probe.test_labels[chosen],
        "xy": xy,
        "mean": projection.mean,
        "axes": projection.axes,
        "explained": float(xy.var(0, correction=0).sum() / total.clamp(min=1e-12)),
        "code_neighbours": probe.train_index[most_similar(map_codes, pool_codes)],
        "pixel_neighbours": probe.train_index[most_similar(pixels(images), pixels(probe.train_images))],
        "random": (decode_random_codes(model, pool_codes, RANDOM_CODES) * 255).round().to(torch.uint8),
        "errors": reconstruction_errors(model, images),
        "activity": layer_activity(model, probe.test_images),
    }


def most_similar(queries: torch.Tensor, pool: torch.Tensor, k: int = NEIGHBOURS) -> torch.Tensor:
    """For every query row, the indices of the k most cosine-similar pool rows: (N, k)."""
    a, b = F.normalize(queries.float(), dim=1), F.normalize(pool.float(), dim=1)
    return torch.cat(
        [(a[i : i + EVAL_BATCH] @ b.T).topk(min(k, len(b)), dim=1).indices for i in range(0, len(a), EVAL_BATCH)]
    )
