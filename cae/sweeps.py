"""The shipped sweeps (pretrained/sweeps.json, written by bench/sweeps.py): latent size and leak,
each the lecture's recipe for 5 + 5 epochs, metrics only. A plain file beside the shipped runs,
so `list_runs` (which lists folders) never shows it as a run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from cae.budget import LINES
from cae.config import Config
from cae.contrastive import rebuilds
from cae.evidence import compare_seeds
from cae.runs import PRETRAINED_DIR, pretrained_dir

SWEEPS_FILE = "sweeps.json"
# What a run must share with the sweeps (besides latent size, leak and seed) to be drawn among them.
SWEEP_RECIPE = {
    k: v
    for k, v in Config(scratch_baseline=False).to_dict().items()
    if k not in ("latent_dim", "leak", "seed", "scratch_baseline", "device", "precision")
}


def shipped_file(name: str, read):
    """`read(path)` of a file beside the shipped runs ($CAE_PRETRAINED, else pretrained/), or None
    when no folder holds a readable one."""
    for folder in dict.fromkeys(p for p in (pretrained_dir(), PRETRAINED_DIR) if p is not None):
        try:
            return read(Path(folder) / name)
        except (OSError, ValueError):  # json.JSONDecodeError and numpy's bad-file errors are ValueErrors
            continue
    return None


def shipped_json(name: str) -> dict | None:
    """A JSON file beside the shipped runs, or None."""
    return shipped_file(name, lambda path: json.loads(path.read_text()))


def load_sweeps() -> dict | None:
    """The shipped latent-size and leak sweeps, or None."""
    return shipped_json(SWEEPS_FILE)


def spread(values: list[float]) -> dict:
    """{"mean", "low", "high", "n", "values"} of a few seeds' values."""
    return {
        "mean": statistics.fmean(values),
        "low": min(values),
        "high": max(values),
        "n": len(values),
        "values": list(values),
    }


def row_measures(row: dict) -> dict:
    """The numbers a sweep chart draws for one run: test MSE, the code's k-NN accuracy, its linear
    probe, the fine-tuned test accuracy, and the share of dead units per encoder layer."""
    point = {
        "test_mse": row["test_mse"],
        "knn": row["knn_curve"][-1],
        "probe": row.get("probe"),
        "test_acc": row["test_acc"],
    }
    point.update({f"dead {layer}": a["dead"] for layer, a in (row.get("activity") or {}).items()})
    return point


def grouped(rows: list[dict], by: str, where: dict | None = None) -> dict[float, dict[str, dict]]:
    """Sweep rows grouped by one setting (e.g. "leak"), each measure summarised over seeds with
    `spread`; `where` keeps only rows with those settings."""
    groups: dict[float, list[dict]] = {}
    for row in rows:
        if all(row.get(k) == v for k, v in (where or {}).items()):
            groups.setdefault(row[by], []).append(row_measures(row))
    return {
        value: {
            measure: spread([p[measure] for p in points if p.get(measure) is not None])
            for measure in points[0]
            if any(p.get(measure) is not None for p in points)
        }
        for value, points in sorted(groups.items())
    }


def fits_sweep(metrics: dict, sweeps: dict) -> bool:
    """A run trained with the sweeps' recipe on the sweeps' data (any latent size, leak or seed)."""
    config = metrics.get("config") or {}
    same_data = (metrics.get("dataset") or {}).get("fingerprint") == sweeps["dataset"]["fingerprint"]
    return (
        same_data
        and bool(metrics.get("autoencoder"))
        and bool(metrics.get("classifier"))
        and rebuilds(config)
        and all(config.get(k, v) == v for k, v in SWEEP_RECIPE.items())
    )


def user_point(metrics: dict) -> dict:
    """A run's own numbers in the sweeps' terms (no k-NN when its history has none)."""
    ae = metrics["autoencoder"][-1]
    return {
        "latent_dim": metrics["config"]["latent_dim"],
        "leak": metrics["config"]["leak"],
        "test_mse": ae["test_mse"],
        "knn": ae.get("knn_acc"),
        "test_acc": metrics["classifier"][-1]["test_acc"],
    }


def within_spread(groups: dict[float, dict[str, dict]], measure: str) -> bool:
    """Whether every setting's seed range of `measure` overlaps every other's (the differences
    between settings are then within seed noise)."""
    ranges = [g[measure] for g in groups.values() if measure in g]
    return all(a["low"] <= b["high"] and b["low"] <= a["high"] for a in ranges for b in ranges)


# --- the spread over seeds behind shipped runs (pretrained/seeds.json, written by bench/seed_results.py) ---

SEEDS_FILE = "seeds.json"
NOT_RECIPE = ("seed", "device")  # what may differ between the seeds of one recipe


def recipe_of(metrics: dict) -> dict:
    """A run's settings but its seed (defaults filled in), with the precision it resolved to and its data."""
    config = Config.from_dict(metrics.get("config") or {}).to_dict()
    recipe = {k: v for k, v in config.items() if k not in NOT_RECIPE}
    return {
        **recipe,
        "precision": metrics.get("precision"),
        "dataset": (metrics.get("dataset") or {}).get("fingerprint"),
    }


def lecture_seeds() -> list[dict] | None:
    """The shipped seeds of the lecture's own recipe (the first group of seeds.json), or None."""
    groups = (shipped_json(SEEDS_FILE) or {}).get("groups") or []
    return groups[0]["seeds"] if groups and len(groups[0]["seeds"]) > 1 else None


def seed_spread(metrics: dict) -> list[dict] | None:
    """The shipped seeds of this run's recipe on this run's data (this run's seed among them), or None
    when the recipe was not run with several seeds."""
    shipped = shipped_json(SEEDS_FILE)
    try:
        recipe = recipe_of(metrics)
    except (TypeError, ValueError):
        return None
    defaults = {k: v for k, v in Config().to_dict().items() if k not in NOT_RECIPE}
    for group in (shipped or {}).get("groups", []):
        seeds = group["seeds"]  # a recipe written before a setting existed has that setting's default
        if (
            {**defaults, **group["recipe"]} == recipe
            and len(seeds) > 1
            and metrics["config"].get("seed") in [s["seed"] for s in seeds]
        ):
            return seeds
    return None


# --- the label-budget experiment (pretrained/label_budget.json, written by bench/label_budget.py) ---

LABEL_BUDGET_FILE = "label_budget.json"


def load_label_budget() -> dict | None:
    """The shipped label-budget sweep, or None."""
    return shipped_json(LABEL_BUDGET_FILE)


def budget_verdicts(lines: dict[str, dict[int, dict]], budgets=None) -> dict:
    """{budget: Verdict} of the fine-tuned line against scratch at each budget both lines have
    (of `budgets`, when given), by the seeds' spread: the one comparison the label-budget sentence,
    Lecture mode's step 8 and the objectives' comparison read."""
    fine, scratch = lines["finetuned"], lines["scratch"]
    shared = [b for b in (budgets or sorted(fine)) if b in fine and b in scratch]
    return {b: compare_seeds(fine[b]["values"], scratch[b]["values"]) for b in shared}


def budget_lines(points: list[dict], precision: str | None = None) -> dict[str, dict[int, dict]]:
    """{line: {budget: spread over seeds}} for the fine-tuned, frozen and scratch lines (of the points
    trained in `precision`, when given)."""
    points = [p for p in points if precision is None or p.get("precision", precision) == precision]
    budgets = sorted({p["budget"] for p in points})
    return {line: {b: spread([p[line] for p in points if p["budget"] == b]) for b in budgets} for line in LINES}


# --- what the autoencoder rebuilds (pretrained/objectives.json, written by bench/objectives.py) ---

OBJECTIVES_FILE = "objectives.json"
OBJECTIVE_NAMES = {
    "plain": "plain (the lecture)",
    "noise-0.1": "denoising, noise 0.1",
    "noise-0.3": "denoising, noise 0.3",
    "mask-0.25": "masking 25%",
    "mask-0.5": "masking 50%",
    "mask-0.75": "masking 75%",
    "augment": "random crops",
    "contrastive": "contrastive",
}


def pretraining_seeds(entry: dict) -> int:
    """How many autoencoders (pretraining seeds) an objective's points come from."""
    return len({p.get("pretrain_seed", 0) for p in entry["points"]}) or 1


def load_objectives() -> dict | None:
    """The shipped comparison of pretraining objectives, or None."""
    return shipped_json(OBJECTIVES_FILE)


def objective_pictures() -> dict | None:
    """{option: uint8 (4, N, 3, 32, 32)}: clean test images, the input the option trains on, and the
    reconstruction of each (bench/objectives.py), or None."""
    import numpy as np

    def read(path: Path) -> dict:
        with np.load(path) as kept:
            return {name: kept[name] for name in kept.files}

    return shipped_file("objectives_pictures.npz", read)


def trained_as_long(entry: dict, sweep: dict | None) -> tuple[str, dict] | None:
    """(title, label-budget lines) of the shipped source whose autoencoder trained as many epochs as
    `entry` (a confirmation run of an objective), from the shipped label-budget file; None if none."""
    sources = (sweep or {}).get("sources", {}).values()
    base = next((s for s in sources if s.get("ae_epochs") == entry["ae_epochs"]), None)
    return None if base is None else (base["title"], budget_lines(base["points"], sweep.get("precision")))


def objective_measures(options: dict[str, dict], at: int = 1000, frozen_at: int = 10000) -> tuple[list, dict, dict]:
    """(the objectives whose fine-tuning beats scratch beyond the classifier seeds' spread at `at`
    labels, each objective's fine-tuned − scratch gap there, each one's frozen line at `frozen_at`)."""
    ahead, gaps, frozen = [], {}, {}
    for name, entry in options.items():
        lines = budget_lines(entry["points"])
        fine, scratch = lines["finetuned"].get(at), lines["scratch"].get(at)
        if fine and scratch:
            gaps[name] = fine["mean"] - scratch["mean"]
            if fine["n"] > 1 and budget_verdicts(lines, [at])[at].winner == 0:
                ahead.append(name)
        if frozen_at in lines["frozen"]:
            frozen[name] = lines["frozen"][frozen_at]["mean"]
    return ahead, gaps, frozen
