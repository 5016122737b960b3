"""Plain-language summaries of a run: which start won, and the lecture's numbers side by side."""

from __future__ import annotations

import math

# The lecture's printed numbers (lecture/SPEC.md). Its losses were divided by 30 batches where
# CIFAR-10 has 25, so a true mean is the printed value x 30/25.
LECTURE_AE_PRINTED = [0.148075, 0.052894, 0.038849, 0.025858, 0.024]
LECTURE_AE_SECONDS = [21, 22, 25, 25, 25]
LECTURE_CLF_PRINTED = [1.665522, 1.351660, 1.206775, 1.113829, 1.042636]
LECTURE_CLF_ACC = [38.230, 45.760, 50.100, 52.130, 55.720]
LECTURE_CLF_SECONDS = [3, 3, 3, 3, 3]
PRINTED_TO_TRUE = 30 / 25


def duration(seconds: float) -> str:
    """"3m 56s"; "…" while not known (NaN)."""
    if seconds != seconds:
        return "…"
    return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"


def _acc(rows: list[dict], epoch: int) -> float | None:
    return next((r["test_acc"] for r in rows if r["epoch"] == epoch), None)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_images(metrics: dict) -> int | None:
    """How many test images a run's accuracies rest on (its test subset, else the whole split)."""
    size = (metrics.get("dataset") or {}).get("test_size")
    limit = (metrics.get("config") or {}).get("test_limit")
    return min(size, limit) if size and limit else size


def standard_error(accuracy: float, n: int) -> float:
    """One standard error of a test accuracy (percent) measured on n images (binomial)."""
    p = min(max(accuracy / 100, 0.0), 1.0)
    return 100 * math.sqrt(p * (1 - p) / max(n, 1))


def pretraining_verdict(metrics: dict) -> str:
    """Which start was ahead at epoch 1 and at the end, by how much, and whether the gap is larger
    than the noise of a test accuracy on this many test images."""
    pre = metrics.get("classifier") or []
    scratch = (metrics.get("scratch") or {}).get("classifier") or []
    if not pre:
        return "This run trained the autoencoder only; there is no classifier to compare."
    if not scratch:
        return (f"Fine-tuned from the autoencoder: {pre[-1]['test_acc']:.1f}% test accuracy after "
                f"{pre[-1]['epoch']} epochs (no scratch baseline in this run).")
    n = test_images(metrics)
    parts = []
    last = min(pre[-1]["epoch"], scratch[-1]["epoch"])
    for epoch, when in ((1, "after epoch 1"), (last, f"after the last epoch ({last})")):
        parts.append(_compare(when, _acc(pre, epoch), _acc(scratch, epoch), n))
        if epoch == pre[-1]["epoch"]:
            break
    text = "; ".join(parts)
    basis = f" Measured on {n:,} test images." if n else ""
    return text[0].upper() + text[1:] + "." + basis


def _compare(when: str, a: float, b: float, n: int | None) -> str:
    gap = a - b
    noise = standard_error((a + b) / 2, n) if n else 0.0
    if abs(gap) < max(noise, 0.05):
        return (f"{when}, the two starts are within noise ({a:.1f}% pretrained vs {b:.1f}% scratch; "
                f"one standard error is about ±{noise:.1f} points)")
    if gap > 0:
        return f"{when}, the pretrained encoder leads by {gap:.1f} points ({a:.1f}% vs {b:.1f}%)"
    return (f"{when}, pretraining does not help: random init is ahead by {-gap:.1f} points "
            f"({b:.1f}% vs {a:.1f}%)")


def lecture_autoencoder_rows(metrics: dict) -> list[dict]:
    """Per epoch: the lecture's printed loss and its true mean, and this run's train/test MSE."""
    rows = []
    for i, r in enumerate(metrics.get("autoencoder") or []):
        lecture = LECTURE_AE_PRINTED[i] if i < len(LECTURE_AE_PRINTED) else None
        rows.append({"epoch": r["epoch"],
                     "lecture printed loss": lecture,
                     "lecture true MSE (x30/25)": None if lecture is None else lecture * PRINTED_TO_TRUE,
                     "lecture s/epoch": LECTURE_AE_SECONDS[i] if i < 5 else None,
                     "this run train MSE": r["train_mse"], "this run test MSE": r["test_mse"],
                     "this run s/epoch": r["seconds"]})
    return rows


def lecture_classifier_rows(metrics: dict) -> list[dict]:
    """Per epoch: the lecture's loss and accuracy beside this run's, pretrained and scratch."""
    scratch = {r["epoch"]: r for r in (metrics.get("scratch") or {}).get("classifier") or []}
    rows = []
    for i, r in enumerate(metrics.get("classifier") or []):
        s = scratch.get(r["epoch"], {})
        rows.append({"epoch": r["epoch"],
                     "lecture printed loss": LECTURE_CLF_PRINTED[i] if i < 5 else None,
                     "lecture test acc %": LECTURE_CLF_ACC[i] if i < 5 else None,
                     "pretrained train loss": r["train_loss"], "pretrained test acc %": r["test_acc"],
                     "scratch train loss": s.get("train_loss"), "scratch test acc %": s.get("test_acc"),
                     "s/epoch": r["seconds"]})
    return rows


def best_and_worst(per_class: dict[str, float]) -> tuple[tuple[str, float], tuple[str, float]] | None:
    if not per_class:
        return None
    ordered = sorted(per_class.items(), key=lambda kv: kv[1])
    return ordered[-1], ordered[0]


def saturation(rows: list[dict], within: float = 1.0) -> dict | None:
    """Best test accuracy and its epoch, and the first epoch within `within` points of it."""
    if not rows:
        return None
    best = max(rows, key=lambda r: r["test_acc"])
    first = next(r for r in rows if r["test_acc"] >= best["test_acc"] - within)
    return {"best_acc": best["test_acc"], "best_epoch": best["epoch"], "within_epoch": first["epoch"]}
