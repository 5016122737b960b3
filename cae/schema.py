"""The shape of a run's metrics.json: every field a page formats, with its type. A run whose
metrics do not fit is listed as damaged (like a run with broken weights) instead of breaking a page
for every user; `problem` says which field in one sentence."""

from __future__ import annotations

from typing import Any

NUMBER = "number"  # int or float, never bool or text
OPTIONAL = "optional"  # a marker: (OPTIONAL, spec) also accepts null


class Each:
    """A mapping of any keys (class names) to values of one spec."""

    def __init__(self, spec: Any):
        self.spec = spec


# a reconstruction epoch has train_mse and test_mse; a contrastive one (cae/contrastive.py) train_loss (NT-Xent)
EPOCH_AE = {
    "epoch": int,
    "train_mse": NUMBER,
    "test_mse": NUMBER,
    "train_loss": NUMBER,
    "seconds": NUMBER,
    "knn_acc": (OPTIONAL, NUMBER),
}
EPOCH_CLF = {"epoch": int, "train_loss": NUMBER, "test_acc": NUMBER, "seconds": NUMBER}
DATASET = {
    "name": str,
    "classes": [str],
    "fingerprint": str,
    "origin": (OPTIONAL, str),
    "train_size": int,
    "test_size": int,
}
CLASSIFIER = {"classifier": [EPOCH_CLF], "confusion": [[int]], "per_class_acc": Each(NUMBER)}
METRICS = {
    "name": str,
    "created": str,
    "device": str,
    "precision": str,
    "torch": str,
    "run_key": str,
    "autoencoder_key": str,
    "autoencoder_source": (OPTIONAL, str),
    "seconds_total": NUMBER,
    "config": dict,
    "dataset": DATASET,
    "pretraining_dataset": DATASET,
    "autoencoder": [EPOCH_AE],
    **CLASSIFIER,
    "scratch": CLASSIFIER,
    "representation": {
        "k": int,
        "metric": str,
        "seed": int,
        "train_size": int,
        "test_size": int,
        "pixels_knn": NUMBER,
        "initial_knn": NUMBER,
    },
}
REQUIRED = ("config", "autoencoder", "dataset", "precision")


def problem(metrics: Any) -> str | None:
    """None when `metrics` fits METRICS (fields it lacks are fine, except REQUIRED), else which
    field does not, in words."""
    if not isinstance(metrics, dict):
        return "it is not a JSON object"
    for field in REQUIRED:
        if field not in metrics:
            return f"it has no {field!r} entry; it was not written by this version"
    return _check(metrics, METRICS, "")


def _check(value: Any, spec: Any, where: str) -> str | None:
    if isinstance(spec, tuple) and spec and spec[0] == OPTIONAL:
        return None if value is None else _check(value, spec[1], where)
    if spec == NUMBER:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else _wrong(where, "a number", value)
    if isinstance(spec, type):
        ok = isinstance(value, spec) and not (spec is int and isinstance(value, bool))
        return None if ok else _wrong(where, spec.__name__, value)
    if isinstance(spec, list):
        if not isinstance(value, list):
            return _wrong(where, "a list", value)
        return next((p for i, item in enumerate(value) if (p := _check(item, spec[0], f"{where}[{i}]"))), None)
    if isinstance(spec, Each):
        if not isinstance(value, dict):
            return _wrong(where, "an object", value)
        return next((p for k, v in value.items() if (p := _check(v, spec.spec, f"{where}.{k}"))), None)
    if not isinstance(value, dict):
        return _wrong(where, "an object", value)
    return next((p for k, sub in spec.items() if k in value and (p := _check(value[k], sub, f"{where}.{k}"))), None)


def _wrong(where: str, expected: str, value: Any) -> str:
    shown = repr(value) if len(repr(value)) <= 40 else f"{type(value).__name__}"
    return f"{where.lstrip('.') or 'it'} should be {expected}, not {shown}"
