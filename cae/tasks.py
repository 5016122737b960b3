"""The pages' longer computations, run by the worker (never by the web server): each takes a
payload of plain values and a dataset getter, and returns plain data."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Callable

from cae.config import UPSAMPLE_MODES, Config

DatasetGetter = Callable[[str, str], object]  # (origin, fingerprint) -> Dataset


def evaluate(payload: dict, dataset_of: DatasetGetter) -> dict:
    """A saved run evaluated on another dataset: {"test_mse", "test_acc", "per_class_acc"}."""
    from cae.experiment import evaluate_run
    from cae.runs import load_run

    return evaluate_run(load_run(payload["run"]), dataset_of(payload["origin"], payload["fingerprint"]))


def step_time(payload: dict, _dataset_of: DatasetGetter) -> float:
    """Seconds per MFLOP of one autoencoder training step here, for time estimates."""
    from cae.timing import seconds_per_mflop

    return seconds_per_mflop(Config(**payload))


def layer_times(payload: dict, _dataset_of: DatasetGetter) -> dict:
    """One forward + backward per kind of layer, for each upsampling mode (the Overview's chart)."""
    from cae.devices import resolve_device
    from cae.model import ConvAutoencoder, seeded
    from cae.timing import time_blocks

    cfg, device = Config(**payload), resolve_device("auto")
    return {
        mode: time_blocks(ConvAutoencoder.from_config(cfg.replace(upsample=mode), seeded(0)), device, 256)
        for mode in UPSAMPLE_MODES
    }


# --- the Latent space page: cached per run and dataset under $CAE_CACHE/latent ----------------

LATENT_CACHE_VERSION = 1  # bump when a result's layout changes


def cache_file(kind: str, run, fingerprint: str) -> Path:
    """Where a result for this run (its name and its metrics' content) on this dataset is kept:
    under $CAE_CACHE, never inside the run's folder (a shipped run's folder may be read-only)."""
    from cae.data import cache_dir

    metrics = (run.path / "metrics.json").read_bytes()
    key = hashlib.sha256(
        b"|".join(
            [
                kind.encode(),
                run.name.encode(),
                hashlib.sha256(metrics).digest(),
                fingerprint.encode(),
                str(LATENT_CACHE_VERSION).encode(),
            ]
        )
    ).hexdigest()
    return cache_dir() / "latent" / f"{kind}-{key[:24]}.pt"


def cached(kind: str, run, dataset, compute: Callable[[], dict]) -> dict:
    """The stored result when there is one, else `compute()` stored for next time (a cache that
    cannot be written only makes the next view slower)."""
    import torch

    from cae.files import WriteError, save_tensors, write_atomically

    path = cache_file(kind, run, dataset.fingerprint)
    try:
        return torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        pass
    result = compute()
    try:
        write_atomically(path, lambda tmp: save_tensors(result, tmp), folder=False)
    except WriteError:
        pass
    return result


def representation_probe(run, dataset):
    """The fixed subsets a run's code is measured on: drawn from the run's own training and test
    images when `dataset` is the run's data, else from the whole of `dataset`'s splits."""
    import torch

    from cae.latent import RepresentationProbe
    from cae.plan import experiment_indices

    if run.metrics["dataset"]["fingerprint"] == dataset.fingerprint:
        train_idx, test_idx = experiment_indices(run.config, dataset)
    else:
        train_idx, test_idx = torch.arange(len(dataset.train)), torch.arange(len(dataset.test))
    return RepresentationProbe.of(dataset, train_idx, test_idx)


def map_and_neighbours(payload: dict, dataset_of: DatasetGetter) -> dict:
    """The Latent space page's map, neighbours, random codes and layer activity (`cae.latent.explore`)."""
    from cae.latent import explore
    from cae.runs import load_run

    run, dataset = load_run(payload["run"]), dataset_of(payload["origin"], payload["fingerprint"])
    return cached(
        "latent_map", run, dataset, lambda: explore(run.autoencoder, dataset, representation_probe(run, dataset))
    )


def representation(payload: dict, dataset_of: DatasetGetter) -> dict:
    """k-NN and linear-probe accuracy of pixels, the initial encoder, the code and the fine-tuned
    features (`cae.latent.quality`)."""
    from cae.latent import feature_functions, quality
    from cae.model import ConvAutoencoder, seeded
    from cae.runs import load_run

    run, dataset = load_run(payload["run"]), dataset_of(payload["origin"], payload["fingerprint"])
    initial = ConvAutoencoder.from_config(run.config, seeded(run.config.seed))
    features = feature_functions(run.autoencoder, initial, run.classifier)
    return cached("representation", run, dataset, lambda: quality(representation_probe(run, dataset), features))


def decode_upload(payload: dict, _dataset_of: DatasetGetter) -> dict:
    """An uploaded folder's pictures decoded here, in the worker, into the cache the web server
    then reads without decoding anything: {"train": n, "test": m}."""
    from cae.data import load_dataset

    dataset = load_dataset(payload["origin"], download=False)
    return {"train": len(dataset.train), "test": len(dataset.test)}


TASKS: dict[str, Callable[[dict, DatasetGetter], object]] = {
    "decode_upload": decode_upload,
    "evaluate": evaluate,
    "step_time": step_time,
    "layer_times": layer_times,
    "latent_map": map_and_neighbours,
    "representation": representation,
}
