"""What a run's numbers show, before any words: pretrained against scratch (by the seeds' spread
or the test images' noise), the best and worst class, where accuracy saturates, a sweep's
comparison rule. cae/report.py and the pages say these in sentences."""

from __future__ import annotations

from cae.evidence import Verdict, compare_accuracies, compare_seeds
from cae.words import test_images


def accuracy_at(rows: list[dict], epoch: int) -> float | None:
    """The test accuracy a classifier history recorded after `epoch`, or None."""
    return next((r["test_acc"] for r in rows if r["epoch"] == epoch), None)


def seed_values(seeds: list[dict], phase: str, epoch: int) -> list[float]:
    """Every seed's test accuracy at `epoch` of a phase ("classifier" or "scratch")."""
    rows = [
        (s.get("scratch") or {}).get("classifier", []) if phase == "scratch" else s.get("classifier", []) for s in seeds
    ]
    return [a for r in rows if (a := accuracy_at(r, epoch)) is not None]


def pretraining_comparison(metrics: dict, seeds: list[dict] | None = None) -> list[tuple[str, Verdict, float, float]]:
    """(when, verdict, fine-tuned %, scratch %) after epoch 1 and after the last epoch: decided by the
    seeds' spread where `seeds` (several seeds of this run's recipe) are given, else by the test-set
    rule for this run's one seed."""
    pre = metrics.get("classifier") or []
    scratch = (metrics.get("scratch") or {}).get("classifier") or []
    if not pre or not scratch:
        return []
    last = min(pre[-1]["epoch"], scratch[-1]["epoch"])
    out = []
    for epoch, when in ((1, "after epoch 1"), (last, f"after the last epoch ({last})")):
        a, b = accuracy_at(pre, epoch), accuracy_at(scratch, epoch)
        if a is None or b is None:  # a phase that did not record this epoch
            continue
        ours, theirs = (
            (seed_values(seeds, "classifier", epoch), seed_values(seeds, "scratch", epoch)) if seeds else ([], [])
        )
        if min(len(ours), len(theirs)) > 1:
            verdict = compare_seeds(ours, theirs)
        else:
            verdict = compare_accuracies(a, b, test_images(metrics) or 1)
        out.append((when, verdict, a, b))
        if epoch == last:
            break
    return out


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


def per_class_counts(metrics: dict) -> dict[str, int]:
    """Test images per class (the confusion matrix's row sums), or {} when the run has no matrix."""
    classes = (metrics.get("dataset") or {}).get("classes") or []
    confusion = metrics.get("confusion") or []
    return {c: int(sum(row)) for c, row in zip(classes, confusion)} if len(confusion) == len(classes) else {}


ACCURACY_TEST_IMAGES = {"knn": "probe", "probe": "probe", "test_acc": "split"}  # what an accuracy rests on


def sweep_comparison(groups: dict, measure: str, n_split: int):
    """`compare` for `leaders` over a sweep's settings: the seeds rule where both settings ran two
    seeds or more, else, for an accuracy, two accuracies on its test images (the probe's 1,000 for
    k-NN and probe, the whole split for fine-tuned accuracy); None for a one-seed MSE, whose noise
    is not measured."""
    from cae.latent import TEST_SUBSET

    def compare(a, b) -> Verdict | None:
        ra, rb = groups[a][measure], groups[b][measure]
        if min(ra["n"], rb["n"]) > 1:
            return compare_seeds(ra["values"], rb["values"])
        if measure not in ACCURACY_TEST_IMAGES:
            return None
        n = TEST_SUBSET if ACCURACY_TEST_IMAGES[measure] == "probe" else n_split
        return compare_accuracies(ra["mean"], rb["mean"], n)

    return compare
