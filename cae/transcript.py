"""What the lecture printed (../shared/lecture/SPEC.md), in one place, and a run's numbers beside it."""

from __future__ import annotations

# The lecture's printed numbers (../shared/lecture/SPEC.md). Its losses were divided by 30 batches where
# CIFAR-10 has 25, so a true mean is the printed value x 30/25.
LECTURE_AE_PRINTED = [0.148075, 0.052894, 0.038849, 0.025858, 0.024]
LECTURE_AE_SECONDS = [21, 22, 25, 25, 25]
LECTURE_CLF_PRINTED = [1.665522, 1.351660, 1.206775, 1.113829, 1.042636]
LECTURE_CLF_ACC = [38.230, 45.760, 50.100, 52.130, 55.720]
PRINTED_TO_TRUE = 30 / 25


def lecture_autoencoder_rows(metrics: dict) -> list[dict]:
    """Per epoch: the lecture's printed loss and its true mean, and this run's train/test MSE."""
    rows = []
    for i, r in enumerate(metrics.get("autoencoder") or []):
        lecture = LECTURE_AE_PRINTED[i] if i < len(LECTURE_AE_PRINTED) else None
        rows.append(
            {
                "epoch": r["epoch"],
                "lecture printed loss": lecture,
                "lecture true MSE (x30/25)": None if lecture is None else lecture * PRINTED_TO_TRUE,
                "lecture s/epoch": LECTURE_AE_SECONDS[i] if i < 5 else None,
                "this run train MSE": r["train_mse"],
                "this run test MSE": r["test_mse"],
                "this run s/epoch": r["seconds"],
            }
        )
    return rows


def lecture_classifier_rows(metrics: dict) -> list[dict]:
    """Per epoch: the lecture's loss and accuracy beside this run's, pretrained and scratch."""
    scratch = {r["epoch"]: r for r in (metrics.get("scratch") or {}).get("classifier") or []}
    rows = []
    for i, r in enumerate(metrics.get("classifier") or []):
        s = scratch.get(r["epoch"], {})
        rows.append(
            {
                "epoch": r["epoch"],
                "lecture printed loss": LECTURE_CLF_PRINTED[i] if i < 5 else None,
                "lecture test acc %": LECTURE_CLF_ACC[i] if i < 5 else None,
                "pretrained train loss": r["train_loss"],
                "pretrained test acc %": r["test_acc"],
                "scratch train loss": s.get("train_loss"),
                "scratch test acc %": s.get("test_acc"),
                "s/epoch": r["seconds"],
            }
        )
    return rows
