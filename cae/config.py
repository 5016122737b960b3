"""One dataclass for a whole experiment: autoencoder, fine-tuning and the scratch baseline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, asdict

UPSAMPLE_MODES = ("bilinear", "nearest", "transpose")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Fields that decide the autoencoder's weights (with the dataset fingerprint and the resolved
# precision). A request that matches these reuses an existing autoencoder instead of retraining.
AUTOENCODER_FIELDS = ("latent_dim", "leak", "upsample", "ae_epochs", "batch_size", "lr",
                      "limit", "precision", "seed", "flip")
# Fields that never change a result.
COSMETIC_FIELDS = ("device",)


class ConfigError(ValueError):
    """A setting a user chose is out of range; the message says which and what is allowed."""


@dataclass(frozen=True)
class Config:
    """Hyperparameters of one experiment; defaults are the lecture's."""

    # model
    latent_dim: int = 1024
    leak: float = 0.1            # LeakyReLU negative slope; 0 is plain ReLU
    upsample: str = "bilinear"   # bilinear | nearest | transpose
    # autoencoder training (unsupervised, MSE + Adam)
    ae_epochs: int = 5
    batch_size: int = 2000
    lr: float = 1e-3
    # classifier fine-tuning (cross-entropy + Adam)
    clf_epochs: int = 5
    clf_lr: float = 1e-3
    label_fraction: float = 1.0  # share of training labels the classifier may see
    freeze_encoder: bool = False  # True: linear probe on frozen features
    scratch_baseline: bool = True  # also train the same classifier from random init
    # data
    limit: int | None = None       # class-balanced training subset
    test_limit: int | None = None  # class-balanced test subset
    flip: bool = False             # random horizontal flips, done on the device
    # execution
    precision: str = "auto"  # auto | fp32 | bf16
    seed: int = 0
    device: str = "auto"     # auto | cpu | cuda | mps

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
    _check(_is_int(cfg.latent_dim) and 2 <= cfg.latent_dim <= 4096,
           f"latent_dim must be a whole number from 2 to 4096, got {cfg.latent_dim!r}.")
    _check(isinstance(cfg.leak, (int, float)) and 0 <= cfg.leak <= 1,
           f"leak (the LeakyReLU slope) must be between 0 and 1, got {cfg.leak!r}.")
    _check(cfg.upsample in UPSAMPLE_MODES,
           f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {cfg.upsample!r}.")
    _check(_is_int(cfg.ae_epochs) and 0 <= cfg.ae_epochs <= 1000,
           f"ae_epochs must be a whole number from 0 to 1000, got {cfg.ae_epochs!r}.")
    _check(_is_int(cfg.clf_epochs) and 0 <= cfg.clf_epochs <= 1000,
           f"clf_epochs must be a whole number from 0 to 1000, got {cfg.clf_epochs!r}.")
    _check(_is_int(cfg.batch_size) and 1 <= cfg.batch_size <= 100_000,
           f"batch_size must be a whole number from 1 to 100000, got {cfg.batch_size!r}.")
    for name in ("lr", "clf_lr"):
        value = getattr(cfg, name)
        _check(isinstance(value, (int, float)) and 0 < value <= 1,
               f"{name} (learning rate) must be above 0 and at most 1, got {value!r}.")
    _check(isinstance(cfg.label_fraction, (int, float)) and 0 < cfg.label_fraction <= 1,
           f"label_fraction must be above 0 and at most 1 (1 = all labels), got {cfg.label_fraction!r}.")
    for name in ("limit", "test_limit"):
        value = getattr(cfg, name)
        _check(value is None or (_is_int(value) and value >= 10),
               f"{name} must be empty (all images) or a whole number of at least 10, got {value!r}.")
    _check(cfg.precision in PRECISIONS,
           f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}.")
    _check(_is_int(cfg.seed) and 0 <= cfg.seed < 2**31,
           f"seed must be a whole number from 0 to 2147483647, got {cfg.seed!r}.")
    _check(cfg.device in DEVICES,
           f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}.")
    for name in ("freeze_encoder", "scratch_baseline", "flip"):
        _check(isinstance(getattr(cfg, name), bool), f"{name} must be true or false.")


def _digest(values: dict) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def autoencoder_key(cfg: Config, precision: str, fingerprint: str) -> str:
    """Hash of everything that decides the autoencoder's weights."""
    values = {name: getattr(cfg, name) for name in AUTOENCODER_FIELDS}
    values.update(precision=precision, dataset=fingerprint)
    return _digest(values)


def run_key(cfg: Config, precision: str, fingerprint: str) -> str:
    """Hash of everything that decides a run's results (all fields but the cosmetic ones)."""
    values = {k: v for k, v in cfg.to_dict().items() if k not in COSMETIC_FIELDS}
    values.update(precision=precision, dataset=fingerprint)
    return _digest(values)
