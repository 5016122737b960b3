"""The pages' longer computations, run by the worker (never by the web server): each takes a
payload of plain values and a dataset getter, and returns plain data."""

from __future__ import annotations

from typing import Callable

from cae.config import UPSAMPLE_MODES, Config

DatasetGetter = Callable[[str, str], object]  # (origin, fingerprint) -> Dataset


def evaluate(payload: dict, dataset_of: DatasetGetter) -> dict:
    """A saved run evaluated on another dataset: {"test_mse", "test_acc", "per_class_acc"}."""
    from cae.runs import evaluate_run, load_run

    return evaluate_run(load_run(payload["run"]), dataset_of(payload["origin"], payload["fingerprint"]))


def step_time(payload: dict, _dataset_of: DatasetGetter) -> float:
    """Seconds per MFLOP of one autoencoder training step here, for time estimates."""
    from cae.train import seconds_per_mflop

    return seconds_per_mflop(Config(**payload))


def layer_times(payload: dict, _dataset_of: DatasetGetter) -> dict:
    """One forward + backward per kind of layer, for each upsampling mode (the Overview's chart)."""
    from cae.explain import time_blocks
    from cae.model import ConvAutoencoder, seeded
    from cae.train import resolve_device

    cfg, device = Config(**payload), resolve_device("auto")
    return {mode: time_blocks(ConvAutoencoder.from_config(cfg.replace(upsample=mode), seeded(0)), device, 256)
            for mode in UPSAMPLE_MODES}


TASKS: dict[str, Callable[[dict, DatasetGetter], object]] = {
    "evaluate": evaluate, "step_time": step_time, "layer_times": layer_times}
