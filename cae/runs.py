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
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from cae import schema
from cae.config import Config, ConfigError, autoencoder_key, run_key
from cae.data import DataError
from cae.devices import DeviceError
from cae.files import WriteError, absolute, save_tensors, write_atomically
from cae.model import Classifier, ConvAutoencoder
from cae.train import ExperimentResult

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
AUTO = "auto"  # as `pretrained=`: $CAE_PRETRAINED, else the shipped pretrained/ folder
METRICS, AUTOENCODER, CLASSIFIER, KERNELS = "metrics.json", "autoencoder.pt", "classifier.pt", "kernels.pt"
SWEEP_PREFIX = "label-budget-"  # a folder of the runs folder holding one sweep's points (cae/budget.py)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


class RunError(Exception):
    """A run cannot be saved or loaded; the message names the file and what is wrong."""


# Errors a user can cause (a setting, a folder, a device, a run): one sentence, never a traceback.
USER_ERRORS = (ConfigError, DataError, DeviceError, RunError)


def check_writable(directory: str | os.PathLike | None = None) -> Path:
    """The runs folder, made if missing and known to take a file, before any training starts;
    RunError with a sentence when it cannot (a file in its place, no permission, a full disk)."""
    folder = runs_dir(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise RunError(
            f"Cannot write runs to {folder} ({exc.strerror or type(exc).__name__}); set CAE_RUNS or --runs to "
            "a writable folder with free space."
        ) from None
    return folder


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


def save_run(
    result: ExperimentResult,
    directory: Path,
    name: str | None = None,
    half: bool = False,
    weights: bool = True,
    keys: tuple[str, str] | None = None,
) -> Path:
    """Write a finished experiment as a run folder; atomic: a temporary folder, then a rename.
    Without `weights` only its metrics and kernel snapshots are kept (a label-budget point: its
    autoencoder is its source run's, found again by `load_run`). `keys`: (run key, autoencoder key)
    as the server decided them for the request (cae.experiment.Identity); None works them out here."""
    if result.cancelled:
        raise RunError("A cancelled experiment is not saved as a run.")
    m = result.metrics
    fingerprint = m["dataset"]["fingerprint"]
    key, ae_key = keys or (
        run_key(result.config, m["precision"], fingerprint),
        autoencoder_key(result.config, m["precision"], fingerprint),
    )
    m.update(
        run_key=key,
        name=name or run_name(result.config, key),
        autoencoder_key=ae_key,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    directory = absolute(directory)
    target = safe_run_path(directory, m["name"])
    try:
        write_atomically(target, lambda tmp: _write_files(tmp, result, half, weights))
    except WriteError as exc:
        raise RunError(
            f"Cannot write the run to {directory} ({exc}); set CAE_RUNS or --runs to a writable folder with free space."
        ) from None
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


MAX_METRICS_BYTES = 64 * 1024**2  # far above any run's (a long run's is under 1 MB)


def read_metrics(path: Path) -> dict:
    """A run's metrics.json, checked against the schema; RunError with a sentence naming the run's
    folder (never the server's path) for anything else: missing, a folder, unreadable, too large,
    not JSON, nested too deep, or not what the app reads."""
    file = Path(path) / METRICS
    shown = _shown(file)
    try:
        if file.stat().st_size > MAX_METRICS_BYTES:
            raise RunError(f"{shown} is larger than any run's ({file.stat().st_size:,} bytes); delete the run.")
        metrics = json.loads(file.read_text())
    except FileNotFoundError:
        raise RunError(f"{shown} is missing: this folder is not a run.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{shown} is damaged (not valid JSON: {exc}); delete the run and train again.") from None
    except RecursionError:
        raise RunError(f"{shown} is damaged (nested deeper than any run's); delete the run.") from None
    except OSError as exc:  # a folder named metrics.json, no permission...
        raise RunError(f"{shown} cannot be read ({type(exc).__name__}); delete the run and train again.") from None
    try:
        reason = schema.problem(metrics)
    except RecursionError:
        reason = "nested deeper than any run's"
    if reason:
        raise RunError(f"{shown} does not fit what the app reads: {reason}; delete the run and train again.")
    try:
        Config.from_dict(metrics["config"])
    except (ValueError, TypeError) as exc:
        raise RunError(f"{shown}: its config is not valid ({exc}).") from None
    return metrics


def _shown(file: Path) -> str:
    """A run file as a sentence names it: its run's folder and its name, never the server's path."""
    return f"{file.parent.name}/{file.name}"


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only: nothing in a run folder is ever unpickled as code
        return torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{_shown(file)} is missing.") from None
    except Exception as exc:
        raise RunError(
            f"{_shown(file)} is damaged and cannot be read ({type(exc).__name__}); delete the run and train again."
        ) from None


def _load_weights(model: torch.nn.Module, file: Path) -> torch.nn.Module:
    state = {k: v.float() if v.is_floating_point() else v for k, v in read_tensors(file).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(f"{_shown(file)} does not fit the model in metrics.json ({first}).") from None
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
    candidates = [p / source for p in places if p] + [f for p in places if p for f in run_folders(p)]
    for folder in candidates:
        try:
            if (
                folder != path
                and (folder / AUTOENCODER).exists()
                and read_metrics(folder).get("autoencoder_key") == metrics["autoencoder_key"]
            ):
                return folder / AUTOENCODER
        except (RunError, OSError):
            continue
    raise RunError(
        f"{own} is missing, and no run beside it holds its autoencoder "
        f"(the one trained by {metrics.get('autoencoder_source') or 'another run'})."
    )


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
    kernels = read_tensors(path / KERNELS)
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


def metrics_or_none(folder: Path) -> dict:
    try:
        return read_metrics(folder)
    except RunError:
        return {}


def is_sweep_folder(folder: Path) -> bool:
    """A label-budget sweep's folder in the runs folder (cae/budget.py): its points are runs."""
    return folder.name.startswith(SWEEP_PREFIX)


def run_folders(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".") and not is_sweep_folder(p)),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )


def sweep_points(directory: Path) -> list[Path]:
    """The run folders of every sweep point in the runs folder, newest sweep first."""
    if not directory.is_dir():
        return []
    sweeps = sorted(
        (p for p in directory.iterdir() if p.is_dir() and is_sweep_folder(p)),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    return [point for sweep in sweeps for point in sorted(run_folders(sweep))]


def list_runs(directory: str | os.PathLike | None = None, pretrained: Path | str | None = AUTO) -> list[RunInfo]:
    """Pretrained runs first (in index order), then the runs folder's, newest first.

    A damaged run is listed with its `error` so the app can say which one is broken."""
    infos = []
    pretrained = pretrained_dir(pretrained)
    index = pretrained_index(pretrained) if pretrained else {"runs": {}}
    shipped = run_folders(pretrained) if pretrained else []
    order = list(index.get("runs", {}))
    shipped.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
    own = runs_dir(directory)
    for folder, is_pretrained in [
        *((p, True) for p in shipped),
        *((p, False) for p in run_folders(own)),
        *((p, False) for p in sweep_points(own)),
    ]:
        meta = index.get("runs", {}).get(folder.name, {}) if is_pretrained else {}
        try:
            metrics, error = read_metrics(folder), None
        except RunError as exc:
            metrics, error = None, str(exc)
        infos.append(
            RunInfo(
                folder, meta.get("title") or folder.name, meta.get("description", ""), is_pretrained, metrics, error
            )
        )
    return infos


def find_run(key: str, directory: Path | None = None, pretrained: Path | str | None = AUTO) -> Path | None:
    """The folder of a sound run whose run_key is `key`, if any."""
    for info in list_runs(directory, pretrained):
        if info.metrics and info.metrics.get("run_key") == key:
            return info.path
    return None


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
