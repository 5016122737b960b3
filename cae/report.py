"""Plain-language summaries of a run and of the comparisons the pages print (decided by cae/evidence.py)."""

from __future__ import annotations

from cae.evidence import (
    RULES,
    Verdict,
    best,
    compare_accuracies,
    compare_seeds,
    compare_to_chance,
    noise_words,
    overlap,
    wilson,
)
from cae.words import test_images


def _acc(rows: list[dict], epoch: int) -> float | None:
    return next((r["test_acc"] for r in rows if r["epoch"] == epoch), None)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _seed_values(seeds: list[dict], phase: str, epoch: int) -> list[float]:
    """Every seed's test accuracy at `epoch` of a phase ("classifier" or "scratch")."""
    rows = [
        (s.get("scratch") or {}).get("classifier", []) if phase == "scratch" else s.get("classifier", []) for s in seeds
    ]
    return [a for r in rows if (a := _acc(r, epoch)) is not None]


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
        a, b = _acc(pre, epoch), _acc(scratch, epoch)
        if a is None or b is None:  # a phase that did not record this epoch
            continue
        ours, theirs = (
            (_seed_values(seeds, "classifier", epoch), _seed_values(seeds, "scratch", epoch)) if seeds else ([], [])
        )
        if min(len(ours), len(theirs)) > 1:
            verdict = compare_seeds(ours, theirs)
        else:
            verdict = compare_accuracies(a, b, test_images(metrics) or 1)
        out.append((when, verdict, a, b))
        if epoch == last:
            break
    return out


def _verdict_words(when: str, v: Verdict, a: float, b: float) -> str:
    """One clause: which start is ahead (or neither) and the noise that decided it."""
    if v.rule == "seeds":
        (a_low, a_high), (b_low, b_high) = v.ranges
        ranges = f"(fine-tuned {a_low:.1f}–{a_high:.1f}% vs scratch {b_low:.1f}–{b_high:.1f}%, {v.seeds} seeds)"
        if v.winner is None:
            return f"{when}, the two starts are within the seeds' spread {ranges}"
        if v.winner == 0:
            return f"{when}, the pretrained encoder is ahead beyond the seeds' spread {ranges}"
        return f"{when}, pretraining does not help: random init is ahead beyond the seeds' spread {ranges}"
    noise = v.noise.split(": ")[-1]
    if v.winner is None:
        return (
            f"{when}, for this seed, the two starts are within noise ({a:.1f}% pretrained vs {b:.1f}% scratch; "
            f"{noise_words(a, b, v.n)})"
        )
    if v.winner == 0:
        return (
            f"{when}, for this seed, the pretrained encoder leads by {v.gap:.1f} points ({a:.1f}% vs {b:.1f}%), "
            f"more than the noise ({noise})"
        )
    return (
        f"{when}, for this seed, pretraining does not help: random init is ahead by {-v.gap:.1f} points "
        f"({b:.1f}% vs {a:.1f}%, more than the noise of {noise})"
    )


def pretraining_verdict(metrics: dict, seeds: list[dict] | None = None) -> str:
    """Which start was ahead at epoch 1 and at the end, by the rule of `pretraining_comparison`."""
    pre = metrics.get("classifier") or []
    if not pre:
        return "This run trained the autoencoder only; there is no classifier to compare."
    comparison = pretraining_comparison(metrics, seeds)
    if not comparison:
        return (
            f"Fine-tuned from the autoencoder: {pre[-1]['test_acc']:.1f}% test accuracy after "
            f"{pre[-1]['epoch']} epochs (no scratch baseline in this run)."
        )
    text = "; ".join(_verdict_words(*c) for c in comparison)
    text = text[0].upper() + text[1:] + "."
    when, verdict, a, b = comparison[-1]
    if verdict.rule == "seeds":
        seed = (metrics.get("config") or {}).get("seed", 0)
        return text + f" This run (seed {seed}): {a:.1f}% fine-tuned vs {b:.1f}% from scratch."
    n = test_images(metrics)
    return text + (f" Measured on {n:,} test images." if n else "")


def seeds_paragraph(seeds: list[dict]) -> str:
    """The shipped seeds of one recipe in words: fine-tuned and scratch accuracy per seed after epoch 1
    and at the end, and what the seeds' spread says of the gap."""
    last = min(s["classifier"][-1]["epoch"] for s in seeds)
    parts = []
    for epoch, when in ((1, "after epoch 1"), (last, f"after epoch {last}")):
        ours, theirs = _seed_values(seeds, "classifier", epoch), _seed_values(seeds, "scratch", epoch)
        verdict = compare_seeds(ours, theirs)
        said = {
            None: "within the seeds' spread",
            0: "pretrained ahead beyond the seeds' spread",
            1: "scratch ahead beyond the seeds' spread",
        }[verdict.winner]
        parts.append(
            f"{when} pretrained {' / '.join(f'{a:.1f}' for a in ours)}% vs scratch "
            f"{' / '.join(f'{b:.1f}' for b in theirs)}% ({said})"
        )
    return f"Over seeds {', '.join(str(s['seed']) for s in seeds)}: " + "; ".join(parts) + "."


def verdict_rule(metrics: dict, seeds: list[dict] | None = None) -> str:
    """The rule that decided `pretraining_verdict`, in words."""
    comparison = pretraining_comparison(metrics, seeds)
    return RULES[comparison[-1][1].rule] if comparison else ""


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


def live_run_sentence(metrics: dict) -> str:
    """What a live run showed, from its numbers: how far the autoencoder's test MSE fell, and whether
    the fine-tuned classifier ended above chance beyond the noise."""
    rows, clf = metrics.get("autoencoder") or [], metrics.get("classifier") or []
    data = (metrics.get("dataset") or {}).get("name", "the data in use").split(" (")[0]
    text = (
        f"Live run on {data}: the autoencoder's test MSE fell from {rows[0]['test_mse']:.4f} after epoch 1 to "
        f"{rows[-1]['test_mse']:.4f} after epoch {rows[-1]['epoch']}."
        if rows
        else f"Live run on {data}."
    )
    classes = (metrics.get("dataset") or {}).get("classes") or []
    if clf and classes:
        accuracy, n, chance = clf[-1]["test_acc"], test_images(metrics) or 1, 100 / len(classes)
        verdict = compare_to_chance(accuracy, chance, n)
        where = "above chance beyond the noise" if verdict.winner == 0 else "not above chance beyond the noise"
        text += (
            f" The fine-tuned classifier reached {accuracy:.1f}% on {n:,} test images: {where} "
            f"(guessing gives {chance:.0f}%; {verdict.noise})."
        )
    return text


def per_class_counts(metrics: dict) -> dict[str, int]:
    """Test images per class (the confusion matrix's row sums), or {} when the run has no matrix."""
    classes = (metrics.get("dataset") or {}).get("classes") or []
    confusion = metrics.get("confusion") or []
    return {c: int(sum(row)) for c, row in zip(classes, confusion)} if len(confusion) == len(classes) else {}


FEW_PER_CLASS = 100  # fewer test images than this in a class and its bar's interval is said in words


def class_extremes_sentence(metrics: dict) -> str | None:
    """Best and worst class, or "at chance level" when the accuracy is within noise of guessing; with
    few test images per class, how many each bar rests on and its interval."""
    per_class = metrics.get("per_class_acc") or {}
    rows = metrics.get("classifier") or []
    if not per_class or not rows:
        return None
    chance = 100 / len(per_class)
    accuracy, n = rows[-1]["test_acc"], test_images(metrics) or 1
    counts = per_class_counts(metrics)
    few = ""
    if counts and min(counts.values()) < FEW_PER_CLASS:
        low, high = wilson(50.0, min(counts.values()))
        fewest, most = min(counts.values()), max(counts.values())
        how_many = f"{fewest}" if fewest == most else f"{fewest}–{most}"
        few = (
            f" Each bar rests on only {how_many} test images: a bar near 50% "
            f"could be anywhere from {low:.0f}% to {high:.0f}% (95% interval, drawn on the bars), so a class's "
            "rank is mostly noise."
        )
    if compare_to_chance(accuracy, chance, n).winner != 0:
        return (
            f"At chance level: {accuracy:.1f}% is what guessing among {len(per_class)} classes gives "
            f"({chance:.0f}%), so no class is really best or worst." + few
        )
    (best_class, b), (worst, w) = best_and_worst(per_class)
    lecture = (
        " The lecture found deer worst, cat next, frog best."
        if list(metrics.get("dataset", {}).get("classes", [])) == CIFAR10_CLASSES
        else ""
    )
    return f"Best class: {best_class} ({b:.1f}%); worst: {worst} ({w:.1f}%).{lecture}" + few


# --- the Latent space page ------------------------------------------------------------------


def _versus(a: float, b: float, n: int) -> str:
    """ "better than", "worse than" or "about as good as", by the two-accuracies rule."""
    verdict = compare_accuracies(a, b, n)
    return {None: "about as good as", 0: "better than", 1: "worse than"}[verdict.winner]


def representation_sentence(scores: dict[str, dict], n_test: int, epochs: int | None) -> str:
    """What the k-NN and probe numbers say about this run's code, written from the numbers:
    against the raw pixels, against the encoder it started from, and against the fine-tuned one."""
    code, pixels, initial = scores["code"], scores["pixels"], scores["initial"]
    after = f"After {epochs} autoencoder epoch{'s' * (epochs != 1)}, t" if epochs else "T"
    text = (
        f"{after}his run's code is {_versus(code['knn'], pixels['knn'], n_test)} the raw pixels as a "
        f"neighbourhood ({code['knn']:.1f}% vs {pixels['knn']:.1f}% k-NN accuracy) and "
        f"{_versus(code['knn'], initial['knn'], n_test)} the random encoder it started from "
        f"({initial['knn']:.1f}%); a linear layer on it reaches {code['probe']:.1f}%."
    )
    if "finetuned" in scores:
        tuned = scores["finetuned"]
        text += f" The fine-tuned classifier's features reach {tuned['knn']:.1f}% and {tuned['probe']:.1f}%: " + (
            "the labels reshaped the code far more than reconstruction did."
            if compare_accuracies(tuned["knn"], code["knn"], n_test).winner == 0
            else "the labels changed the neighbourhoods little."
        )
    return text + (
        f" (For this seed; {noise_words(code['knn'], pixels['knn'], n_test)}: two standard errors of the difference.)"
    )


def _seed_ranges_apart(groups: dict, measure: str, a, b) -> bool | None:
    """Whether two settings' seed ranges of `measure` are apart (None: fewer than two seeds)."""
    ra, rb = groups[a][measure], groups[b][measure]
    if min(ra["n"], rb["n"]) < 2:
        return None
    return not overlap(ra["values"], rb["values"])


def sweep_sentence(groups: dict, measure: str, setting: str, what: str) -> str:
    """The best and worst value of a sweep's setting for one measure, whether their seed ranges
    overlap (then the difference is within seed noise), and which other values are within the best's."""
    means = {x: g[measure]["mean"] for x, g in groups.items() if measure in g}
    if len(means) < 2:
        return ""
    top, _ = best(means)
    worst, _ = best(means, highest=False)
    apart = _seed_ranges_apart(groups, measure, top, worst)
    if apart is None:
        verdict = "one seed each, so the noise is not measured"
    elif not apart:
        verdict = "their seeds' ranges overlap, so the difference is within the seeds' spread"
    else:
        verdict = "their seeds' ranges do not overlap"
    close = [x for x in means if x not in (top, worst) and _seed_ranges_apart(groups, measure, x, top) is False]
    if close and apart is not None:
        verdict += f"; {setting} {', '.join(f'{x:g}' for x in close)} is within the best one's seed range"
    return (
        f"{what}: highest at {setting} {top:g} ({means[top]:.1f}%), lowest at {setting} {worst:g} "
        f"({means[worst]:.1f}%); {verdict}."
    )


def _best_clause(groups: dict, measure: str, highest: bool, label: str, fmt: str) -> tuple[str, str]:
    """("the lowest test MSE is at 256 (0.0235; 64 within the seed noise of it)", "MSE 0.0032"): a sweep's
    best point and the settings within the seed noise of it. Where only some settings ran several
    seeds, the widest of their ranges stands for the seed noise of all (the second item says it)."""
    values = {x: g[measure]["mean"] for x, g in groups.items() if measure in g}
    top, value = best(values, highest)
    unit = "" if measure == "test_mse" else "%"
    seeded = {x: g[measure] for x, g in groups.items() if measure in g and g[measure]["n"] > 1}
    if not seeded:
        return f"{label} at {top:,} ({value:{fmt}}{unit})", ""
    if len(seeded) == len(values):
        within = [x for x in values if x != top and _seed_ranges_apart(groups, measure, x, top) is False]
        width = ""
    else:
        spread_width = max(r["high"] - r["low"] for r in seeded.values())
        within = [x for x in values if x != top and abs(values[x] - value) <= spread_width]
        width = f"{spread_width:{fmt}}" + (" points" if unit else "")
    others = (
        f"{', '.join(f'{x:,}' for x in within)} within the seed noise of it"
        if within
        else "beyond the seed noise of every other size"
    )
    return f"{label} at {top:,} ({value:{fmt}}{unit}; {others})", width


def latent_size_sentence(groups: dict) -> str:
    """Where the sweep's best points lie: the lowest test MSE, the highest k-NN accuracy of the code and
    the highest fine-tuned accuracy, each with the sizes within the seed noise of it, and that noise."""
    if len(groups) < 2:
        return ""
    clauses = [
        _best_clause(groups, "test_mse", False, "the lowest test MSE is", ".4f"),
        _best_clause(groups, "knn", True, "the code's highest k-NN accuracy", ".1f"),
        _best_clause(groups, "test_acc", True, "the highest fine-tuned accuracy", ".1f"),
    ]
    text = f"Over code sizes from {min(groups):,} to {max(groups):,}: " + "; ".join(c for c, _ in clauses) + "."
    seeded = [f"{x:,}" for x, g in groups.items() if g["test_acc"]["n"] > 1]
    if not seeded:
        return text + " One seed per size, so the noise is not measured."
    if len(seeded) == len(groups):
        return text + f" Seed noise: {RULES['seeds']}."
    widths = ", ".join(f"{name} {w}" for name, (_, w) in zip(("MSE", "k-NN", "fine-tuned"), clauses) if w)
    return (
        text + f" Seed noise: the range of the seeds run at {', '.join(seeded)} ({widths}); the other sizes "
        "ran one seed each."
    )


def dead_units_sentence(activity: dict[str, dict], layers: dict[str, str]) -> str:
    """Where the run viewed has dead units (never above zero on the test images), from the numbers."""
    dead = {layers.get(name, name): a["dead"] for name, a in activity.items()}
    if not any(dead.values()):
        return "In this run no encoder unit is dead: every one fires on some test image."
    worst = max(dead, key=dead.get)
    return (
        f"In this run the most dead units are in {worst}: {dead[worst]:.0%} never fire on these test images "
        f"(the other layers: {', '.join(f'{k} {v:.0%}' for k, v in dead.items() if k != worst)})."
    )


def label_budget_sentence(lines: dict[str, dict[int, dict]]) -> str:
    """Where the fine-tuned line is above (or below) scratch beyond the seeds' ranges, the widest gap,
    by the seeds rule; with one seed per point, that the noise is not measured."""
    fine, scratch = lines["finetuned"], lines["scratch"]
    budgets = sorted(b for b in fine if b in scratch)
    if not budgets:
        return ""
    gap = {b: fine[b]["mean"] - scratch[b]["mean"] for b in budgets}
    widest, _ = best({b: abs(g) for b, g in gap.items()})
    seeds = min(min(fine[b]["n"], scratch[b]["n"]) for b in budgets)
    if seeds < 2:
        above = [b for b in budgets if gap[b] > 0]
        return (
            f"The fine-tuned line is above scratch at {', '.join(f'{b:,}' for b in above) or 'no budget'} labelled "
            f"images, by at most {max(gap.values()):+.1f} points; one seed per point, so the noise is not measured."
        )
    verdicts = {b: compare_seeds(fine[b]["values"], scratch[b]["values"]) for b in budgets}
    ahead = [b for b in budgets if verdicts[b].winner == 0]
    behind = [b for b in budgets if verdicts[b].winner == 1]
    listing = lambda bs: ", ".join(f"{b:,}" for b in bs)  # noqa: E731
    if ahead:
        first = (
            f"Starting from the autoencoder beats starting from random weights beyond the seeds' spread at "
            f"{listing(ahead)} labelled images"
        )
    else:
        first = "At no budget is the fine-tuned line above scratch beyond the seeds' spread"
    parts = [first]
    if behind:
        parts.append(f"scratch is ahead beyond it at {listing(behind)}")
    parts.append(
        f"the widest gap is {gap[widest]:+.1f} points at {widest:,} labels "
        f"({fine[widest]['mean']:.1f}% vs {scratch[widest]['mean']:.1f}%)"
    )
    if not ahead and not behind:
        parts.append("every gap is within the seeds' spread")
    meet = next((b for i, b in enumerate(budgets) if all(verdicts[b2].winner is None for b2 in budgets[i:])), None)
    if meet is not None and (ahead or behind):
        parts.append(f"from {meet:,} labels on the two lines are within the seeds' spread of each other")
    return "; ".join(parts) + f" ({seeds} seeds per point; {RULES['seeds']})."


def objective_measures(options: dict[str, dict], at: int = 1000, frozen_at: int = 10000) -> tuple[list, dict, dict]:
    """(the objectives whose fine-tuning beats scratch beyond the classifier seeds' spread at `at`
    labels, each objective's fine-tuned − scratch gap there, each one's frozen line at `frozen_at`)."""
    from cae.sweeps import budget_lines

    ahead, gaps, frozen = [], {}, {}
    for name, entry in options.items():
        lines = budget_lines(entry["points"])
        fine, scratch = lines["finetuned"].get(at), lines["scratch"].get(at)
        if fine and scratch:
            gaps[name] = fine["mean"] - scratch["mean"]
            if fine["n"] > 1 and compare_seeds(fine["values"], scratch["values"]).winner == 0:
                ahead.append(name)
        if frozen_at in lines["frozen"]:
            frozen[name] = lines["frozen"][frozen_at]["mean"]
    return ahead, gaps, frozen


def objectives_sentence(options: dict[str, dict], names: dict[str, str], at: int = 1000, frozen_at: int = 10000) -> str:
    """What the comparison of pretraining objectives showed, from its numbers: the best code by
    k-NN, where fine-tuning beats scratch beyond the classifier seeds' spread at `at` labels, and
    the best frozen line at `frozen_at` (one autoencoder per option: the ranges cover classifier
    seeds only)."""
    knn = {name: entry["knn_curve"][-1] for name, entry in options.items()}
    top, value = best(knn)
    parts = [f"The best code by k-NN is {names.get(top, top)}'s ({value:.1f}%"]
    if "plain" in knn and top != "plain":
        parts[0] += f"; the lecture's plain recipe {knn['plain']:.1f}%"
    parts[0] += ")"
    ahead, gaps, frozen = objective_measures(options, at, frozen_at)
    if gaps:
        widest, gap = best(gaps)
        parts.append(
            (
                f"fine-tuning beats scratch beyond the seeds' spread at {at:,} labels for "
                + ", ".join(names.get(n, n) for n in ahead)
                if ahead
                else f"at {at:,} labels no objective puts fine-tuning beyond the seeds' spread of scratch"
            )
            + f" (widest gap {gap:+.1f} points, {names.get(widest, widest)})"
        )
    if frozen:
        name, value = best(frozen)
        parts.append(f"the best frozen encoder reaches {value:.1f}% at {frozen_at:,} labels ({names.get(name, name)})")
    return "; ".join(parts) + ". One autoencoder per objective: the ranges cover the classifier seeds only."


def confirmation_sentence(
    name: str,
    entry: dict,
    baseline: dict[str, dict[int, dict]],
    baseline_name: str,
    at: int = 1000,
    frozen_at: int = 10000,
) -> str | None:
    """A longer run of one objective (bench/objectives.py --confirm), against a plain encoder trained
    as long (`baseline`: its label-budget lines): its fine-tuned − scratch gap at `at` labels and its
    frozen line at `frozen_at`, each judged by the classifier seeds' ranges. None without those points."""
    from cae.sweeps import budget_lines

    lines = budget_lines(entry["points"])
    fine, scratch = lines["finetuned"].get(at), lines["scratch"].get(at)
    frozen, theirs = lines["frozen"].get(frozen_at), baseline["frozen"].get(frozen_at)
    if not (fine and scratch and frozen and theirs) or min(fine["n"], frozen["n"], theirs["n"]) < 2:
        return None
    gap = compare_seeds(fine["values"], scratch["values"])
    side = {0: "ahead of", None: "within", 1: "behind"}[gap.winner]
    against = compare_seeds(frozen["values"], theirs["values"])
    words = {0: "above", None: "within the seeds' spread of", 1: "below"}[against.winner]
    return (
        f"Trained for {entry['ae_epochs']} autoencoder epochs, {name}'s fine-tuned classifier is "
        f"{gap.gap:+.1f} points from scratch at {at:,} labels ({side} the seeds' spread), and its frozen "
        f"encoder reaches {frozen['mean']:.1f}% at {frozen_at:,} labels, {words} {theirs['mean']:.1f}% for "
        f"{baseline_name} ({against.noise})."
    )
