"""One experiment from request to saved run, and a saved run measured again: the one entry point
for training that the CLI, the worker and the label-budget sweep all call (`train_or_load`), the
autoencoder a request reuses, and `evaluate_run`. The files themselves are `cae.runs`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cae.config import Config, autoencoder_key, run_key
from cae.contrastive import rebuilds
from cae.data import Dataset, balanced_subset, to_device
from cae.devices import bf16_supported, resolve_device, resolve_precision
from cae.runs import AUTO, Run, RunError, find_run, list_runs, load_run, runs_dir, save_run
from cae.train import ExperimentResult, ReusedAutoencoder, evaluate_autoencoder, evaluate_classifier, run_experiment


def autoencoder_runs(key: str, directory: Path | None = None, pretrained: Path | str | None = AUTO) -> list[Path]:
    """The runs that hold a trained autoencoder with this key: runs of the runs folder (full-precision
    weights) before shipped ones (stored in fp16)."""
    infos = sorted(list_runs(directory, pretrained), key=lambda i: i.pretrained)
    return [i.path for i in infos if i.metrics and i.metrics.get("autoencoder_key") == key]


def find_autoencoder(
    key: str, directory: Path | None = None, pretrained: Path | str | None = AUTO
) -> ReusedAutoencoder | None:
    """A trained autoencoder from any run with this autoencoder key (`autoencoder_runs`' order)."""
    for path in autoencoder_runs(key, directory, pretrained):
        try:
            return reused_autoencoder(load_run(path))
        except RunError:
            continue
    return None


def reused_autoencoder(run: Run) -> ReusedAutoencoder:
    """A run's trained autoencoder, to start another run from; names the run that trained it."""
    m = run.metrics
    return ReusedAutoencoder(
        run.autoencoder,
        m["autoencoder"],
        {k: v for k, v in run.kernels.items() if k in ("initial", "autoencoder", "autoencoder_epochs")},
        m.get("autoencoder_source") or run.name,
        m.get("pretraining_dataset") or m["dataset"],
        m.get("representation"),
    )


def transfer_config(source: Run, **changes) -> Config:
    """A request that fine-tunes `source`'s encoder on other data: the source's model, its
    autoencoder named by key, and the classifier settings in `changes`. The training subsets are
    the whole data in use unless `changes` say otherwise."""
    if not source.metrics.get("autoencoder_key"):
        raise RunError(f"{source.name} has no autoencoder key; it was not written by this version.")
    base = {"limit": None, "test_limit": None, **changes}
    return source.config.replace(encoder_from=source.metrics["autoencoder_key"], **base)


@dataclass
class Outcome:
    """What `train_or_load` did: the run folder, and whether it was found rather than trained."""

    path: Path | None
    cached: bool
    result: ExperimentResult | None = None

    @property
    def cancelled(self) -> bool:
        return self.result is not None and self.result.cancelled


@dataclass(frozen=True)
class Identity:
    """Where a request trains and what it is called, decided once (by the job manager, for the
    backend that will run it) and used as it is by the worker, a Ray node and `save_run`: the
    device kind, the precision resolved for it, and the keys that follow from them."""

    device: str  # "cpu", "cuda" or "mps"
    precision: str  # "fp32" or "bf16"
    key: str
    autoencoder_key: str

    @property
    def placed(self) -> tuple[str, str]:
        return self.device, self.precision

    @property
    def keys(self) -> tuple[str, str]:
        return self.key, self.autoencoder_key


def identify(cfg: Config, fingerprint: str, device: str | None = None, precision: str | None = None) -> Identity:
    """A request's identity on `device` (None: as this machine resolves cfg.device) with `precision`
    (None: cfg.precision as resolved for that device here)."""
    device = device or resolve_device(cfg.device).type
    if precision is None:
        import torch

        precision = resolve_precision(cfg.precision, torch.device(device))
    return Identity(
        device, precision, run_key(cfg, precision, fingerprint), autoencoder_key(cfg, precision, fingerprint)
    )


def request_keys(cfg: Config, dataset: Dataset) -> tuple[str, str]:
    """(run_key, autoencoder_key) of a request trained in this process (the CLI, bench/, a sweep's
    points); a server's jobs take theirs from the job manager (`JobManager.identity`)."""
    return identify(cfg, dataset.fingerprint).keys


def train_or_load(
    cfg: Config,
    dataset: Dataset,
    directory: Path | None = None,
    force: bool = False,
    on_progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable | None = None,
    source: Run | None = None,
    *,
    reuse: ReusedAutoencoder | None = None,
    pretrained: Path | str | None = AUTO,
    weights: bool = True,
    keep: bool = True,
    identity: Identity | None = None,
) -> Outcome:
    """Find the run for this request, or train it (reusing a matching autoencoder) and save it.

    A transfer request (`cfg.encoder_from`) starts from that autoencoder: `source` when given (the
    CLI's --encoder-from), else the run that holds it among the runs. `reuse` names the autoencoder
    outright (a label-budget point always starts from its source run's); `pretrained` is where else
    a finished run is looked for (None: only `directory`); `weights=False` saves metrics and kernel
    snapshots only; `keep=False` neither looks for the run nor saves it (the result is returned).
    `identity`: the device, precision and keys the server decided (it has looked for the run
    already); None decides them here. A stop asked for after the last batch still saves nothing."""
    directory = runs_dir(directory)
    decided = identity is not None
    identity = identity or identify(cfg, dataset.fingerprint)
    if keep and not force and not decided and (found := find_run(identity.key, directory, pretrained)):
        return Outcome(found, cached=True)
    if reuse is None and not (force and not cfg.encoder_from):
        reuse = _autoencoder_for(cfg, identity.autoencoder_key, directory, source)
    result = run_experiment(cfg, dataset, on_progress, should_stop, on_epoch, reuse, identity.placed)
    if not result.cancelled and should_stop is not None and should_stop():
        result.cancelled = True
    if result.cancelled or not keep:
        return Outcome(None, cached=False, result=result)
    return Outcome(save_run(result, directory, weights=weights, keys=identity.keys), cached=False, result=result)


def _autoencoder_for(cfg: Config, ae_key: str, directory: Path, source: Run | None) -> ReusedAutoencoder | None:
    if source is not None and source.metrics.get("autoencoder_key") == ae_key:
        return reused_autoencoder(source)
    reuse = find_autoencoder(ae_key, directory)
    if reuse is None and cfg.encoder_from:
        raise RunError(
            f"The autoencoder this request starts from ({ae_key[:12]}…) is in none of the "
            "runs here; pass its run folder with --encoder-from."
        )
    return reuse


def evaluate_run(run: Run, dataset: Dataset, test_limit: int | None = None, device: str = "auto") -> dict:
    """Test MSE, test accuracy and per-class accuracy of a saved run, computed afresh."""
    if list(dataset.classes) != run.classes:
        raise RunError(
            f"The run was trained on classes {run.classes}, but this dataset has "
            f"{list(dataset.classes)}; evaluate it on the same kind of data."
        )
    dev = resolve_device(device)
    precision = run.metrics["precision"] if bf16_supported(dev) else "fp32"
    if test_limit is not None and test_limit < 0:
        raise RunError(f"test_limit must be 0 (the whole test split) or a positive number, got {test_limit}.")
    indices = balanced_subset(dataset.test.labels, test_limit or None, 0)  # 0: the whole split
    images, labels = to_device(dataset.test, indices, dev)
    out = {
        "test_mse": evaluate_autoencoder(run.autoencoder.to(dev), images, precision)
        if rebuilds(run.config.to_dict())
        else None,  # a contrastive run's decoder was never trained
        "test_acc": None,
        "per_class_acc": None,
    }
    if run.classifier is not None:
        scores = evaluate_classifier(run.classifier.to(dev), images, labels, precision)
        out.update(test_acc=scores["test_acc"], per_class_acc=dict(zip(run.classes, scores["per_class_acc"])))
    run.autoencoder.cpu()
    if run.classifier is not None:
        run.classifier.cpu()
    return out
