"""The label-budget experiment and the comparison of pretraining objectives in words (the Classifier
and Latent space pages, Lecture mode's steps 8 and 9), by the rules of cae/evidence.py."""

from __future__ import annotations

from cae.evidence import RULES, accuracy_comparison, best, compare_accuracies, compare_seeds, leaders
from cae.report import standing, versus
from cae.sweeps import budget_lines, objective_measures, pretraining_seeds
from cae.words import listing


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
    from cae.sweeps import budget_verdicts

    verdicts = budget_verdicts(lines, budgets)
    ahead = [b for b in budgets if verdicts[b].winner == 0]
    behind = [b for b in budgets if verdicts[b].winner == 1]
    counts = lambda bs: ", ".join(f"{b:,}" for b in bs)  # noqa: E731
    if ahead:
        first = (
            f"Starting from the autoencoder beats starting from random weights beyond the seeds' spread at "
            f"{counts(ahead)} labelled images"
        )
    else:
        first = "At no budget is the fine-tuned line above scratch beyond the seeds' spread"
    parts = [first]
    if behind:
        parts.append(f"scratch is ahead beyond it at {counts(behind)}")
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


def objectives_sentence(options: dict[str, dict], names: dict[str, str], at: int = 1000, frozen_at: int = 10000) -> str:
    """What the comparison of pretraining objectives showed, from its numbers: the codes by k-NN (a
    best named only beyond the noise of the runner-up) against their reference points, raw pixels and
    the untrained encoder; where fine-tuning beats scratch beyond the classifier seeds' spread at `at`
    labels; and the frozen lines at `frozen_at` (one autoencoder per option: the ranges cover
    classifier seeds only)."""
    from cae.latent import TEST_SUBSET  # the test images every code's k-NN accuracy rests on

    knn = {name: entry["knn_curve"][-1] for name, entry in options.items()}
    top = leaders(knn, accuracy_comparison(knn, dict.fromkeys(knn, TEST_SUBSET)))
    label = lambda name: names.get(name, name)  # noqa: E731
    knn_words = standing(top, knn, "by k-NN the best code is", "by k-NN no code is clearly the best", name=label)
    parts = [knn_words] + [said for said in [_against_references(knn, options, label)] if said]
    text = "; ".join(parts + _budget_clauses(options, label, at, frozen_at))
    return text[0].upper() + text[1:] + f" (k-NN on {TEST_SUBSET:,} test images; {seeds_caveat(options, label)})."


def objectives_answer(options: dict[str, dict], names: dict[str, str], at: int = 1000, frozen_at: int = 10000) -> str:
    """Lecture mode's answer to "which objective makes fine-tuning beat scratch at `at` labels": the
    label-budget half of `objectives_sentence`, short enough for a projector; with a contrastive
    objective, its frozen line against the best reconstruction's and why (`contrast_sentence`, short)."""
    label = lambda name: names.get(name, name)  # noqa: E731
    contrast = contrast_sentence(options, label, at, frozen_at, short=True)
    clauses = _budget_clauses(options, label, at, frozen_at)
    if contrast:  # fewer words for a projector: the gap's clause (ending in its parenthesis), the contrast
        ahead = objective_measures(options, at, frozen_at)[0]
        seeds = max((pretraining_seeds(options[n]) for n in ahead), default=1)
        first = clauses[0][:-1] + (f", over {seeds} pretraining seeds" if seeds > 1 else "") + ")"
        return f"{first[0].upper()}{first[1:]}. {contrast}"
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + f" ({seeds_caveat(options, label)})."


def seeds_caveat(options: dict[str, dict], label) -> str:
    """What the label-budget ranges cover: the classifier seeds, and the pretraining seeds of the
    objectives trained more than once."""
    several = {name: pretraining_seeds(entry) for name, entry in options.items() if pretraining_seeds(entry) > 1}
    if not several:
        return "one autoencoder per objective: the label-budget ranges cover the classifier seeds only"
    counts = sorted(set(several.values()))
    return (
        f"the label-budget ranges cover the classifier seeds, and for {listing([label(n) for n in several])} also "
        f"{' or '.join(map(str, counts))} pretraining seeds; the other objectives have one autoencoder each"
    )


def contrast_sentence(
    options: dict[str, dict], label, at: int = 1000, frozen_at: int = 10000, short: bool = False
) -> str | None:
    """Why the objectives differ, from their numbers: what each kind rewards, then the contrastive
    objective's frozen line at `frozen_at` and fine-tuned − scratch gap at `at` against the best
    reconstruction objective's (by its frozen line), each by the seeds' ranges; `short`: for a
    projector, the frozen lines only, in fewer words. None without a contrastive entry or those points."""
    if "contrastive" not in options:
        return None
    lines = {name: budget_lines(entry["points"]) for name, entry in options.items()}
    rebuilt = {
        n: ls["frozen"][frozen_at]["mean"]
        for n, ls in lines.items()
        if n != "contrastive" and frozen_at in ls["frozen"]
    }
    ours = lines["contrastive"]
    if not rebuilt or frozen_at not in ours["frozen"] or at not in ours["finetuned"]:
        return None
    rival = max(rebuilt, key=rebuilt.get)
    theirs = lines[rival]
    frozen = compare_seeds(ours["frozen"][frozen_at]["values"], theirs["frozen"][frozen_at]["values"])
    gap = {
        name: (
            ls["finetuned"][at]["mean"] - ls["scratch"][at]["mean"],
            compare_seeds(ls["finetuned"][at]["values"], ls["scratch"][at]["values"]),
        )
        for name, ls in (("contrastive", ours), (rival, theirs))
        if at in ls["finetuned"] and at in ls["scratch"]
    }
    pays, standing_words = frozen.winner == 0, frozen.say("above", "within the seeds' spread of", "below")
    if short:
        return (
            "Why: rebuilding rewards keeping pixels; matching two views rewards what survives crops, flips and "
            f"colour changes. {'Here that pays' if pays else 'Here that does not pay beyond the noise'}: "
            f"frozen, its encoder reaches {ours['frozen'][frozen_at]['mean']:.1f}% at {frozen_at:,} labels, "
            f"{standing_words} {theirs['frozen'][frozen_at]['mean']:.1f}% for {label(rival)}."
        )
    said = (
        "Why they differ: a reconstruction objective rewards a code from which the pixels can be rebuilt, so it "
        "keeps colours and positions; the contrastive objective rewards a code that stays the same when an image "
        "is cropped, flipped and recoloured and differs from other images', the kind of sameness a class label "
        f"asks for. {'Here that pays' if pays else 'Here that does not pay beyond the noise'}: its frozen encoder "
        f"({options['contrastive']['ae_epochs']} pretraining epochs) reaches "
        f"{ours['frozen'][frozen_at]['mean']:.1f}% at {frozen_at:,} labels, "
        f"{standing_words} {theirs['frozen'][frozen_at]['mean']:.1f}% "
        f"for {label(rival)} ({options[rival]['ae_epochs']} epochs), the best reconstruction objective there"
    )
    if "contrastive" in gap:
        mean, verdict = gap["contrastive"]
        said += (
            f"; fine-tuned from it, the classifier is {mean:+.1f} points from scratch at {at:,} labels "
            f"({verdict.say('ahead of', 'within', 'behind')} the seeds' spread)"
        )
        if rival in gap:
            said += f", against {gap[rival][0]:+.1f} for {label(rival)}"
    return said + "."


def _budget_clauses(options: dict[str, dict], label, at: int, frozen_at: int) -> list[str]:
    """Where fine-tuning beats scratch beyond the classifier seeds' spread at `at` labels, with the
    widest gap; the frozen lines' range at `frozen_at`."""
    ahead, gaps, frozen = objective_measures(options, at, frozen_at)
    parts = []
    if gaps:
        widest, gap = best(gaps)
        if ahead == [widest]:
            parts.append(
                f"fine-tuning beats scratch beyond the seeds' spread at {at:,} labels only for {label(widest)} "
                f"({gap:+.1f} points)"
            )
        else:
            parts.append(
                (
                    f"fine-tuning beats scratch beyond the seeds' spread at {at:,} labels for "
                    + ", ".join(label(n) for n in ahead)
                    if ahead
                    else f"at {at:,} labels no objective puts fine-tuning beyond the seeds' spread of scratch"
                )
                + f" (widest gap {gap:+.1f} points, {label(widest)})"
            )
    if frozen:
        low, high = min(frozen.values()), max(frozen.values())
        parts.append(f"the frozen encoders reach {low:.1f}–{high:.1f}% at {frozen_at:,} labels")
    return parts


def _against_references(knn: dict[str, float], options: dict[str, dict], label) -> str:
    """Every code against raw pixels and the untrained encoder: below (or not) both, and for which
    codes beyond the noise."""
    from cae.latent import TEST_SUBSET

    first = next(iter(options.values()))
    if "pixels_knn" not in first or "initial_knn" not in first:
        return ""
    pixels, initial = first["pixels_knn"], first["initial_knn"]
    refs = f"raw pixels ({pixels:.1f}%) and the untrained encoder ({initial:.1f}%)"
    nearer = min(pixels, initial)
    if max(knn.values()) >= nearer:
        top = max(knn, key=knn.get)
        return (
            f"{label(top)}'s code is {versus(knn[top], pixels, TEST_SUBSET)} raw pixels ({pixels:.1f}%) and "
            f"{versus(knn[top], initial, TEST_SUBSET)} the untrained encoder ({initial:.1f}%)"
        )
    beyond = [n for n in knn if compare_accuracies(knn[n], nearer, TEST_SUBSET).winner == 1]
    if len(beyond) == len(knn):
        how = "beyond the noise for every one"
    elif beyond:
        how = f"beyond the noise only for {listing([label(n) for n in beyond])}"
    else:
        how = "though each within the noise of them"
    return f"every code is below {refs}, {how}"


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
    side = gap.say("ahead of", "within", "behind")
    against = compare_seeds(frozen["values"], theirs["values"])
    words = against.say("above", "within the seeds' spread of", "below")
    return (
        f"Trained for {entry['ae_epochs']} autoencoder epochs, {name}'s fine-tuned classifier is "
        f"{gap.gap:+.1f} points from scratch at {at:,} labels ({side} the seeds' spread), and its frozen "
        f"encoder reaches {frozen['mean']:.1f}% at {frozen_at:,} labels, {words} {theirs['mean']:.1f}% for "
        f"{baseline_name} ({against.noise})."
    )
