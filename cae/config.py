"""One dataclass for a whole experiment: autoencoder, fine-tuning and the scratch baseline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import asdict, dataclass

UPSAMPLE_MODES = ("bilinear", "nearest", "transpose")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Fields that decide the autoencoder's weights (with the dataset fingerprint and the resolved
# precision). A request that matches these reuses an existing autoencoder instead of retraining.
AUTOENCODER_FIELDS = (
    "latent_dim",
    "leak",
    "upsample",
    "ae_epochs",
    "batch_size",
    "lr",
    "limit",
    "precision",
    "seed",
    "flip",
)
# Autoencoder options added after runs were shipped (cae/objectives.py): in `autoencoder_key` and
# `run_key` only when they differ from their default, so every existing key stays as it is.
LATER_AUTOENCODER_FIELDS = {"noise": 0.0, "mask": 0.0, "augment": False}
# Fields that never change a result.
COSMETIC_FIELDS = ("device",)
# Fields added after runs were shipped: they enter a key only when they differ from their default,
# so every existing run (the shipped ones too) keeps its key.
LATER_FIELDS = {
    "clf_batch_size": None,
    "encoder_from": None,
    "label_count": None,
    "clf_steps": None,
    "clf_seed": None,
    "scratch_seed": None,
    **LATER_AUTOENCODER_FIELDS,
}

# Choice lists shared by the command line and the pages.
LATENT_SIZES = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
LEARNING_RATES = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)
# Fewer optimiser steps per epoch than this and training barely moves: warn.
FEW_STEPS = 5


class ConfigError(ValueError):
    """A setting a user chose is out of range; the message says which and what is allowed."""


@dataclass(frozen=True)
class Config:
    """Hyperparameters of one experiment; defaults are the lecture's."""

    # model
    latent_dim: int = 1024
    leak: float = 0.1  # LeakyReLU negative slope; 0 is plain ReLU
    upsample: str = "bilinear"  # bilinear | nearest | transpose
    # autoencoder training (unsupervised, MSE + Adam)
    ae_epochs: int = 5
    batch_size: int = 2000
    lr: float = 1e-3
    # classifier fine-tuning (cross-entropy + Adam)
    clf_epochs: int = 5
    clf_lr: float = 1e-3
    clf_batch_size: int | None = None  # the classifier's own batch size; None: batch_size
    label_fraction: float = 1.0  # share of training labels the classifier may see
    label_count: int | None = None  # or this many labelled images (class-balanced); None: label_fraction
    clf_steps: int | None = None  # train the classifiers for exactly this many optimiser steps
    clf_seed: int | None = None  # the labelled draw, head and batch order; None: seed (the
    # autoencoder's seed stays `seed`, so every clf_seed reuses it)
    scratch_seed: int | None = None  # the scratch baseline's initial encoder; None: seed (the
    # autoencoder's own initial weights)
    freeze_encoder: bool = False  # True: linear probe on frozen features
    scratch_baseline: bool = True  # also train the same classifier from random init
    # transfer: the autoencoder key of a run whose encoder this run starts from (no autoencoder
    # training then); that run may have been trained on other data
    encoder_from: str | None = None
    # data
    limit: int | None = None  # class-balanced training subset
    test_limit: int | None = None  # class-balanced test subset
    flip: bool = False  # random horizontal flips, done on the device
    # what the autoencoder rebuilds (cae/objectives.py): the clean image from an input with noise of
    # this std, or with this fraction of 4x4 patches hidden; `augment`: random 4-pixel-padded crops
    noise: float = 0.0
    mask: float = 0.0
    augment: bool = False
    # execution
    precision: str = "auto"  # auto | fp32 | bf16
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        """Rebuild from `to_dict()` output; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown config field(s): {', '.join(unknown)}.")
        return cls(**values)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg: Config) -> None:
    """Raise ConfigError with one sentence for the first out-of-range field."""
    _check(
        _is_int(cfg.latent_dim) and 2 <= cfg.latent_dim <= 4096,
        f"latent_dim must be a whole number from 2 to 4096, got {cfg.latent_dim!r}.",
    )
    _check(
        isinstance(cfg.leak, (int, float)) and 0 <= cfg.leak <= 1,
        f"leak (the LeakyReLU slope) must be between 0 and 1, got {cfg.leak!r}.",
    )
    _check(
        cfg.upsample in UPSAMPLE_MODES, f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {cfg.upsample!r}."
    )
    _check(
        _is_int(cfg.ae_epochs) and 0 <= cfg.ae_epochs <= 1000,
        f"ae_epochs must be a whole number from 0 to 1000, got {cfg.ae_epochs!r}.",
    )
    _check(
        _is_int(cfg.clf_epochs) and 0 <= cfg.clf_epochs <= 1000,
        f"clf_epochs must be a whole number from 0 to 1000, got {cfg.clf_epochs!r}.",
    )
    _check(
        _is_int(cfg.batch_size) and 1 <= cfg.batch_size <= 100_000,
        f"batch_size must be a whole number from 1 to 100000, got {cfg.batch_size!r}.",
    )
    _check(
        cfg.clf_batch_size is None or (_is_int(cfg.clf_batch_size) and 1 <= cfg.clf_batch_size <= 100_000),
        f"clf_batch_size must be empty (the batch size) or a whole number from 1 to 100000, "
        f"got {cfg.clf_batch_size!r}.",
    )
    _check(
        cfg.encoder_from is None
        or (isinstance(cfg.encoder_from, str) and re.fullmatch(r"[0-9a-f]{64}", cfg.encoder_from) is not None),
        f"encoder_from must be an autoencoder key (64 hex digits), got {cfg.encoder_from!r}.",
    )
    for name in ("lr", "clf_lr"):
        value = getattr(cfg, name)
        _check(
            isinstance(value, (int, float)) and 0 < value <= 1,
            f"{name} (learning rate) must be above 0 and at most 1, got {value!r}.",
        )
    _check(
        isinstance(cfg.label_fraction, (int, float)) and 0 < cfg.label_fraction <= 1,
        f"label_fraction must be above 0 and at most 1 (1 = all labels), got {cfg.label_fraction!r}.",
    )
    for name, low in (("label_count", 1), ("clf_steps", 1), ("clf_seed", 0), ("scratch_seed", 0)):
        value = getattr(cfg, name)
        _check(
            value is None or (_is_int(value) and low <= value < 2**31),
            f"{name} must be empty or a whole number of at least {low}, got {value!r}.",
        )
    for name in ("limit", "test_limit"):
        value = getattr(cfg, name)
        _check(
            value is None or (_is_int(value) and value >= 10),
            f"{name} must be empty (all images) or a whole number of at least 10, got {value!r}.",
        )
    _check(cfg.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}.")
    _check(
        _is_int(cfg.seed) and 0 <= cfg.seed < 2**31,
        f"seed must be a whole number from 0 to 2147483647, got {cfg.seed!r}.",
    )
    _check(cfg.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}.")
    _check(
        isinstance(cfg.noise, (int, float)) and not isinstance(cfg.noise, bool) and 0 <= cfg.noise <= 1,
        f"noise (the input noise's standard deviation, pixels in 0-1) must be from 0 to 1, got {cfg.noise!r}.",
    )
    _check(
        isinstance(cfg.mask, (int, float)) and not isinstance(cfg.mask, bool) and 0 <= cfg.mask <= 0.9,
        f"mask (the share of 4x4 patches hidden) must be from 0 to 0.9, got {cfg.mask!r}.",
    )
    for name in ("freeze_encoder", "scratch_baseline", "flip", "augment"):
        _check(isinstance(getattr(cfg, name), bool), f"{name} must be true or false.")


def _digest(values: dict) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def autoencoder_key(cfg: Config, precision: str, fingerprint: str) -> str:
    """Hash of everything that decides the autoencoder's weights; for a transfer run, the key of
    the autoencoder it starts from."""
    if cfg.encoder_from:
        return cfg.encoder_from
    values = {name: getattr(cfg, name) for name in AUTOENCODER_FIELDS}
    values.update({k: getattr(cfg, k) for k, default in LATER_AUTOENCODER_FIELDS.items() if getattr(cfg, k) != default})
    values.update(precision=precision, dataset=fingerprint)
    return _digest(values)


def run_key(cfg: Config, precision: str, fingerprint: str) -> str:
    """Hash of everything that decides a run's results (all fields but the cosmetic ones; later
    fields only when they differ from their default)."""
    values = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in COSMETIC_FIELDS and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
    }
    values.update(precision=precision, dataset=fingerprint)
    return _digest(values)


# --- presets: settings that fit the data in use ---------------------------------------------

PRESETS: dict[str, dict] = {
    "Lecture's settings": {},
    # Small data: an epoch at batch 2000 on 1,000 images is one optimiser step; batch 100 gives
    # ten, and more epochs make up for the small set (measured on the sample: docs/RESULTS.md).
    "Small data": {"batch_size": 100, "ae_epochs": 20, "clf_epochs": 10, "scratch_baseline": True},
    # Quick look: a few minutes' worth of the lecture on a CPU, on a 5,000-image subset.
    "Quick look": {"batch_size": 250, "ae_epochs": 3, "clf_epochs": 2, "limit": 5000},
}
LECTURE, SMALL_DATA, QUICK_LOOK = PRESETS


def preset_config(name: str, **changes) -> Config:
    """The lecture's defaults with a preset's values (and any further changes) on top."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return Config(**{**PRESETS[name], **changes})


# Lecture mode's live run: the Small data recipe on at most this many class-balanced training and
# test images, so that it learns visibly within a minute on one CPU core (docs/RESULTS.md: 43 s on
# CIFAR-10 cut to 1,000 + 1,000 images; 2,000 training images took 71 s).
LIVE_LIMIT, LIVE_TEST_LIMIT = 1000, 1000


def live_config(n_train: int, n_test: int) -> Config:
    """The run Lecture mode trains live: the Small data recipe cut to 10 autoencoder epochs, without
    the scratch baseline, on the data in use cut to LIVE_LIMIT training and LIVE_TEST_LIMIT test
    images where it is larger (34.5 s on the sample with one thread; the full 20 epochs took 58.4 s)."""
    return preset_config(
        SMALL_DATA,
        ae_epochs=10,
        scratch_baseline=False,
        limit=LIVE_LIMIT if n_train > LIVE_LIMIT else None,
        test_limit=LIVE_TEST_LIMIT if n_test > LIVE_TEST_LIMIT else None,
    )


def ceil_div(a: int, b: int) -> int:
    """a / b rounded up, in integers (the one spelling of it in the library)."""
    return -(-a // b)


def optimiser_steps(n_images: int, batch_size: int) -> int:
    """Optimiser steps in one epoch over `n_images` (the last batch may be smaller)."""
    return ceil_div(n_images, batch_size) if n_images > 0 else 0


def fitting_batch_size(n_images: int, steps: int = 10) -> int:
    """The lecture's batch size, or smaller so that an epoch over `n_images` is at least `steps`
    optimiser steps."""
    return max(1, min(Config().batch_size, n_images // steps))


def preset_for(n_train: int) -> str:
    """The preset that fits a training set: "Small data" when an epoch at the lecture's batch size
    would be fewer than 10 optimiser steps, else the lecture's settings."""
    return SMALL_DATA if optimiser_steps(n_train, Config().batch_size) < 10 else LECTURE


def labelled_count(cfg: Config, n_train: int, n_classes: int) -> int:
    """How many training images the classifier sees labelled: `label_count`, else `label_fraction`
    of them (at least one per class)."""
    wanted = cfg.label_count if cfg.label_count is not None else round(cfg.label_fraction * n_train)
    return min(n_train, max(n_classes, wanted))


def few_steps_warning(cfg: Config, n_train: int, n_classes: int = 1, classifier_only: bool = False) -> str | None:
    """A sentence when an epoch would be fewer than FEW_STEPS optimiser steps, else None; with
    `classifier_only`, about the classifier (a form that reuses an autoencoder)."""
    n_train = min(n_train, cfg.limit or n_train)
    phases = []
    if cfg.ae_epochs and not cfg.encoder_from and not classifier_only:
        phases.append(("autoencoder", n_train, cfg.batch_size))
    if cfg.clf_epochs or cfg.clf_steps:
        phases.append(("classifier", labelled_count(cfg, n_train, n_classes), cfg.clf_batch_size or cfg.batch_size))
    for phase, n, batch in phases:
        steps = optimiser_steps(n, batch)
        if steps < FEW_STEPS:
            article = "An" if phase[0] in "aeiou" else "A"
            return (
                f"{article} {phase} epoch on {n:,} images at batch size {batch:,} is only {steps} "
                f"optimiser step{'s' if steps != 1 else ''}; training will barely move. Use a "
                f'smaller batch size (e.g. {max(1, n // 10):,}) or the "{SMALL_DATA}" preset.'
            )
    return None
