"""The label-budget experiment: test accuracy against the number of labelled training images, for
an autoencoder's encoder fine-tuned, the same encoder frozen under a linear head, and the same
classifier trained from scratch (every layer). Its protocol, in words for the pages, is `PROTOCOL`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cae.config import Config
from cae.data import Dataset
from cae.experiment import reused_autoencoder, train_or_load
from cae.plan import planned_work
from cae.runs import SWEEP_PREFIX, Run, read_metrics

BUDGETS = (100, 300, 1000, 3000, 10000, 50000)
QUICK_BUDGETS = (100, 1000, 10000)  # the app's default on a CPU: one seed, three budgets
STEPS = 300
LINES = ("finetuned", "frozen", "scratch")
PROTOCOL = (
    f"The same for all three lines at a budget: the labelled images are a class-balanced draw seeded by the "
    f"point's seed, which also draws the new head, the batch order and the scratch baseline's initial weights "
    f"(the autoencoder is the source run's, never retrained); batch size min(128, budget / 10), so an epoch is "
    f"at least 10 optimiser steps; exactly {STEPS} optimiser steps at every budget, Adam at the source run's "
    f"fine-tuning learning rate; test accuracy on the whole test split after the last step (never used to "
    f"choose anything)."
)


def batch_for(budget: int) -> int:
    """At least 10 optimiser steps per epoch, at most 128 images per step."""
    return max(1, min(128, budget // 10))


def sweep_work(budgets: tuple[int, ...], seeds: int, steps: int = STEPS) -> int:
    """Images a sweep puts through a network: per budget and seed, three classifiers (LINES) of
    `steps` batches of batch_for(budget)."""
    return seeds * sum(len(LINES) * steps * batch_for(b) for b in budgets)


def point_config(source: Config, budget: int, seed: int, steps: int = STEPS) -> Config:
    """A point's request: the source's autoencoder settings (so its autoencoder is reused), this
    many labels drawn with this seed (which also draws the scratch baseline's initial weights, so the
    seeds' spread covers the scratch line's init too), `steps` optimiser steps, the whole test split."""
    return source.replace(
        label_count=budget,
        clf_steps=steps,
        clf_batch_size=batch_for(budget),
        clf_seed=seed,
        scratch_seed=seed,
        limit=None,
        test_limit=None,
        flip=False,
        freeze_encoder=False,
        scratch_baseline=True,
    )


def run_point(
    source: Run,
    dataset: Dataset,
    budget: int,
    seed: int,
    steps: int = STEPS,
    on_progress=None,
    should_stop=None,
    folder: Path | None = None,
) -> dict | None:
    """One budget and seed: the fine-tuned and scratch lines from one experiment, the frozen line
    from another; None when stopped. With `folder`, each experiment is kept there as a run (metrics
    and kernel snapshots, no weights) and found again instead of trained: a stopped sweep resumes."""
    cfg = point_config(source.config, budget, seed, steps)
    if source.metrics["dataset"]["fingerprint"] != dataset.fingerprint:  # the encoder learned on other data
        cfg = cfg.replace(encoder_from=source.metrics["autoencoder_key"])
    t0 = time.perf_counter()
    both = _experiment(cfg, source, dataset, on_progress, should_stop, folder)
    frozen = both and _experiment(
        cfg.replace(freeze_encoder=True, scratch_baseline=False), source, dataset, on_progress, should_stop, folder
    )
    if not frozen:
        return None
    (m, both_run), (f, frozen_run) = both, frozen
    return {
        "budget": budget,
        "seed": seed,
        "batch_size": batch_for(budget),
        "steps": steps,
        "finetuned": m["classifier"][-1]["test_acc"],
        "scratch": m["scratch"]["classifier"][-1]["test_acc"],
        "frozen": f["classifier"][-1]["test_acc"],
        "per_class": {
            "finetuned": m["per_class_acc"],
            "scratch": m["scratch"]["per_class_acc"],
            "frozen": f["per_class_acc"],
        },
        "seconds": time.perf_counter() - t0,
        **({"runs": {"finetuned": both_run, "frozen": frozen_run}} if folder else {}),
    }


def run_sweep(
    source: Run,
    dataset: Dataset,
    budgets: tuple[int, ...] | list[int],
    seeds: int | list[int],
    steps: int = STEPS,
    on_progress=None,
    should_stop=None,
    folder: Path | None = None,
    on_point=None,
    done: frozenset | set = frozenset(),
) -> list[dict] | None:
    """The label-budget experiment for one encoder, the one loop the worker and bench/ run: each
    seed (a count, or a list of seeds), each budget the training split holds, in turn; points whose
    (budget, seed) is in `done` are skipped; each finished point goes to `on_point`. The points, or
    None when stopped."""
    points = []
    for seed in range(seeds) if isinstance(seeds, int) else seeds:
        for size in budgets:
            if size > len(dataset.train) or (size, seed) in done:
                continue
            point = run_point(source, dataset, size, seed, steps, on_progress, should_stop, folder)
            if point is None:
                return None
            points.append(point)
            if on_point is not None:
                on_point(point)
    return points


def _experiment(
    cfg: Config, source: Run, dataset: Dataset, on_progress, should_stop, folder: Path | None
) -> tuple[dict, str | None] | None:
    """(metrics, run name) of one experiment of a point: found in `folder`, else trained from the
    source's autoencoder (and saved there without weights); None when stopped."""
    outcome = train_or_load(
        cfg,
        dataset,
        folder,
        on_progress=on_progress,
        should_stop=should_stop,
        reuse=reused_autoencoder(source),
        pretrained=None,
        weights=False,
        keep=folder is not None,
    )
    if outcome.cancelled:
        return None
    if outcome.cached:  # a damaged point is not found: it is trained again
        return read_metrics(outcome.path), outcome.path.name
    return outcome.result.metrics, outcome.path.name if outcome.path else None


def planned(
    source: Config, budgets: tuple[int, ...], seeds: int, n_train: int, n_test: int, steps: int = STEPS
) -> float:
    """MFLOP a sweep will spend (for the time estimate): three classifiers per point."""
    total = 0.0
    for budget in budgets:
        cfg = point_config(source, min(budget, n_train), 0, steps).replace(ae_epochs=0)  # the autoencoder is reused
        total += seeds * planned_work(cfg, n_train, min(budget, n_train), n_test) * 3 / 2
    return total


def sweep_folder(runs_folder: Path, source: str, fingerprint: str) -> Path:
    """Where a sweep run from the app keeps its points (each a run) and its results file."""
    return Path(runs_folder) / f"{SWEEP_PREFIX}{source}-{fingerprint[:12]}"


def results_file(runs_folder: Path, source: str, fingerprint: str) -> Path:
    """The finished sweep's points, in its folder (`sweep_folder`)."""
    return sweep_folder(runs_folder, source, fingerprint) / "sweep.json"


def saved_points(runs_folder: Path, source: str, fingerprint: str) -> list[dict]:
    """The points of a finished sweep of this run's encoder on this data, if one was run here."""
    try:
        return json.loads(results_file(runs_folder, source, fingerprint).read_text())["points"]
    except (OSError, ValueError, KeyError):
        return []


def finished_sweeps(runs_folder: Path, sources: list[tuple[str, str]], fingerprint: str) -> dict[str, list[dict]]:
    """{title: points} of the sweeps finished here on the data with this fingerprint, for each of
    `sources` (run name, title) that has one: a learner's own lines, to draw beside shipped ones."""
    found = {title: saved_points(runs_folder, name, fingerprint) for name, title in sources}
    return {title: points for title, points in found.items() if points}
