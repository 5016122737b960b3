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


PHASE_NAMES = {"autoencoder": "Autoencoder", "classifier": "Fine-tuning", "scratch": "Scratch"}


def epoch_sentence(phase: str, row: dict) -> str:
    """"Autoencoder epoch 3: train MSE 0.0312, test MSE 0.0301 (5.2 s)" and the like."""
    if "train_mse" in row:
        numbers = f"train MSE {row['train_mse']:.4f}, test MSE {row['test_mse']:.4f}"
        if "knn_acc" in row:
            numbers += f", k-NN accuracy of the code {row['knn_acc']:.1f}%"
    else:
        numbers = f"training loss {row['train_loss']:.3f}, test accuracy {row['test_acc']:.1f}%"
    return f"{PHASE_NAMES.get(phase, phase)} epoch {row['epoch']}: {numbers} ({row['seconds']:.1f} s)"


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


# --- a run in words ---------------------------------------------------------------------------

def _fmt(value: float) -> str:
    return f"{value:g}"


def run_differences(metrics: dict) -> list[str]:
    """What sets a run apart from the lecture's settings on full CIFAR-10, in words."""
    from cae.config import Config

    cfg, d = metrics.get("config") or {}, Config().to_dict()
    parts = []
    if cfg.get("latent_dim", d["latent_dim"]) != d["latent_dim"]:
        parts.append(f"latent {cfg['latent_dim']}")
    if cfg.get("upsample", d["upsample"]) != d["upsample"]:
        parts.append(f"{cfg['upsample']} decoder")
    if cfg.get("leak", d["leak"]) != d["leak"]:
        parts.append("ReLU" if cfg["leak"] == 0 else f"leak {_fmt(cfg['leak'])}")
    if cfg.get("encoder_from"):
        pre = (metrics.get("pretraining_dataset") or {}).get("name", "other data").split(" (")[0]
        parts.append(f"encoder pretrained on {pre}")
    epochs = (cfg.get("ae_epochs", 5), cfg.get("clf_epochs", 5))
    if epochs != (d["ae_epochs"], d["clf_epochs"]):
        parts.append(f"{epochs[0]} + {epochs[1]} epochs")
    for key, text in (("batch_size", "batch {}"), ("clf_batch_size", "classifier batch {}"), ("lr", "lr {}"),
                      ("clf_lr", "fine-tuning lr {}")):
        if cfg.get(key, d[key]) != d[key] and cfg.get(key) is not None:
            parts.append(text.format(_fmt(cfg[key])))
    if cfg.get("label_count"):
        parts.append(f"{cfg['label_count']:,} labels")
    elif cfg.get("label_fraction", 1.0) != 1.0:
        parts.append(f"{cfg['label_fraction']:.0%} labels")
    if cfg.get("clf_steps"):
        parts.append(f"{cfg['clf_steps']} classifier steps")
    if cfg.get("clf_seed") is not None:
        parts.append(f"label seed {cfg['clf_seed']}")
    if cfg.get("freeze_encoder"):
        parts.append("frozen encoder (linear probe)")
    if cfg.get("limit"):
        parts.append(f"{cfg['limit']:,} training images")
    if cfg.get("flip"):
        parts.append("flips")
    if cfg.get("seed", 0) != 0:
        parts.append(f"seed {cfg['seed']}")
    return parts


def run_title(metrics: dict) -> str:
    """A readable title: the lecture's settings, or what differs from them, and the data."""
    parts = run_differences(metrics) or ["lecture's settings"]
    data = (metrics.get("dataset") or {}).get("name", "")
    if data and not data.startswith(("image folder cifar10", "CIFAR-10")):
        parts.append(f"on {data.split(' (')[0]}")
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def run_summary(metrics: dict, title: str | None = None) -> str:
    """One line for the top of every page that shows a run: title, data, test images, result."""
    n = test_images(metrics)
    data = (metrics.get("dataset") or {}).get("name", "unknown data")
    line = f"**{title or run_title(metrics)}** · {data}" + (f" · {n:,} test images" if n else "")
    pre = metrics.get("classifier") or []
    scratch = (metrics.get("scratch") or {}).get("classifier") or []
    if pre:
        line += f" · fine-tuned {pre[-1]['test_acc']:.1f}%"
        if scratch:
            line += f", scratch {scratch[-1]['test_acc']:.1f}%"
    elif metrics.get("autoencoder"):
        line += f" · test MSE {metrics['autoencoder'][-1]['test_mse']:.4f} (autoencoder only)"
    return line


def class_extremes_sentence(metrics: dict) -> str | None:
    """Best and worst class, or "at chance level" when the accuracy is within noise of guessing."""
    per_class = metrics.get("per_class_acc") or {}
    rows = metrics.get("classifier") or []
    if not per_class or not rows:
        return None
    chance = 100 / len(per_class)
    accuracy, n = rows[-1]["test_acc"], test_images(metrics) or 1
    if accuracy - chance < max(2 * standard_error(chance, n), 1.0):
        return (f"At chance level: {accuracy:.1f}% is what guessing among {len(per_class)} classes gives "
                f"({chance:.0f}%), so no class is really best or worst.")
    (best, b), (worst, w) = best_and_worst(per_class)
    lecture = (" The lecture found deer worst, cat next, frog best."
               if list(metrics.get("dataset", {}).get("classes", [])) == CIFAR10_CLASSES else "")
    return f"Best class: {best} ({b:.1f}%); worst: {worst} ({w:.1f}%).{lecture}"


# --- the Latent space page ------------------------------------------------------------------

def _versus(a: float, b: float, n: int) -> str:
    """"better than", "worse than" or "about as good as": apart only beyond two standard errors."""
    if abs(a - b) < 2 * standard_error((a + b) / 2, n):
        return "about as good as"
    return "better than" if a > b else "worse than"


def representation_sentence(scores: dict[str, dict], n_test: int, epochs: int | None) -> str:
    """What the k-NN and probe numbers say about this run's code, written from the numbers:
    against the raw pixels, against the encoder it started from, and against the fine-tuned one."""
    code, pixels, initial = scores["code"], scores["pixels"], scores["initial"]
    after = f"After {epochs} autoencoder epoch{'s' * (epochs != 1)}, t" if epochs else "T"
    text = (f"{after}his run's code is {_versus(code['knn'], pixels['knn'], n_test)} the raw pixels as a "
            f"neighbourhood ({code['knn']:.1f}% vs {pixels['knn']:.1f}% k-NN accuracy) and "
            f"{_versus(code['knn'], initial['knn'], n_test)} the random encoder it started from "
            f"({initial['knn']:.1f}%); a linear layer on it reaches {code['probe']:.1f}%.")
    if "finetuned" in scores:
        tuned = scores["finetuned"]
        text += (f" The fine-tuned classifier's features reach {tuned['knn']:.1f}% and {tuned['probe']:.1f}%: "
                 + ("the labels reshaped the code far more than reconstruction did."
                    if tuned["knn"] - code["knn"] > 2 * standard_error(tuned["knn"], n_test) else
                    "the labels changed the neighbourhoods little."))
    noise = standard_error(code["knn"], n_test)
    return text + f" (On {n_test:,} test images one standard error is about ±{noise:.1f} points.)"


def sweep_sentence(groups: dict, measure: str, setting: str, what: str) -> str:
    """The best and worst value of a sweep's setting for one measure, whether their seed ranges
    overlap (then the difference is within seed noise), and which other values are within the best's."""
    means = {x: g[measure]["mean"] for x, g in groups.items() if measure in g}
    if len(means) < 2:
        return ""
    best, worst = max(means, key=means.get), min(means, key=means.get)
    seeds = min(groups[x][measure]["n"] for x in (best, worst))

    def overlap(a, b) -> bool:
        ra, rb = groups[a][measure], groups[b][measure]
        return ra["low"] <= rb["high"] and rb["low"] <= ra["high"]

    if seeds < 2:
        verdict = "one seed each, so the noise is not measured"
    elif overlap(best, worst):
        verdict = "their seeds' ranges overlap, so the difference is within seed noise"
    else:
        verdict = "their seeds' ranges do not overlap"
    close = [x for x in means if x not in (best, worst) and groups[x][measure]["n"] > 1 and overlap(x, best)]
    if close and seeds > 1:
        verdict += f"; {setting} {', '.join(f'{x:g}' for x in close)} is within the best one's seed range"
    return (f"{what}: highest at {setting} {best:g} ({means[best]:.1f}%), lowest at {setting} {worst:g} "
            f"({means[worst]:.1f}%); {verdict}.")


def latent_size_sentence(groups: dict) -> str:
    """How the sweep's test MSE, the code's k-NN accuracy and the fine-tuned accuracy change from the
    smallest latent size to the largest, and where the fine-tuned accuracy peaks."""
    if len(groups) < 2:
        return ""
    small, large = min(groups), max(groups)
    mean = lambda size, measure: groups[size][measure]["mean"]  # noqa: E731
    best = max(groups, key=lambda size: mean(size, "test_acc"))
    return (f"From a code of {small:,} numbers to {large:,}, the test MSE goes from {mean(small, 'test_mse'):.4f} to "
            f"{mean(large, 'test_mse'):.4f}, the code's k-NN accuracy from {mean(small, 'knn'):.1f}% to "
            f"{mean(large, 'knn'):.1f}%, and the fine-tuned accuracy from {mean(small, 'test_acc'):.1f}% to "
            f"{mean(large, 'test_acc'):.1f}% (highest at {best:,}: {mean(best, 'test_acc'):.1f}%).")


def dead_units_sentence(activity: dict[str, dict], layers: dict[str, str]) -> str:
    """Where the run viewed has dead units (never above zero on the test images), from the numbers."""
    dead = {layers.get(name, name): a["dead"] for name, a in activity.items()}
    if not any(dead.values()):
        return "In this run no encoder unit is dead: every one fires on some test image."
    worst = max(dead, key=dead.get)
    return (f"In this run the most dead units are in {worst}: {dead[worst]:.0%} never fire on these test images "
            f"(the other layers: {', '.join(f'{k} {v:.0%}' for k, v in dead.items() if k != worst)}).")


def label_budget_sentence(lines: dict[str, dict[int, dict]]) -> str:
    """Where the fine-tuned line is above scratch beyond the seeds' ranges, by how much at most, and
    from which budget on the two lines' ranges overlap (they meet)."""
    fine, scratch = lines["finetuned"], lines["scratch"]
    budgets = sorted(b for b in fine if b in scratch)
    if not budgets:
        return ""
    ahead = [b for b in budgets if fine[b]["low"] > scratch[b]["high"]]
    gap = {b: fine[b]["mean"] - scratch[b]["mean"] for b in budgets}
    widest = max(budgets, key=gap.get)
    seeds = min(fine[b]["n"] for b in budgets)
    if seeds < 2:
        above = [b for b in budgets if gap[b] > 0]
        return (f"The fine-tuned line is above scratch at {', '.join(f'{b:,}' for b in above) or 'no budget'} labelled "
                f"images, by at most {max(gap.values()):+.1f} points; one seed per point, so the noise is not measured.")
    parts = []
    if ahead:
        parts.append(f"Starting from the autoencoder beats starting from random weights beyond the seeds' ranges at "
                     f"{', '.join(f'{b:,}' for b in ahead)} labelled images")
    else:
        parts.append("At no budget is the fine-tuned line above scratch beyond the seeds' ranges")
    parts.append(f"the widest gap is {gap[widest]:+.1f} points at {widest:,} labels "
                 f"({fine[widest]['mean']:.1f}% vs {scratch[widest]['mean']:.1f}%)")
    meet = next((b for i, b in enumerate(budgets) if all(b2 not in ahead for b2 in budgets[i:])), None)
    if meet is not None and ahead:
        parts.append(f"from {meet:,} labels on the two lines are within the seeds' ranges of each other")
    return "; ".join(parts) + f" ({seeds} seed{'s' * (seeds != 1)} per point)."
