"""A run on disk: config + weights + metrics + kernel snapshots, saved atomically, loaded safely.

Layout of a run folder:
    metrics.json      config, histories, per-class accuracy, confusion, device, precision, dataset
    autoencoder.pt    state_dict (torch.save; read back only with weights_only=True)
    classifier.pt     the fine-tuned classifier's state_dict, when one was trained
    kernels.pt        first-layer kernel snapshots {name: (64,3,3,3)}: initial, autoencoder, finetuned,
                      scratch; and per epoch (newer runs) {phase_epochs: (epochs,64,3,3,3)}

A label-budget sweep run from the app keeps its points in runs/label-budget-<source>-<data>/: each
point is a run folder with metrics.json and kernels.pt only; its autoencoder is its source run's.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from cae import schema
from cae.config import Config, ConfigError, autoencoder_key, run_key
from cae.data import DataError, Dataset
from cae.files import WriteError, absolute, save_tensors, write_atomically
from cae.model import Classifier, ConvAutoencoder
from cae.train import (
    DeviceError,
    ExperimentResult,
    ReusedAutoencoder,
    resolve_device,
    resolve_precision,
    run_experiment,
)

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
AUTO = "auto"  # as `pretrained=`: $CAE_PRETRAINED, else the shipped pretrained/ folder
METRICS, AUTOENCODER, CLASSIFIER, KERNELS = "metrics.json", "autoencoder.pt", "classifier.pt", "kernels.pt"
SWEEP_PREFIX = "label-budget-"  # a folder of the runs folder holding one sweep's points (cae/budget.py)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


class RunError(Exception):
    """A run cannot be saved or loaded; the message names the file and what is wrong."""


# Errors a user can cause (a setting, a folder, a device, a run): one sentence, never a traceback.
USER_ERRORS = (ConfigError, DataError, DeviceError, RunError)


@dataclass
class Run:
    """A loaded run; models are in eval mode on the CPU."""

    path: Path
    config: Config
    metrics: dict
    autoencoder: ConvAutoencoder
    classifier: Classifier | None
    kernels: dict[str, torch.Tensor]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def classes(self) -> list[str]:
        return list(self.metrics["dataset"]["classes"])


@dataclass
class RunInfo:
    """One entry of `list_runs`: enough for a picker, without loading weights."""

    path: Path
    title: str
    description: str
    pretrained: bool
    metrics: dict | None  # None when damaged
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def pretrained_dir(explicit: Path | str | None = AUTO) -> Path | None:
    """The read-only folder of shipped runs: an explicit path, None for none, or (AUTO) $CAE_PRETRAINED
    else pretrained/ in the repository."""
    if explicit == AUTO:
        return absolute(os.environ.get("CAE_PRETRAINED") or PRETRAINED_DIR)
    return absolute(explicit) if explicit else None


def runs_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The runs folder, absolute: an explicit argument, else $CAE_RUNS, else ./runs."""
    return absolute(explicit or os.environ.get("CAE_RUNS") or "runs")


def run_name(cfg: Config, key: str) -> str:
    """Readable prefix plus the hash that makes the same request find the same run."""
    transfer = "-transfer" if cfg.encoder_from else ""
    return f"z{cfg.latent_dim}-{cfg.upsample}-ae{cfg.ae_epochs}-clf{cfg.clf_epochs}{transfer}-{key[:12]}"


def safe_run_path(parent: Path, name: str) -> Path:
    """parent/name, refusing any name that could leave `parent` (slashes, '..', odd characters)."""
    if not SAFE_NAME.match(name) or ".." in name:
        raise RunError(f"{name!r} is not a valid run name (letters, digits, '.', '_' and '-').")
    path = (parent / name).resolve()
    if path.parent != parent.resolve():
        raise RunError(f"{name!r} is not a valid run name.")
    return path


# --- saving ---------------------------------------------------------------------------------

def save_run(result: ExperimentResult, directory: Path, name: str | None = None,
             half: bool = False, weights: bool = True) -> Path:
    """Write a finished experiment as a run folder; atomic: a temporary folder, then a rename.
    Without `weights` only its metrics and kernel snapshots are kept (a label-budget point: its
    autoencoder is its source run's, found again by `load_run`)."""
    if result.cancelled:
        raise RunError("A cancelled experiment is not saved as a run.")
    m = result.metrics
    key = run_key(result.config, m["precision"], m["dataset"]["fingerprint"])
    m.update(run_key=key, name=name or run_name(result.config, key),
             autoencoder_key=autoencoder_key(result.config, m["precision"], m["dataset"]["fingerprint"]),
             created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    directory = absolute(directory)
    target = safe_run_path(directory, m["name"])
    try:
        write_atomically(target, lambda tmp: _write_files(tmp, result, half, weights))
    except WriteError as exc:
        raise RunError(f"Cannot write the run to {directory} ({exc}); set CAE_RUNS or --runs to a "
                       "writable folder with free space.") from None
    return target



def _write_files(folder: Path, result: ExperimentResult, half: bool, with_weights: bool = True) -> None:
    def weights(model):
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}

    if with_weights:
        save_tensors(weights(result.autoencoder), folder / AUTOENCODER)
    if with_weights and result.classifier is not None:
        save_tensors(weights(result.classifier), folder / CLASSIFIER)
    save_tensors({k: v.contiguous() for k, v in result.kernels.items()}, folder / KERNELS)
    (folder / METRICS).write_text(json.dumps(result.metrics, indent=1))


# --- loading --------------------------------------------------------------------------------

def read_metrics(path: Path) -> dict:
    file = Path(path) / METRICS
    try:
        metrics = json.loads(file.read_text())
    except FileNotFoundError:
        raise RunError(f"{file} is missing: this folder is not a run.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{file} is damaged (not valid JSON: {exc}); delete the run and train again.") from None
    if reason := schema.problem(metrics):
        raise RunError(f"{file} does not fit what the app reads: {reason}; delete the run and train again.")
    try:
        Config.from_dict(metrics["config"])
    except (ValueError, TypeError) as exc:
        raise RunError(f"{file}: its config is not valid ({exc}).") from None
    return metrics


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only: nothing in a run folder is ever unpickled as code
        return torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{file} is missing.") from None
    except Exception as exc:
        raise RunError(f"{file} is damaged and cannot be read ({type(exc).__name__}); "
                       "delete the run and train again.") from None


def _load_weights(model: torch.nn.Module, file: Path) -> torch.nn.Module:
    state = {k: v.float() if v.is_floating_point() else v for k, v in _read_tensors(file).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(f"{file} does not fit the model in metrics.json ({first}).") from None
    return model.eval()


def autoencoder_file(path: Path, metrics: dict) -> Path:
    """The run's autoencoder weights: its own file, or, for a run stored without them, the file of
    a run with the same autoencoder key: beside it (two shipped runs share one autoencoder), or,
    for a label-budget point, in the runs folder above its sweep folder or among the shipped runs."""
    own = path / AUTOENCODER
    if own.exists() or not metrics.get("autoencoder_key"):
        return own
    places = [path.parent] + ([path.parent.parent, pretrained_dir()] if is_sweep_folder(path.parent) else [])
    source = str(metrics.get("autoencoder_source"))
    candidates = [p / source for p in places if p] + [f for p in places if p for f in _run_folders(p)]
    for folder in candidates:
        try:
            if folder != path and (folder / AUTOENCODER).exists() and \
                    read_metrics(folder).get("autoencoder_key") == metrics["autoencoder_key"]:
                return folder / AUTOENCODER
        except (RunError, OSError):
            continue
    raise RunError(f"{own} is missing, and no run beside it holds its autoencoder "
                   f"(the one trained by {metrics.get('autoencoder_source') or 'another run'}).")


def load_run(path: str | os.PathLike) -> Run:
    """Load a run folder; raises RunError naming the file when something is missing or damaged."""
    path = Path(path)
    metrics = read_metrics(path)
    try:
        config = Config.from_dict(metrics["config"])
    except (ValueError, TypeError) as exc:
        raise RunError(f"{path / METRICS}: its config is not valid ({exc}).") from None
    n_classes = len(metrics["dataset"]["classes"])
    autoencoder = _load_weights(ConvAutoencoder.from_config(config), autoencoder_file(path, metrics))
    classifier = None
    if (path / CLASSIFIER).exists():
        classifier = _load_weights(Classifier.from_config(config, n_classes), path / CLASSIFIER)
    kernels = _read_tensors(path / KERNELS)
    return Run(path, config, metrics, autoencoder, classifier, kernels)


def default_pretrained_run() -> Path | None:
    """The shipped default run (the Lecture preset): in $CAE_PRETRAINED's folder when it has one,
    else in the repository's pretrained/ (the lecture's steps always have their numbers)."""
    for folder in dict.fromkeys(absolute(f) for f in (pretrained_dir(), PRETRAINED_DIR)):
        name = pretrained_index(folder).get("default")
        if name and (folder / name / METRICS).exists():
            return folder / name
    return None


def pretrained_index(directory: Path | str | None = AUTO) -> dict:
    """pretrained/index.json: {"default": name, "runs": {name: {"title", "description"}}}."""
    directory = pretrained_dir(directory)
    try:
        return json.loads((directory / "index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {"default": None, "runs": {}}


def _metrics_or_none(folder: Path) -> dict:
    try:
        return read_metrics(folder)
    except RunError:
        return {}


def is_sweep_folder(folder: Path) -> bool:
    """A label-budget sweep's folder in the runs folder (cae/budget.py): its points are runs."""
    return folder.name.startswith(SWEEP_PREFIX)


def _run_folders(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir()
                   if p.is_dir() and not p.name.startswith(".") and not is_sweep_folder(p)),
                  key=lambda p: p.stat().st_mtime, reverse=True)


def sweep_points(directory: Path) -> list[Path]:
    """The run folders of every sweep point in the runs folder, newest sweep first."""
    if not directory.is_dir():
        return []
    sweeps = sorted((p for p in directory.iterdir() if p.is_dir() and is_sweep_folder(p)),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    return [point for sweep in sweeps for point in sorted(_run_folders(sweep))]


def list_runs(directory: str | os.PathLike | None = None,
              pretrained: Path | str | None = AUTO) -> list[RunInfo]:
    """Pretrained runs first (in index order), then the runs folder's, newest first.

    A damaged run is listed with its `error` so the app can say which one is broken."""
    infos = []
    pretrained = pretrained_dir(pretrained)
    index = pretrained_index(pretrained) if pretrained else {"runs": {}}
    shipped = _run_folders(pretrained) if pretrained else []
    order = list(index.get("runs", {}))
    shipped.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
    own = runs_dir(directory)
    for folder, is_pretrained in [*((p, True) for p in shipped), *((p, False) for p in _run_folders(own)),
                                  *((p, False) for p in sweep_points(own))]:
        meta = index.get("runs", {}).get(folder.name, {}) if is_pretrained else {}
        try:
            metrics, error = read_metrics(folder), None
        except RunError as exc:
            metrics, error = None, str(exc)
        infos.append(RunInfo(folder, meta.get("title") or folder.name, meta.get("description", ""),
                             is_pretrained, metrics, error))
    return infos


def find_run(key: str, directory: Path | None = None, pretrained: Path | str | None = AUTO) -> Path | None:
    """The folder of a sound run whose run_key is `key`, if any."""
    for info in list_runs(directory, pretrained):
        if info.metrics and info.metrics.get("run_key") == key:
            return info.path
    return None


def find_autoencoder(key: str, directory: Path | None = None,
                     pretrained: Path | str | None = AUTO) -> ReusedAutoencoder | None:
    """A trained autoencoder from any run with this autoencoder key; runs of the runs folder
    (full-precision weights) before shipped ones (stored in fp16)."""
    for info in sorted(list_runs(directory, pretrained), key=lambda i: i.pretrained):
        if info.metrics and info.metrics.get("autoencoder_key") == key:
            try:
                return reused_autoencoder(load_run(info.path))
            except RunError:
                continue
    return None


def reused_autoencoder(run: Run) -> ReusedAutoencoder:
    """A run's trained autoencoder, to start another run from; names the run that trained it."""
    m = run.metrics
    return ReusedAutoencoder(run.autoencoder, m["autoencoder"],
                             {k: v for k, v in run.kernels.items() if k in ("initial", "autoencoder",
                                                                            "autoencoder_epochs")},
                             m.get("autoencoder_source") or run.name,
                             m.get("pretraining_dataset") or m["dataset"], m.get("representation"))


def transfer_config(source: Run, **changes) -> Config:
    """A request that fine-tunes `source`'s encoder on other data: the source's model, its
    autoencoder named by key, and the classifier settings in `changes`. The training subsets are
    the whole data in use unless `changes` say otherwise."""
    if not source.metrics.get("autoencoder_key"):
        raise RunError(f"{source.name} has no autoencoder key; it was not written by this version.")
    base = {"limit": None, "test_limit": None, **changes}
    return source.config.replace(encoder_from=source.metrics["autoencoder_key"], **base)


# --- the one entry point for training ---------------------------------------------------------

@dataclass
class Outcome:
    """What `train_or_load` did: the run folder, and whether it was found rather than trained."""

    path: Path | None
    cached: bool
    result: ExperimentResult | None = None

    @property
    def cancelled(self) -> bool:
        return self.result is not None and self.result.cancelled


def request_keys(cfg: Config, dataset: Dataset) -> tuple[str, str]:
    """(run_key, autoencoder_key) of a request, with the precision resolved on this machine."""
    precision = resolve_precision(cfg.precision, resolve_device(cfg.device))
    return (run_key(cfg, precision, dataset.fingerprint),
            autoencoder_key(cfg, precision, dataset.fingerprint))


def train_or_load(cfg: Config, dataset: Dataset, directory: Path | None = None, force: bool = False,
                  on_progress: Callable | None = None, should_stop: Callable[[], bool] | None = None,
                  on_epoch: Callable | None = None, source: Run | None = None) -> Outcome:
    """Find the run for this request, or train it (reusing a matching autoencoder) and save it.

    A transfer request (`cfg.encoder_from`) starts from that autoencoder: `source` when given (the
    CLI's --encoder-from), else the run that holds it among the runs."""
    directory = runs_dir(directory)
    key, ae_key = request_keys(cfg, dataset)
    if not force and (found := find_run(key, directory)):
        return Outcome(found, cached=True)
    reuse = None if force and not cfg.encoder_from else _autoencoder_for(cfg, ae_key, directory, source)
    result = run_experiment(cfg, dataset, on_progress, should_stop, on_epoch, reuse)
    if result.cancelled:
        return Outcome(None, cached=False, result=result)
    return Outcome(save_run(result, directory), cached=False, result=result)


def _autoencoder_for(cfg: Config, ae_key: str, directory: Path, source: Run | None) -> ReusedAutoencoder | None:
    if source is not None and source.metrics.get("autoencoder_key") == ae_key:
        return reused_autoencoder(source)
    reuse = find_autoencoder(ae_key, directory)
    if reuse is None and cfg.encoder_from:
        raise RunError(f"The autoencoder this request starts from ({ae_key[:12]}…) is in none of the "
                       "runs here; pass its run folder with --encoder-from.")
    return reuse


def delete_run(path: Path) -> None:
    """Remove a run of the runs folder; shipped runs are read-only."""
    if Path(path).resolve().parent in (PRETRAINED_DIR.resolve(), pretrained_dir().resolve()):
        raise RunError("Pretrained runs are part of the app and cannot be deleted.")
    shutil.rmtree(path)


def zip_run(path: Path) -> bytes:
    """The run folder as a zip archive, for download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(Path(path).iterdir()):
            if file.is_file():
                archive.write(file, f"{Path(path).name}/{file.name}")
    return buffer.getvalue()


def evaluate_run(run: Run, dataset: Dataset, test_limit: int | None = None, device: str = "auto") -> dict:
    """Test MSE, test accuracy and per-class accuracy of a saved run, computed afresh."""
    from cae.data import balanced_subset, to_device
    from cae.train import bf16_supported, evaluate_autoencoder, evaluate_classifier

    if list(dataset.classes) != run.classes:
        raise RunError(f"The run was trained on classes {run.classes}, but this dataset has "
                       f"{list(dataset.classes)}; evaluate it on the same kind of data.")
    dev = resolve_device(device)
    precision = run.metrics["precision"] if bf16_supported(dev) else "fp32"
    if test_limit is not None and test_limit < 0:
        raise RunError(f"test_limit must be 0 (the whole test split) or a positive number, got {test_limit}.")
    indices = balanced_subset(dataset.test.labels, test_limit or None, 0)  # 0: the whole split
    images, labels = to_device(dataset.test, indices, dev)
    out = {"test_mse": evaluate_autoencoder(run.autoencoder.to(dev), images, precision),
           "test_acc": None, "per_class_acc": None}
    if run.classifier is not None:
        scores = evaluate_classifier(run.classifier.to(dev), images, labels, precision)
        out.update(test_acc=scores["test_acc"], per_class_acc=dict(zip(run.classes, scores["per_class_acc"])))
    run.autoencoder.cpu()
    if run.classifier is not None:
        run.classifier.cpu()
    return out


def export_run(source: Path, directory: Path, half: bool = True) -> Path:
    """Copy a run into another folder (e.g. pretrained/), storing weights in fp16 when `half`; when
    a run there already holds the same autoencoder, its weights are not stored twice (`load_run`
    finds them there)."""
    source, target = Path(source), safe_run_path(absolute(directory), Path(source).name)
    key = read_metrics(source).get("autoencoder_key")
    shared = key and any(folder != target and (folder / AUTOENCODER).exists()
                         and _metrics_or_none(folder).get("autoencoder_key") == key
                         for folder in _run_folders(absolute(directory)))

    def fill(tmp: Path) -> None:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if shared:
            (tmp / AUTOENCODER).unlink()
        for name in (AUTOENCODER, CLASSIFIER) if half else ():
            if (tmp / name).exists():
                state = _read_tensors(tmp / name)
                save_tensors({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, tmp / name)

    try:
        return write_atomically(target, fill)
    except WriteError as exc:
        raise RunError(f"Cannot copy the run to {directory} ({exc}).") from None
