"""One dataclass for a whole experiment: autoencoder, fine-tuning and the scratch baseline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass

from cae.settings import Setting, setting

UPSAMPLE_MODES = ("bilinear", "nearest", "transpose")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
OBJECTIVES = ("reconstruction", "contrastive")
CONTRASTIVE_HELP = (  # the Train page's words for the objective (cae/contrastive.py)
    "contrastive: two random views of each image (crops, flips, colours, grey) must get matching codes, unlike the "
    "batch's other images (NT-Xent, temperature 0.5). Nothing is rebuilt: no reconstructions, no denoising or masking."
)

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
LATER_AUTOENCODER_FIELDS = {"noise": 0.0, "mask": 0.0, "augment": False, "objective": "reconstruction"}
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
    """Hyperparameters of one experiment; defaults are the lecture's. Each field's metadata is its
    `Setting` (SETTINGS): range, help, command-line option, words and widget."""

    # model
    latent_dim: int = setting(
        1024,
        "units in the code between encoder and decoder",
        low=2,
        high=4096,
        group="model",
        words="latent {}",
        form=dict(
            label="Latent size (the code)",
            widget="select_slider",
            choices=LATENT_SIZES,
            column=0,
            help='The Latent space page\'s "Latent size" chart shows what the code length changes: '
            "reconstruction, k-NN accuracy and fine-tuned accuracy.",
        ),
    )
    leak: float = setting(
        0.1,
        "LeakyReLU negative slope; 0 is plain ReLU",
        low=0,
        high=1,
        gloss="(the LeakyReLU slope)",
        group="model",
        form=dict(
            label="Leak factor (LeakyReLU slope; 0 = ReLU)",
            widget="slider",
            low=0.0,
            high=0.5,
            step=0.01,
            column=0,
            help='What it changes: the Latent space page\'s "Leak and dead units" section shows the share of '
            "units that never fire in this run, and the shipped sweep over leak 0, 0.1, 0.3.",
        ),
    )
    upsample: str = setting(
        "bilinear",
        "how the decoder enlarges its maps (transpose: the lecture's deconvolution)",
        choices=UPSAMPLE_MODES,
        group="model",
        words="{} decoder",
        form=dict(
            label="Decoder upsampling",
            widget="radio",
            column=0,
            help="transpose = the lecture's 'deconvolution' (ConvTranspose2d)",
        ),
    )
    # autoencoder training (unsupervised, MSE + Adam)
    ae_epochs: int = setting(
        5,
        "epochs of autoencoder training",
        low=0,
        high=1000,
        group="autoencoder",
        form=dict(label="Autoencoder epochs", widget="number_input", low=1, high=100, column=1),
    )
    batch_size: int = setting(
        2000,
        "images per optimiser step",
        low=1,
        high=100_000,
        group="autoencoder",
        words="batch {}",
        form=dict(label="Batch size", widget="number_input", low=16, high=10_000, step=100, column=1),
    )
    lr: float = setting(
        1e-3,
        "Adam's learning rate for the autoencoder",
        low=0,
        high=1,
        above=True,
        gloss="(learning rate)",
        group="autoencoder",
        words="lr {:g}",
        form=dict(label="Learning rate (Adam), autoencoder", widget="select_slider", choices=LEARNING_RATES, column=1),
    )
    # classifier fine-tuning (cross-entropy + Adam)
    clf_epochs: int = setting(
        5,
        "epochs of classifier training",
        low=0,
        high=1000,
        group="classifier",
        form=dict(label="Classifier epochs (0 = autoencoder only)", widget="number_input", low=0, high=100, column=1),
    )
    clf_lr: float = setting(
        1e-3,
        "Adam's learning rate for fine-tuning",
        low=0,
        high=1,
        above=True,
        gloss="(learning rate)",
        group="classifier",
        words="fine-tuning lr {:g}",
        form=dict(label="Learning rate, fine-tuning", widget="select_slider", choices=LEARNING_RATES, column=1),
    )
    clf_batch_size: int | None = setting(
        None,
        "the classifier's own batch size (default: the batch size)",
        low=1,
        high=100_000,
        empty="the batch size",
        group="classifier",
        words="classifier batch {}",
        form=dict(
            label="Classifier batch size (0 = the same)", widget="number_input", low=0, high=10_000, step=50, column=1
        ),
    )
    label_fraction: float = setting(
        1.0,
        "share of the training images the classifier sees labelled",
        low=0,
        high=1,
        above=True,
        rule="above 0 and at most 1 (1 = all labels)",
        group="classifier",
    )
    label_count: int | None = setting(
        None,
        "this many labelled training images, class-balanced (instead of the fraction)",
        low=1,
        group="classifier",
        words="{:,} labels",
    )
    clf_steps: int | None = setting(
        None,
        "train each classifier for exactly this many optimiser steps (instead of epochs)",
        low=1,
        group="classifier",
        words="{} classifier steps",
    )
    clf_seed: int | None = setting(
        None,
        "the classifiers' seed: labelled draw, head, batch order (default: the seed; the autoencoder keeps "
        "the seed, so it is reused)",
        low=0,
        group="classifier",
        words="label seed {}",
    )
    scratch_seed: int | None = setting(
        None,
        "the scratch baseline's initial weights (default: the seed, the autoencoder's own start)",
        low=0,
        group="classifier",
        words="scratch init seed {}",
    )
    freeze_encoder: bool = setting(
        False, "a linear probe: the encoder stays frozen", group="classifier", words="frozen encoder (linear probe)"
    )
    scratch_baseline: bool = setting(
        True,
        "skip the scratch baseline (the same classifier from random init)",
        flag="--no-scratch",
        group="classifier",
        form=dict(label="Also train the scratch baseline", widget="checkbox", column=2),
    )
    # transfer: the autoencoder key of a run whose encoder this run starts from (no autoencoder
    # training then); that run may have been trained on other data
    encoder_from: str | None = setting(
        None,
        "start from this run's autoencoder (any data) and fine-tune on --data; no autoencoder training",
        pattern=r"[0-9a-f]{64}",
        rule="an autoencoder key (64 hex digits)",
        script=False,
        group="classifier",
    )
    # data
    limit: int | None = setting(
        None, "class-balanced training subset size", low=10, empty="all images", group="data"
    )  # the Train page's own "Training images" choice sets it
    test_limit: int | None = setting(
        None,
        "class-balanced test subset size",
        low=10,
        empty="all images",
        group="data",
        form=dict(
            label="Test images (0 = the whole test split)", widget="number_input", low=0, high=1_000_000, column=2
        ),
    )
    flip: bool = setting(
        False,
        "random horizontal flips while training",
        group="data",
        words="flips",
        form=dict(label="Random horizontal flips (augmentation)", widget="checkbox", column=2),
    )
    # what the autoencoder rebuilds (cae/objectives.py): the clean image from an input with noise of
    # this std, or with this fraction of 4x4 patches hidden; `augment`: random 4-pixel-padded crops
    noise: float = setting(
        0.0,
        "denoising: the autoencoder rebuilds the clean image from one with Gaussian noise of this standard "
        "deviation (pixels in 0-1; 0 is the lecture's plain recipe)",
        low=0,
        high=1,
        gloss="(the input noise's standard deviation, pixels in 0-1)",
        group="objective",
        words="denoising (noise {:g})",
        form=dict(
            label="Denoising: noise added to the input (std)",
            widget="slider",
            low=0.0,
            high=0.5,
            step=0.05,
            column="rebuilds",
            help="Gaussian noise of this standard deviation (pixels from 0 to 1) on the input; the target is the "
            "clean image. 0 = the lecture's recipe.",
        ),
    )
    mask: float = setting(
        0.0,
        "masking: the autoencoder rebuilds the clean image from one with this share of its 4x4 patches set to "
        "black (0-0.9)",
        low=0,
        high=0.9,
        gloss="(the share of 4x4 patches hidden)",
        group="objective",
        words="masking {:.0%} of patches",
        form=dict(
            label="Masking: share of 4×4 patches hidden",
            widget="select_slider",
            choices=(0.0, 0.25, 0.5, 0.75),
            percent=True,
            column="rebuilds",
            help="This share of the 64 patches of 4×4 pixels is set to black in the input; the loss covers the "
            "whole clean image. 0% = the lecture's recipe.",
        ),
    )
    augment: bool = setting(
        False,
        "random crops with 4-pixel padding of the autoencoder's input and target",
        group="objective",
        words="crops",
        form=dict(
            label="Random crops (4-pixel padding)",
            widget="checkbox",
            column="rebuilds",
            help="Each batch is shifted by up to 4 pixels (input and target alike), like the flips above.",
        ),
    )
    # the contrastive objective (cae/contrastive.py): the encoder alone, two views per image, NT-Xent
    objective: str = setting(
        "reconstruction",
        "what pretraining asks of the encoder: reconstruction (the autoencoder, MSE) or contrastive (NT-Xent on two "
        "random views of each image; no decoder is trained)",
        choices=OBJECTIVES,
        group="objective",
        words="{} pretraining",
        form=dict(label="Pretraining objective", widget="radio", column="rebuilds", help=CONTRASTIVE_HELP),
    )
    # execution
    precision: str = setting(
        "auto",
        "auto: bf16 autocast where the hardware does bf16 natively, else fp32",
        choices=PRECISIONS,
        script=False,
        group="execution",
        form=dict(
            label="Precision",
            widget="selectbox",
            column=2,
            help="auto: bf16 autocast where the hardware supports it, else fp32",
        ),
    )
    seed: int = setting(
        0,
        "the seed of every random draw",
        low=0,
        high=2**31 - 1,
        group="execution",
        words="seed {}",
        form=dict(label="Seed", widget="number_input", low=0, high=2**31 - 1, column=2),
    )
    device: str = setting("auto", "where it trains", choices=DEVICES, script=False, group="execution")

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


def _describe(f: dataclasses.Field) -> Setting:
    kind = str(f.type).split(" |")[0]
    return Setting(name=f.name, kind=kind, optional="None" in str(f.type), default=f.default, **f.metadata["setting"])


SETTINGS: dict[str, Setting] = {f.name: _describe(f) for f in dataclasses.fields(Config)}


def validate(cfg: Config) -> None:
    """Raise ConfigError with one sentence for the first field out of its Setting's range."""
    for name, spec in SETTINGS.items():
        if (problem := spec.problem(getattr(cfg, name))) is not None:
            raise ConfigError(problem)
    if cfg.objective == "contrastive" and (cfg.noise or cfg.mask or cfg.augment):
        raise ConfigError(
            "Denoising, masking and crops change what the autoencoder rebuilds; the contrastive objective rebuilds "
            "nothing (it makes its own views), so set noise and mask to 0 and crops off."
        )


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
