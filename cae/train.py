"""Training and evaluation: the autoencoder (MSE + Adam), then the classifier (cross-entropy + Adam).

Short functions with a progress callback and a cancel check between batches; `run_experiment`
runs a whole config: autoencoder, fine-tuning from its encoder, and the scratch baseline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cae.config import Config
from cae.data import Dataset, as_float, balanced_subset, batches, to_device
from cae.model import Classifier, ConvAutoencoder, first_layer_kernels

# Work per image in MFLOP (forward = 1, training step = 3 x forward), used for time estimates.
MFLOP = {"autoencoder": 194.0, "classifier": 72.0, "eval_autoencoder": 64.7, "eval_classifier": 24.0}
EVAL_BATCH = 1000

class TurnLock:
    """A re-entrant lock handed over in arrival order: a thread that releases it and asks again
    queues behind the threads already waiting (a plain Lock lets a training loop take it back
    at once and starve the pages)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            ticket = object()
            self._queue.append(ticket)
            while self._owner is not None or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a TurnLock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def __enter__(self) -> "TurnLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# One batch of torch work at a time per process. A page's forward pass and a training job's
# batch run in different threads; on a small CPU each would start its own OpenMP team and the
# two oversubscribe the cores (measured here: a bf16 step went from ~1.3 s to ~65 s). Taking
# turns batch by batch, in arrival order, keeps both fast: a page waits at most one batch.
compute_lock = TurnLock()


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


class Cancelled(Exception):
    """Raised inside training when the cancel flag is set; `run_experiment` turns it into a result."""


@dataclass
class Progress:
    """What the progress callback receives after every batch."""

    phase: str        # "autoencoder" | "classifier" | "scratch"
    epoch: int        # 1-based
    epochs: int
    batch: int        # 1-based, within the epoch
    batches: int
    loss: float       # running mean over the epoch so far (refreshed every few batches on a GPU)
    elapsed: float    # seconds since the experiment started
    remaining: float  # estimated seconds left for the whole experiment


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


# --- device and precision -------------------------------------------------------------------

def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if name not in available:
        raise DeviceError(f"Unknown device {name!r}; use auto, cpu, cuda or mps.")
    if not available[name]:
        raise DeviceError(f"Device {name!r} was asked for but is not available here; use "
                          "--device auto (or cpu).")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is bf16 autocast where the hardware does bf16 natively (measured faster, same
    quality: bench/NOTES.md), else fp32. An explicit bf16 without support is an error."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "bf16" and not bf16_supported(device):
        raise DeviceError(f"bf16 was asked for but {device.type} here has no bf16 support; "
                          "use --precision fp32 or auto.")
    return precision


def autocast(device: torch.device, precision: str):
    """bf16 autocast for the forward pass; weights, losses and optimiser state stay fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"CPU, {threads} thread{'s' if threads != 1 else ''}"
    return device.type.upper()


# --- the epoch loop shared by both phases ---------------------------------------------------

@dataclass
class Clock:
    """Elapsed time and a FLOP-weighted estimate of what is left for the whole experiment."""

    total_work: float
    start: float = field(default_factory=time.perf_counter)
    done_work: float = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        if self.done_work <= 0:
            return float("nan")
        return self.elapsed() / self.done_work * max(self.total_work - self.done_work, 0.0)


@dataclass
class Loop:
    """Everything one training phase needs besides the model."""

    phase: str
    device: torch.device
    precision: str
    clock: Clock
    on_progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    refresh_every: int = 1  # read the running loss every this many batches


def run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
              labels: torch.Tensor, loss_fn, loop: Loop, epoch: int, epochs: int,
              batch_size: int, generator: torch.Generator, flip: bool) -> float:
    """One pass over the images; returns the true mean loss over the epoch (per image)."""
    model.train()
    n = images.shape[0]
    n_batches = -(-n // batch_size)
    total = torch.zeros((), device=loop.device)  # accumulated on the device: no per-batch sync
    seen, shown = 0, float("nan")
    for b, (x, y) in enumerate(batches(images, labels, batch_size, generator, flip), start=1):
        if loop.should_stop and loop.should_stop():
            raise Cancelled
        with compute_lock:
            with autocast(loop.device, loop.precision):
                out = model(x)
            loss = loss_fn(out.float(), x, y)  # the loss itself in fp32
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(y)
        seen += len(y)
        loop.clock.done_work += len(y) * MFLOP[_work_kind(loop.phase)]
        if loop.on_progress:
            if b % loop.refresh_every == 0 or b == n_batches:
                shown = total.item() / seen
            loop.on_progress(Progress(loop.phase, epoch, epochs, b, n_batches, shown,
                                      loop.clock.elapsed(), loop.clock.remaining()))
    return total.item() / max(seen, 1)


def _work_kind(phase: str) -> str:
    return "autoencoder" if phase == "autoencoder" else "classifier"


def reconstruction_loss(out, x, _y):
    return F.mse_loss(out, x)


def classification_loss(out, _x, y):
    return F.cross_entropy(out, y)


# --- evaluation -----------------------------------------------------------------------------

@torch.no_grad()
def evaluate_autoencoder(model: ConvAutoencoder, images: torch.Tensor, device: torch.device,
                         precision: str = "fp32") -> float:
    """Mean squared error per pixel over uint8 NHWC `images` already on the device."""
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    for start in range(0, images.shape[0], EVAL_BATCH):
        x = as_float(images[start:start + EVAL_BATCH])
        with compute_lock, autocast(device, precision):
            out = model(x)
            total += F.mse_loss(out.float(), x, reduction="sum").double()
    return total.item() / max(images.numel(), 1)


@torch.no_grad()
def predict(model: Classifier, images: torch.Tensor, device: torch.device,
            precision: str = "fp32") -> torch.Tensor:
    """Predicted class of every image in uint8 NHWC `images`, on the device."""
    model.eval()
    preds = []
    for start in range(0, images.shape[0], EVAL_BATCH):
        with compute_lock, autocast(device, precision):
            preds.append(model(as_float(images[start:start + EVAL_BATCH])).argmax(1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=device)


def evaluate_classifier(model: Classifier, images: torch.Tensor, labels: torch.Tensor,
                        device: torch.device, precision: str = "fp32",
                        num_classes: int = 10) -> dict:
    """Test accuracy (percent), per-class accuracy (percent, by class index) and confusion matrix."""
    preds = predict(model, images, device, precision)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    pairs = (labels.cpu() * num_classes + preds.cpu()).bincount(minlength=num_classes ** 2)
    confusion += pairs.view(num_classes, num_classes)  # rows: true class, columns: predicted
    per_class = 100.0 * confusion.diag().double() / confusion.sum(1).clamp(min=1).double()
    accuracy = 100.0 * confusion.diag().sum().item() / max(int(confusion.sum()), 1)
    return {"test_acc": accuracy, "per_class_acc": per_class.tolist(), "confusion": confusion.tolist()}


# --- the two training phases ----------------------------------------------------------------

def train_autoencoder(model: ConvAutoencoder, train_images: torch.Tensor, test_images: torch.Tensor,
                      cfg: Config, loop: Loop, on_epoch=None, history: list | None = None) -> list[dict]:
    """`cfg.ae_epochs` epochs of MSE + Adam; history rows {epoch, train_mse, test_mse, seconds}.

    Rows are appended to `history` as epochs finish, so a cancelled run keeps what it did."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    dummy = torch.zeros(train_images.shape[0], dtype=torch.int64, device=train_images.device)
    history = [] if history is None else history
    for epoch in range(1, cfg.ae_epochs + 1):
        t0 = time.perf_counter()
        train_mse = run_epoch(model, optimizer, train_images, dummy, reconstruction_loss, loop,
                              epoch, cfg.ae_epochs, cfg.batch_size, generator, cfg.flip)
        seconds = time.perf_counter() - t0
        test_mse = evaluate_autoencoder(model, test_images, loop.device, loop.precision)
        loop.clock.done_work += test_images.shape[0] * MFLOP["eval_autoencoder"]
        history.append({"epoch": epoch, "train_mse": train_mse, "test_mse": test_mse,
                        "seconds": seconds})
        if on_epoch:
            on_epoch(loop.phase, history[-1], model)
    return history


def train_classifier(model: Classifier, train: tuple[torch.Tensor, torch.Tensor],
                     test: tuple[torch.Tensor, torch.Tensor], cfg: Config, loop: Loop,
                     on_epoch=None, history: list | None = None) -> list[dict]:
    """`cfg.clf_epochs` epochs of cross-entropy + Adam; rows {epoch, train_loss, test_acc, seconds}."""
    if cfg.freeze_encoder:
        for p in [*model.conv_encoder.parameters(), *model.fc_encoder.parameters()]:
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.clf_lr)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    history = [] if history is None else history
    batch_size = cfg.clf_batch_size or cfg.batch_size
    for epoch in range(1, cfg.clf_epochs + 1):
        t0 = time.perf_counter()
        train_loss = run_epoch(model, optimizer, train[0], train[1], classification_loss, loop,
                               epoch, cfg.clf_epochs, batch_size, generator, cfg.flip)
        seconds = time.perf_counter() - t0
        scores = evaluate_classifier(model, test[0], test[1], loop.device, loop.precision,
                                     model.head.out_features)
        loop.clock.done_work += test[0].shape[0] * MFLOP["eval_classifier"]
        history.append({"epoch": epoch, "train_loss": train_loss, "test_acc": scores["test_acc"],
                        "seconds": seconds})
        if on_epoch:
            on_epoch(loop.phase, history[-1], model)
    return history


# --- a whole experiment ---------------------------------------------------------------------

@dataclass
class ReusedAutoencoder:
    """A trained autoencoder taken from an existing run with the same autoencoder settings."""

    model: ConvAutoencoder
    history: list[dict]
    kernels: dict[str, torch.Tensor]  # "initial" and "autoencoder"
    source: str                       # the run that trained it
    dataset: dict                     # the data it was trained on (a run's `dataset` entry)


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


def new_head(model: Classifier, seed: int) -> Classifier:
    """Re-initialise the linear head from `seed`, so pretrained and scratch start from one head."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model.head.reset_parameters()
    return model


def planned_work(cfg: Config, n_train: int, n_labelled: int, n_test: int) -> float:
    """MFLOP the experiment will spend, for the time estimate."""
    ae = cfg.ae_epochs * (n_train * MFLOP["autoencoder"] + n_test * MFLOP["eval_autoencoder"])
    clf = cfg.clf_epochs * (n_labelled * MFLOP["classifier"] + n_test * MFLOP["eval_classifier"])
    return ae + clf * (1 + int(cfg.scratch_baseline) if cfg.clf_epochs else 0)


def run_experiment(cfg: Config, dataset: Dataset, on_progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None, on_epoch=None,
                   reuse: ReusedAutoencoder | None = None) -> ExperimentResult:
    """Autoencoder (or `reuse`), fine-tuning from its encoder, then the scratch baseline."""
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    train_idx = balanced_subset(dataset.train.labels, cfg.limit, seed=0)
    test_idx = balanced_subset(dataset.test.labels, cfg.test_limit, seed=0)
    labelled = balanced_subset(dataset.train.labels[train_idx],
                               max(len(dataset.classes), round(cfg.label_fraction * len(train_idx))), seed=0)
    train_x, train_y = to_device(dataset.train, train_idx, device)
    test = to_device(dataset.test, test_idx, device)
    work = planned_work(cfg if reuse is None else cfg.replace(ae_epochs=0),
                        len(train_idx), len(labelled), len(test_idx))
    clock = Clock(work)
    loop = lambda phase: Loop(phase, device, precision, clock, on_progress, should_stop,  # noqa: E731
                              refresh_every=1 if device.type == "cpu" else 10)
    metrics = _empty_metrics(cfg, dataset, device, precision)
    metrics["pretraining_dataset"] = reuse.dataset if reuse is not None else dataset.summary()
    kernels: dict[str, torch.Tensor] = {}
    result = ExperimentResult(cfg, metrics, kernels, autoencoder=None)  # type: ignore[arg-type]
    try:
        result.autoencoder = _autoencoder_phase(cfg, train_x, test[0], loop, on_epoch, reuse, metrics, kernels, device)
        if cfg.clf_epochs:
            labelled_set = (train_x[labelled.to(device)], train_y[labelled.to(device)])
            result.classifier = _classifier_phase(
                "classifier", Classifier.from_autoencoder(result.autoencoder, len(dataset.classes)),
                cfg, labelled_set, test, loop, on_epoch, metrics, kernels, dataset.classes)
            if cfg.scratch_baseline:
                torch.manual_seed(cfg.seed)  # the same encoder init as the autoencoder's
                result.scratch = _classifier_phase(
                    "scratch", Classifier.from_config(cfg, len(dataset.classes)), cfg, labelled_set,
                    test, loop, on_epoch, metrics["scratch"], kernels, dataset.classes)
    except Cancelled:
        result.cancelled = True
    metrics["seconds_total"] = clock.elapsed()
    return result


def _empty_metrics(cfg: Config, dataset: Dataset, device: torch.device, precision: str) -> dict:
    return {"config": cfg.to_dict(), "autoencoder": [], "classifier": [], "per_class_acc": {},
            "confusion": [], "scratch": {"classifier": [], "per_class_acc": {}, "confusion": []},
            "device": describe_device(device), "precision": precision,
            "dataset": dataset.summary(), "torch": torch.__version__,
            "autoencoder_source": None}


def _autoencoder_phase(cfg, train_x, test_x, loop, on_epoch, reuse, metrics, kernels, device):
    if reuse is not None:
        metrics["autoencoder"].extend(reuse.history)
        metrics["autoencoder_source"] = reuse.source
        kernels.update(initial=reuse.kernels["initial"], autoencoder=reuse.kernels["autoencoder"])
        return reuse.model.to(device, memory_format=torch.channels_last)
    torch.manual_seed(cfg.seed)
    model = ConvAutoencoder.from_config(cfg).to(device, memory_format=torch.channels_last)
    kernels["initial"] = first_layer_kernels(model)
    train_autoencoder(model, train_x, test_x, cfg, loop("autoencoder"), on_epoch, metrics["autoencoder"])
    kernels["autoencoder"] = first_layer_kernels(model)
    return model


def _classifier_phase(phase, model, cfg, labelled, test, loop, on_epoch, metrics, kernels, classes):
    device = labelled[0].device
    model = new_head(model, cfg.seed).to(device, memory_format=torch.channels_last)
    train_classifier(model, labelled, test, cfg, loop(phase), on_epoch, metrics["classifier"])
    kernels["finetuned" if phase == "classifier" else "scratch"] = first_layer_kernels(model)
    scores = evaluate_classifier(model, test[0], test[1], device, loop(phase).precision, len(classes))
    metrics["per_class_acc"] = dict(zip(classes, scores["per_class_acc"]))
    metrics["confusion"] = scores["confusion"]
    return model


# --- time estimates -------------------------------------------------------------------------

def seconds_per_mflop(cfg: Config, batch_size: int = 256) -> float:
    """Time one autoencoder training step here (after a warm-up) and return seconds per MFLOP."""
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    with torch.random.fork_rng(devices=[]):
        model = ConvAutoencoder.from_config(cfg).to(device, memory_format=torch.channels_last)
        x = torch.rand(batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    times = []
    for _ in range(3):
        with compute_lock:
            t0 = time.perf_counter()
            with autocast(device, precision):
                out = model(x)
            loss = F.mse_loss(out.float(), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
    return min(times[1:]) / (batch_size * MFLOP["autoencoder"])


def estimate_seconds(cfg: Config, n_train: int, n_test: int, per_mflop: float) -> float:
    """Rough wall time of an experiment from a measured step (see `seconds_per_mflop`)."""
    n_train = min(n_train, cfg.limit or n_train)
    n_test = min(n_test, cfg.test_limit or n_test)
    return planned_work(cfg, n_train, max(1, round(cfg.label_fraction * n_train)), n_test) * per_mflop
