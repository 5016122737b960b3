"""Plain-language summaries of a run and of the comparisons the pages print (decided by cae/evidence.py)."""

from __future__ import annotations

from cae.analysis import per_class_counts, pretraining_comparison, seed_values, sweep_comparison
from cae.evidence import (
    RULES,
    Verdict,
    accuracy_comparison,
    compare_accuracies,
    compare_seeds,
    compare_to_chance,
    leaders,
    noise_words,
    wilson,
)
from cae.words import listing, test_images

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _verdict_words(when: str, v: Verdict, a: float, b: float) -> str:
    """One clause: which start is ahead (or neither) and the noise that decided it."""
    if v.rule == "seeds":
        (a_low, a_high), (b_low, b_high) = v.ranges
        ranges = f"(fine-tuned {a_low:.1f}–{a_high:.1f}% vs scratch {b_low:.1f}–{b_high:.1f}%, {v.seeds} seeds)"
        return f"{when}, " + v.say(
            f"the pretrained encoder is ahead beyond the seeds' spread {ranges}",
            f"the two starts are within the seeds' spread {ranges}",
            f"pretraining does not help: random init is ahead beyond the seeds' spread {ranges}",
        )
    noise = f"±{v.margin:.1f} points on {v.n:,} test images"
    return f"{when}, for this seed, " + v.say(
        f"the pretrained encoder leads by {v.gap:.1f} points ({a:.1f}% vs {b:.1f}%), more than the test "
        f"images' noise ({noise})",
        f"the two starts are within noise ({a:.1f}% pretrained vs {b:.1f}% scratch; {noise_words(a, b, v.n)})",
        f"pretraining does not help: random init is ahead by {-v.gap:.1f} points ({b:.1f}% vs {a:.1f}%, more "
        f"than the test images' noise of {noise})",
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


def one_seed_caution(metrics: dict, reference: list[dict] | None) -> str:
    """For a run without seeds of its own: that only its test images' noise is measured, and how far
    the lecture recipe's seeds (`reference`) spread at epoch 1, which a one-seed gap may not outlast."""
    if not reference or not (metrics.get("classifier") and (metrics.get("scratch") or {}).get("classifier")):
        return ""
    ours, theirs = seed_values(reference, "classifier", 1), seed_values(reference, "scratch", 1)
    if min(len(ours), len(theirs)) < 2:
        return ""
    return (
        f"This run has one seed, so only its test images' noise is measured. The lecture recipe's "
        f"{len(ours)} shipped seeds spread {min(ours):.1f}–{max(ours):.1f}% fine-tuned and "
        f"{min(theirs):.1f}–{max(theirs):.1f}% from scratch after epoch 1: a gap smaller than such a spread "
        "may not hold for another seed."
    )


def seeds_paragraph(seeds: list[dict]) -> str:
    """The shipped seeds of one recipe in words: fine-tuned and scratch accuracy per seed after epoch 1
    and at the end, and what the seeds' spread says of the gap."""
    last = min(s["classifier"][-1]["epoch"] for s in seeds)
    parts = []
    for epoch, when in ((1, "after epoch 1"), (last, f"after epoch {last}")):
        ours, theirs = seed_values(seeds, "classifier", epoch), seed_values(seeds, "scratch", epoch)
        verdict = compare_seeds(ours, theirs)
        said = verdict.say(
            "pretrained ahead beyond the seeds' spread",
            "within the seeds' spread",
            "scratch ahead beyond the seeds' spread",
        )
        parts.append(
            f"{when} pretrained {' / '.join(f'{a:.1f}' for a in ours)}% vs scratch "
            f"{' / '.join(f'{b:.1f}' for b in theirs)}% ({said})"
        )
    return f"Over seeds {', '.join(str(s['seed']) for s in seeds)}: " + "; ".join(parts) + "."


def verdict_rule(metrics: dict, seeds: list[dict] | None = None) -> str:
    """The rule that decided `pretraining_verdict`, in words."""
    comparison = pretraining_comparison(metrics, seeds)
    return RULES[comparison[-1][1].rule] if comparison else ""


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


FEW_PER_CLASS = 100  # fewer test images than this in a class and its bar's interval is said in words


def class_extremes_sentence(metrics: dict, seeds: list[dict] | None = None) -> str | None:
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
    lecture = (
        " The lecture found deer worst, cat next, frog best."
        if list(metrics.get("dataset", {}).get("classes", [])) == CIFAR10_CLASSES
        else ""
    )
    return class_words(metrics, seeds)[0] + lecture + few


def class_words(metrics: dict, seeds: list[dict] | None = None, worst_first: bool = False) -> tuple[str, list[str]]:
    """("The best class is …; no class is clearly the worst: … (the noise).", the worst class and
    those within noise of it), by `class_leaders`; Lecture mode's step 6 says the worst first."""
    per_class = metrics["per_class_acc"]
    top, bottom, noise = class_leaders(metrics, seeds)
    clauses = [
        standing(top, per_class, "the best class is", "no class is clearly the best"),
        standing(bottom, per_class, "the worst class is", "no class is clearly the worst"),
    ]
    text = "; ".join(clauses[::-1] if worst_first else clauses)
    return f"{text[0].upper() + text[1:]} ({noise}).", bottom


def class_leaders(metrics: dict, seeds: list[dict] | None = None) -> tuple[list[str], list[str], str]:
    """(the best class and the classes within noise of it, the same for the worst, the noise in
    words): by the seeds' spread where this run's recipe has shipped seeds, else by two accuracies on
    each class's test images, for this seed."""
    per_class = metrics["per_class_acc"]
    counts = per_class_counts(metrics) or {c: max((test_images(metrics) or 1) // len(per_class), 1) for c in per_class}
    spread = {c: [s["per_class_acc"][c] for s in seeds or [] if c in s.get("per_class_acc", {})] for c in per_class}
    seeded = min(len(v) for v in spread.values()) > 1
    compare = accuracy_comparison(per_class, counts, spread if seeded else None)
    top, bottom = leaders(per_class, compare), leaders(per_class, compare, highest=False)
    if seeded:
        noise = (
            f"{min(len(v) for v in spread.values())} seeds of this recipe: a class stands apart only where the "
            "ranges of its seeds' accuracies do not overlap"
        )
    else:
        order = sorted(per_class, key=per_class.get)
        margins = [compare(a, b).margin for a, b in ((order[0], order[1]), (order[-1], order[-2]))]
        images = sorted({counts[c] for c in per_class})
        each = f"{images[0]:,}" if len(images) == 1 else f"{images[0]:,}–{images[-1]:,}"
        noise = (
            f"for this seed: two standard errors of the difference on {each} test images per class, "
            f"±{margins[0]:.1f} points between {order[0]} and {order[1]}, ±{margins[1]:.1f} between {order[-1]} "
            f"and {order[-2]}"
        )
    return top, bottom, noise


def standing(group: list, values: dict, named: str, nobody: str, fmt: str = "{:.1f}%", name=str) -> str:
    """A `leaders` group in words: "{named} cat (32.8%), beyond the noise of every other" when it
    stands alone, else "{nobody}: cat (32.8%) is within noise of bird (36.0%)"."""
    said = [f"{name(k)} ({fmt.format(values[k])})" for k in group]
    if len(said) == 1:
        return f"{named} {said[0]}, beyond the noise of every other"
    return f"{nobody}: {said[0]} is within noise of {listing(said[1:])}"


# --- the Latent space page ------------------------------------------------------------------


def versus(a: float, b: float, n: int) -> str:
    """ "better than", "worse than" or "about as good as", by the two-accuracies rule: the words for
    a code against a reference (raw pixels, the untrained encoder) wherever the app compares them."""
    return compare_accuracies(a, b, n).say("better than", "about as good as", "worse than")


def representation_sentence(scores: dict[str, dict], n_test: int, epochs: int | None) -> str:
    """What the k-NN and probe numbers say about this run's code, written from the numbers:
    against the raw pixels, against the encoder it started from, and against the fine-tuned one."""
    code, pixels, initial = scores["code"], scores["pixels"], scores["initial"]
    after = f"After {epochs} autoencoder epoch{'s' * (epochs != 1)}, t" if epochs else "T"
    text = (
        f"{after}his run's code is {versus(code['knn'], pixels['knn'], n_test)} the raw pixels as a "
        f"neighbourhood ({code['knn']:.1f}% vs {pixels['knn']:.1f}% k-NN accuracy) and "
        f"{versus(code['knn'], initial['knn'], n_test)} the random encoder it started from "
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


def sweep_clause(groups: dict, measure: str, highest: bool, what: str, kind: str, n_split: int, fmt: str) -> str:
    """One measure of a sweep in words: its best setting named only beyond the noise of every other
    (`leaders`), else the settings within the noise of the top one; for a one-seed MSE, the lowest
    value with its noise said to be unmeasured."""
    values = {x: g[measure]["mean"] for x, g in groups.items() if measure in g}
    compare = sweep_comparison({x: groups[x] for x in values}, measure, n_split)
    top = max(values, key=values.get) if highest else min(values, key=values.get)
    if any(compare(top, x) is None for x in values if x != top):
        return f"{what} is lowest at {kind} {top:,} ({fmt.format(values[top])}; one seed, so its noise is not measured)"
    extreme = "highest" if highest else "lowest"
    return standing(
        leaders(values, compare, highest),
        values,
        f"{what} is {extreme} at {kind}",
        f"no {kind} clearly has the {extreme} {what.removeprefix('the ')}",
        fmt,
        name=lambda x: f"{x:,}",
    )


def sweep_sentence(groups: dict, measure: str, setting: str, what: str, n_split: int = 10000) -> str:
    """A sweep's setting for one measure: the top value named only beyond the noise of every other,
    and the bottom one likewise."""
    values = {x: g[measure]["mean"] for x, g in groups.items() if measure in g}
    if len(values) < 2:
        return ""
    fmt = "{:.4f}" if measure == "test_mse" else "{:.1f}%"
    compare = sweep_comparison(groups, measure, n_split)
    clauses = []
    for extreme, group in (("highest", leaders(values, compare)), ("lowest", leaders(values, compare, False))):
        noun = what[0].lower() + what[1:]
        named, nobody = f"{noun} is {extreme} at", f"no {setting} clearly has the {extreme} {noun}"
        clauses.append(standing(group, values, named, nobody, fmt, name=lambda x: f"{setting} {x:g}"))
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + f" ({_sweep_noise(groups, measure)})."


def _sweep_noise(groups: dict, measure: str) -> str:
    seeds = [g[measure]["n"] for g in groups.values() if measure in g]
    if min(seeds) > 1:
        return (
            f"{min(seeds)} seeds each: one setting is ahead only where the ranges of the seeds' results do not overlap"
        )
    return (
        "one seed at some settings: where both ran several seeds their ranges decide, else two accuracies on "
        "their test images, for that seed"
    )


def latent_size_sentence(groups: dict, n_split: int = 10000) -> str:
    """The latent-size sweep in words: for the test MSE, the code's k-NN accuracy and the fine-tuned
    accuracy, the top size named only beyond the noise of every other, by `sweep_comparison`."""
    if len(groups) < 2:
        return ""
    clauses = [
        sweep_clause(groups, "test_mse", False, "the test MSE", "size", n_split, "{:.4f}"),
        sweep_clause(groups, "knn", True, "the code's k-NN accuracy", "size", n_split, "{:.1f}%"),
        sweep_clause(groups, "test_acc", True, "the fine-tuned accuracy", "size", n_split, "{:.1f}%"),
    ]
    text = f"Over code sizes from {min(groups):,} to {max(groups):,}: " + "; ".join(clauses) + "."
    return text + f" Noise: {_sweep_noise(groups, 'test_acc')}."


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
