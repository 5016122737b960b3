"""Training and evaluation: the autoencoder (MSE + Adam), then the classifier (cross-entropy + Adam).

`run_experiment` runs a whole config in a straight line: the autoencoder (or a reused one), a
classifier fine-tuned from its encoder, then the same classifier from random init. Every random
draw comes from an explicit generator seeded from the config, so a CPU run repeats bit for bit
whatever else the process does. Progress, cancel checks and per-epoch reports go through one
`Reporter`; nothing here knows about threads, processes or pages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cae.config import Config, optimiser_steps
from cae.contrastive import train_contrastive
from cae.data import Dataset, as_float, batches
from cae.devices import autocast, describe_device, resolve_device, resolve_precision
from cae.latent import RepresentationProbe
from cae.model import Classifier, ConvAutoencoder, first_layer_kernels, seeded
from cae.objectives import Pretext, pretext_for
from cae.plan import (
    MFLOP,
    STEPS_EVALUATIONS,
    Subsets,
    classifier_epochs,
    classifier_seed,
    planned_work,
    scratch_init_seed,
)

EVAL_BATCH = 1000


class Cancelled(Exception):
    """Raised between batches when the cancel check says so; `run_experiment` turns it into a result."""


@dataclass
class Progress:
    """What the progress callback receives after every batch."""

    phase: str  # "autoencoder" | "classifier" | "scratch"
    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based, within the epoch
    batches: int
    loss: float  # running mean over the epoch so far (refreshed every few batches on a GPU)
    elapsed: float  # seconds since the experiment started
    remaining: float  # estimated seconds left for the whole experiment
    work: float = 0.0  # MFLOP planned for the whole experiment (the estimates' unit: cae/timing.py)


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]
EpochFn = Callable[[str, dict, nn.Module], None]  # (phase, history row, model) after each epoch


# --- one training step, and the epoch loop ------------------------------------------------------


def reconstruction_loss(out: torch.Tensor, x: torch.Tensor, _y) -> torch.Tensor:
    return F.mse_loss(out, x)


def classification_loss(out: torch.Tensor, _x, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y)


def training_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor | None,
    precision: str,
    inputs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Forward (under autocast), the loss in fp32, backward, one optimiser step; the loss, detached.
    The model sees `inputs` when given (a corrupted batch, cae/objectives.py), else `x`; the loss
    compares its output with `x`. The trainer, the Overview's timing and the time estimate all run this."""
    with autocast(x.device, precision):
        out = model(x if inputs is None else inputs)
    loss = loss_fn(out.float(), x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@dataclass
class Reporter:
    """Progress, cancel checks and per-epoch reports of one experiment, with a FLOP-weighted
    estimate of the time left."""

    total_work: float
    on_progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    on_epoch: EpochFn | None = None
    refresh_every: int = 1  # read the running loss every this many batches (a host sync on a GPU)
    start: float = field(default_factory=time.perf_counter)
    done_work: float = 0.0
    snapshots: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # first-layer kernels per epoch

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        if self.done_work <= 0:
            return float("nan")
        return self.elapsed() / self.done_work * max(self.total_work - self.done_work, 0.0)

    def check(self) -> None:
        if self.should_stop and self.should_stop():
            raise Cancelled

    def batch(self, phase: str, epoch: int, epochs: int, batch: int, batches: int, loss: float) -> None:
        if self.on_progress:
            self.on_progress(
                Progress(phase, epoch, epochs, batch, batches, loss, self.elapsed(), self.remaining(), self.total_work)
            )

    def epoch(self, phase: str, row: dict, model: nn.Module) -> None:
        self.snapshots.setdefault(phase, []).append(first_layer_kernels(model))
        if self.on_epoch:
            self.on_epoch(phase, row, model)


def run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn,
    data: tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    flip: bool,
    precision: str,
    phase: str,
    epoch: int,
    epochs: int,
    reporter: Reporter,
    max_batches: int | None = None,
    pretext: Pretext | None = None,
) -> float:
    """One pass over the images (or its first `max_batches` batches); returns the true mean loss
    over the images seen (per image). `pretext` turns each batch into (input, target)."""
    images, labels = data
    model.train()
    n_batches = min(optimiser_steps(images.shape[0], batch_size), max_batches or 2**62)
    total = torch.zeros((), device=images.device)  # accumulated on the device: no per-batch sync
    seen, shown = 0, float("nan")
    work = MFLOP["autoencoder" if phase == "autoencoder" else "classifier"]
    for b, (x, y) in enumerate(batches(images, labels, batch_size, generator, flip), start=1):
        if b > n_batches:
            break
        reporter.check()
        inputs = None
        if pretext is not None:
            inputs, x = pretext(x)
        total += training_step(model, optimizer, loss_fn, x, y, precision, inputs) * len(y)
        seen += len(y)
        reporter.done_work += len(y) * work
        if reporter.on_progress and (b % reporter.refresh_every == 0 or b == n_batches):
            shown = total.item() / seen
        reporter.batch(phase, epoch, epochs, b, n_batches, shown)
    return total.item() / max(seen, 1)


# --- evaluation -----------------------------------------------------------------------------


@torch.no_grad()
def evaluate_autoencoder(model: ConvAutoencoder, images: torch.Tensor, precision: str = "fp32") -> float:
    """Mean squared error per pixel over uint8 NHWC `images` (on the model's device)."""
    model.eval()
    total = torch.zeros((), device=images.device, dtype=torch.float64)
    for start in range(0, images.shape[0], EVAL_BATCH):
        x = as_float(images[start : start + EVAL_BATCH])
        with autocast(images.device, precision):
            out = model(x)
        total += F.mse_loss(out.float(), x, reduction="sum").double()
    return total.item() / max(images.numel(), 1)


@torch.no_grad()
def predict(model: Classifier, images: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Predicted class of every image in uint8 NHWC `images`, on their device."""
    model.eval()
    preds = [torch.zeros(0, dtype=torch.int64, device=images.device)]
    for start in range(0, images.shape[0], EVAL_BATCH):
        with autocast(images.device, precision):
            preds.append(model(as_float(images[start : start + EVAL_BATCH])).argmax(1))
    return torch.cat(preds)


def evaluate_classifier(
    model: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    precision: str = "fp32",
    num_classes: int | None = None,
) -> dict:
    """Test accuracy (percent), per-class accuracy (percent, by class index) and confusion matrix
    (rows: true class, columns: predicted), for as many classes as the model's head has."""
    num_classes = num_classes or model.head.out_features
    preds = predict(model, images, precision)
    pairs = (labels.cpu() * num_classes + preds.cpu()).bincount(minlength=num_classes**2)
    confusion = pairs.view(num_classes, num_classes)
    per_class = 100.0 * confusion.diag().double() / confusion.sum(1).clamp(min=1).double()
    accuracy = 100.0 * confusion.diag().sum().item() / max(int(confusion.sum()), 1)
    return {"test_acc": accuracy, "per_class_acc": per_class.tolist(), "confusion": confusion.tolist()}


# --- the two training phases ----------------------------------------------------------------


def train_autoencoder(
    model: ConvAutoencoder,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    cfg: Config,
    precision: str,
    reporter: Reporter,
    probe=None,
) -> list[dict]:
    """`cfg.ae_epochs` epochs of MSE + Adam; history rows {epoch, train_mse, test_mse, seconds}, and
    `knn_acc` (the code's k-NN test accuracy, cae/latent.py) when a `probe` is given."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    pretext = pretext_for(cfg.noise, cfg.mask, cfg.augment, cfg.seed)
    no_labels = torch.zeros(train_images.shape[0], dtype=torch.int64, device=train_images.device)
    history = []
    for epoch in range(1, cfg.ae_epochs + 1):
        t0 = time.perf_counter()
        train_mse = run_epoch(
            model,
            optimizer,
            reconstruction_loss,
            (train_images, no_labels),
            cfg.batch_size,
            generator,
            cfg.flip,
            precision,
            "autoencoder",
            epoch,
            cfg.ae_epochs,
            reporter,
            pretext=pretext,
        )
        seconds = time.perf_counter() - t0
        test_mse = evaluate_autoencoder(model, test_images, precision)
        reporter.done_work += test_images.shape[0] * MFLOP["eval_autoencoder"]
        history.append({"epoch": epoch, "train_mse": train_mse, "test_mse": test_mse, "seconds": seconds})
        if probe is not None:
            history[-1]["knn_acc"] = probe.knn(model)
            reporter.done_work += probe.work()
        reporter.epoch("autoencoder", history[-1], model)
    return history


@dataclass
class ClassifierResult:
    """A trained classifier, its history and its final per-class scores."""

    model: Classifier
    history: list[dict]
    per_class_acc: dict[str, float]
    confusion: list[list[int]]
    kernels: torch.Tensor


def train_classifier(
    model: Classifier,
    phase: str,
    labelled: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    classes: list[str],
    cfg: Config,
    precision: str,
    reporter: Reporter,
) -> ClassifierResult:
    """`cfg.clf_epochs` epochs of cross-entropy + Adam (or exactly `cfg.clf_steps` optimiser steps,
    evaluated `STEPS_EVALUATIONS` times, the last after the last step); rows {epoch, train_loss,
    test_acc, seconds}. A frozen encoder
    (`cfg.freeze_encoder`) trains the head only: the linear probe."""
    if cfg.freeze_encoder:  # (the scratch baseline of a frozen run is a frozen random encoder)
        for p in [*model.conv_encoder.parameters(), *model.fc_encoder.parameters()]:
            p.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.clf_lr)
    generator = torch.Generator().manual_seed(classifier_seed(cfg) + 1)
    batch_size = cfg.clf_batch_size or cfg.batch_size
    epochs = classifier_epochs(cfg, labelled[0].shape[0])
    checks = min(epochs, STEPS_EVALUATIONS) if cfg.clf_steps is not None else epochs
    evaluated = {round(epochs * k / checks) for k in range(1, checks + 1)}
    steps_left = cfg.clf_steps
    history, scores, t0 = [], {}, time.perf_counter()
    for epoch in range(1, epochs + 1):
        train_loss = run_epoch(
            model,
            optimizer,
            classification_loss,
            labelled,
            batch_size,
            generator,
            cfg.flip,
            precision,
            phase,
            epoch,
            epochs,
            reporter,
            steps_left,
        )
        if steps_left is not None:
            steps_left -= optimiser_steps(labelled[0].shape[0], batch_size)
        if epoch not in evaluated:
            continue
        seconds = time.perf_counter() - t0
        scores = evaluate_classifier(model, test[0], test[1], precision)
        reporter.done_work += test[0].shape[0] * MFLOP["eval_classifier"]
        history.append({"epoch": epoch, "train_loss": train_loss, "test_acc": scores["test_acc"], "seconds": seconds})
        reporter.epoch(phase, history[-1], model)
        t0 = time.perf_counter()
    return ClassifierResult(
        model,
        history,
        dict(zip(classes, scores.get("per_class_acc", []))),
        scores.get("confusion", []),
        first_layer_kernels(model),
    )


# --- a whole experiment ---------------------------------------------------------------------


@dataclass
class ReusedAutoencoder:
    """A trained autoencoder taken from an existing run (same settings, or a transfer source)."""

    model: ConvAutoencoder
    history: list[dict]
    kernels: dict[str, torch.Tensor]  # "initial" and "autoencoder"
    source: str  # the run that trained it
    dataset: dict  # the data it was trained on (a run's `dataset` entry)
    representation: dict | None = None  # its metrics["representation"], when it has one


@dataclass
class ExperimentResult:
    """Models, metrics (the metrics.json dict) and first-layer kernel snapshots of one experiment."""

    config: Config
    metrics: dict
    kernels: dict[str, torch.Tensor]
    autoencoder: ConvAutoencoder
    classifier: Classifier | None = None
    scratch: Classifier | None = None
    cancelled: bool = False


def run_experiment(
    cfg: Config,
    dataset: Dataset,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    on_epoch: EpochFn | None = None,
    reuse: ReusedAutoencoder | None = None,
    placed: tuple[str, str] | None = None,
) -> ExperimentResult:
    """Autoencoder (or `reuse`), fine-tuning from its encoder, then the scratch baseline. `placed`:
    (device, precision) as the server decided them for this request (cae.experiment.Identity), used
    as they are; None resolves both here."""
    device = resolve_device(placed[0] if placed else cfg.device)
    precision = resolve_precision(placed[1], device) if placed else resolve_precision(cfg.precision, device)
    data = Subsets.of(cfg, dataset, device)
    work = planned_work(
        cfg if reuse is None else cfg.replace(ae_epochs=0), len(data.train[0]), len(data.labelled[0]), len(data.test[0])
    )
    reporter = Reporter(work, on_progress, should_stop, on_epoch, refresh_every=1 if device.type == "cpu" else 10)
    metrics = experiment_metrics(cfg, dataset, device, precision, reuse)
    if reuse is not None:
        autoencoder, kernels = reuse.model, dict(reuse.kernels)
    else:
        autoencoder = ConvAutoencoder.from_config(cfg, seeded(cfg.seed))
        kernels = {"initial": first_layer_kernels(autoencoder)}
    autoencoder = autoencoder.to(device, memory_format=torch.channels_last)
    classes = list(dataset.classes)
    result = ExperimentResult(cfg, metrics, kernels, autoencoder)
    try:
        if reuse is None:
            probe = RepresentationProbe.of(dataset, data.train_idx, data.test_idx)
            metrics["representation"] = probe.summary(autoencoder)
            pretrain = train_contrastive if cfg.objective == "contrastive" else train_autoencoder
            metrics["autoencoder"] = pretrain(autoencoder, data.train[0], data.test[0], cfg, precision, reporter, probe)
            kernels["autoencoder"] = first_layer_kernels(autoencoder)
        if not classifier_epochs(cfg, len(data.labelled[0])):
            return finish(result, reporter)
        pretrained = Classifier.from_autoencoder(autoencoder, len(classes), seeded(classifier_seed(cfg) + 1))
        fine = train_classifier(
            pretrained.to(device, memory_format=torch.channels_last),
            "classifier",
            data.labelled,
            data.test,
            classes,
            cfg,
            precision,
            reporter,
        )
        metrics.update(classifier=fine.history, per_class_acc=fine.per_class_acc, confusion=fine.confusion)
        kernels["finetuned"], result.classifier = fine.kernels, fine.model
        if cfg.scratch_baseline:
            # the autoencoder's own initial encoder (or `scratch_seed`'s), and the same head as above
            scratch_model = Classifier.from_config(cfg, len(classes), seeded(scratch_init_seed(cfg))).new_head(
                seeded(classifier_seed(cfg) + 1)
            )
            scratch = train_classifier(
                scratch_model.to(device, memory_format=torch.channels_last),
                "scratch",
                data.labelled,
                data.test,
                classes,
                cfg,
                precision,
                reporter,
            )
            metrics["scratch"] = {
                "classifier": scratch.history,
                "per_class_acc": scratch.per_class_acc,
                "confusion": scratch.confusion,
            }
            kernels["scratch"], result.scratch = scratch.kernels, scratch.model
    except Cancelled:
        result.cancelled = True
    return finish(result, reporter)


# kernels.pt keys of the per-epoch snapshots, (epochs, 64, 3, 3, 3) each, by phase
EPOCH_KERNELS = {"autoencoder": "autoencoder_epochs", "classifier": "finetuned_epochs", "scratch": "scratch_epochs"}


def finish(result: ExperimentResult, reporter: Reporter) -> ExperimentResult:
    """The total time, and the first-layer kernels after every epoch of every phase."""
    result.metrics["seconds_total"] = reporter.elapsed()
    for phase, snapshots in reporter.snapshots.items():
        result.kernels[EPOCH_KERNELS[phase]] = torch.stack(snapshots)
    return result


def experiment_metrics(
    cfg: Config, dataset: Dataset, device: torch.device, precision: str, reuse: ReusedAutoencoder | None
) -> dict:
    """The metrics.json dict before any training; histories are filled in as phases end."""
    return {
        "config": cfg.to_dict(),
        "autoencoder": reuse.history if reuse else [],
        "classifier": [],
        "per_class_acc": {},
        "confusion": [],
        "scratch": {"classifier": [], "per_class_acc": {}, "confusion": []},
        "device": describe_device(device),
        "precision": precision,
        "dataset": dataset.summary(),
        "torch": torch.__version__,
        "autoencoder_source": reuse.source if reuse else None,
        "pretraining_dataset": reuse.dataset if reuse else dataset.summary(),
        **({"representation": reuse.representation} if reuse and reuse.representation else {}),
    }
