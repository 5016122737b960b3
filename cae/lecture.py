"""Lecture mode's script: the lecture's steps in its order, each with a "predict, then reveal"
question where one fits, answered from a shipped run's real numbers (never a fixed text)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cae.analysis import pretraining_comparison
from cae.budget_report import label_budget_sentence, objectives_answer
from cae.config import SMALL_DATA, Config, preset_config
from cae.evidence import compare_accuracies, compare_paired, compare_to_chance, mcnemar_p, noise_words
from cae.explain import class_probabilities, conv_output_size, reconstruct
from cae.kernels import relative_change
from cae.latent import TEST_SUBSET
from cae.model import Classifier, ConvAutoencoder
from cae.report import class_words, versus
from cae.sweeps import budget_verdicts, objective_measures

# Lecture mode's live run: the Small data recipe on at most this many class-balanced training and
# test images, so that it learns visibly within a minute on one CPU core (docs/RESULTS.md: 43 s on
# CIFAR-10 cut to 1,000 + 1,000 images; 2,000 training images took 71 s).
LIVE_LIMIT, LIVE_TEST_LIMIT = 1000, 1000


def live_config(n_train: int, n_test: int) -> Config:
    """The run Lecture mode trains live: the Small data recipe cut to 10 autoencoder epochs, without
    the scratch baseline, on the data in use cut to LIVE_LIMIT training and LIVE_TEST_LIMIT test
    images where it is larger (34.5 s on the sample with one thread; the full 20 epochs took 58.4 s)."""
    return preset_config(
        SMALL_DATA,
        ae_epochs=10,
        scratch_baseline=False,
        limit=LIVE_LIMIT if n_train > LIVE_LIMIT else None,
        test_limit=LIVE_TEST_LIMIT if n_test > LIVE_TEST_LIMIT else None,
    )


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    body: str
    live_page: str  # the app page that shows this step live
    question: str = ""
    choices: tuple[str, ...] = field(default_factory=tuple)


OBJECTIVE_CHOICES = (
    "plain reconstruction (the lecture's)",
    "denoising",
    "masking",
    "random crops",
    "contrastive (two views)",
    "none yet",
)
STEPS = (
    Step(
        "why",
        "Labels are scarce, images are plenty",
        "Labelling images costs people's time; unlabelled images cost nothing. An **autoencoder** learns from images "
        "alone: it squeezes each picture into a short **code** and rebuilds the picture from it. If the code keeps "
        "what matters, a classifier can start from it and needs fewer labels.",
        "app_pages/data.py",
    ),
    Step(
        "architecture",
        "The network: an hourglass",
        "Four convolutions shrink a 32×32 colour image to 128 maps of 4×4, a linear layer makes the code "
        "(1,024 numbers), and the decoder mirrors it back up to 32×32. Output size of a convolution: "
        "⌊(W − K + 2P) / S⌋ + 1.",
        "app_pages/overview.py",
        "The first convolution: 32×32 in, kernel 3, stride 2, padding 1. What size comes out?",
        ("14×14 (as the lecture said)", "15×15", "16×16"),
    ),
    Step(
        "autoencoder",
        "Training the autoencoder",
        "Mean squared error between each image and its reconstruction, Adam, batches of 2,000, no labels. {loss_fell}",
        "app_pages/train.py",
        "After the lecture's 5 epochs, can the fine-tuned classifier still tell what a reconstruction shows?",
        ("as well as from the originals", "less well, but above chance", "no better than chance"),
    ),
    Step(
        "kernels",
        "The first-layer kernels, before and after",
        "The 64 kernels of the first convolution (3×3, RGB) are what the lecture shows as learned features: "
        "random at the start, then after training.",
        "app_pages/kernels.py",
        "After 5 autoencoder epochs, will the kernels look very different from their random start?",
        ("very different", "almost the same"),
    ),
    Step(
        "finetune",
        "Fine-tuning, and the scratch baseline",
        "The encoder gets a new linear head and is trained with labels (cross-entropy). The fair comparison is "
        "the same classifier from random weights, trained the same way.",
        "app_pages/classifier.py",
        "After 5 fine-tuning epochs, which start is ahead on the test images?",
        ("the autoencoder's encoder", "random weights", "too close to call"),
    ),
    Step(
        "classes",
        "Which classes are hard?",
        "Test accuracy per class shows where the classifier fails.",
        "app_pages/classifier.py",
        "Which class will the fine-tuned classifier get right least often?",
    ),
    Step(
        "code",
        "What did the code learn?",
        "If images of one class get similar codes, the 10 most similar codes of a test image mostly share its "
        "class: k-nearest-neighbour accuracy measures that, with no training at all.",
        "app_pages/latent.py",
        "After 5 epochs, is the code a better neighbourhood than the raw pixels?",
        ("better than pixels", "about the same or worse"),
    ),
    Step(
        "budget",
        "When does pretraining help?",
        "The lecture's promise is about **few labels**. The label-budget experiment trains the same classifier "
        "on 100 to 10,000 labelled images, three ways: fine-tuned from the autoencoder, its encoder frozen under "
        "a linear layer, and from random weights; {seeds} seeds per point.",
        "app_pages/classifier.py",
        "With the lecture's 5 autoencoder epochs, where does starting from the autoencoder beat random weights "
        "beyond the seeds' spread?",
        ("with few labels (100–300)", "around 1,000 labels", "with many labels (3,000–10,000)", "at no budget"),
    ),
    Step(
        "objectives",
        "Optional: what would make the code useful?",
        "Rebuilding pixels rewards copying them. Three changes make the autoencoder's job harder, so its code "
        "must keep more: **denoising** (noise on the input, the clean image as the target), **masking** (patches "
        "of the input hidden, the whole image as the target) and **random crops**. A fourth rebuilds nothing: "
        "**contrastive** learning asks two random views of each image (cropped, flipped, recoloured) for matching "
        "codes, unlike the other images'. The same encoder, {epochs} pretraining epochs, then the same "
        "label-budget protocol with {seeds} classifier seeds.",
        "app_pages/latent.py",
        "Which objective makes fine-tuning beat random weights at 1,000 labels by the widest margin beyond the "
        "seeds' spread?",
        OBJECTIVE_CHOICES,
    ),
)
OBJECTIVE_FAMILIES = dict(zip(("plain", "noise", "mask", "augment", "contrastive"), OBJECTIVE_CHOICES))  # by prefix
BUDGET_CHOICES = {
    "with few labels (100–300)": (100, 300),
    "around 1,000 labels": (1000,),
    "with many labels (3,000–10,000)": (3000, 10000),
}
LECTURE_BUDGETS = (100, 300, 1000, 3000, 10000)  # the lecture's step stops at 10,000 labels (see `budget_lines`)


def step_number(value: str | None, steps: tuple[Step, ...] = STEPS) -> int:
    """The step an address names, by key (`?step=finetune`) or number (`?step=5`); 1 when unknown."""
    keys = [s.key for s in steps]
    if value in keys:
        return keys.index(value) + 1
    try:
        return min(max(int(value), 1), len(steps))
    except (TypeError, ValueError):
        return 1


def step_body(step: Step, metrics: dict, budget_seeds: int | None = None, objectives: dict | None = None) -> str:
    """The step's text with its numbers filled in from the shipped run (never a fixed claim)."""
    if step.key == "autoencoder":
        rows = metrics.get("autoencoder") or []
        fell = (
            f"On the shipped run the test MSE fell from {rows[0]['test_mse']:.4f} after epoch 1 to "
            f"{rows[-1]['test_mse']:.4f} after epoch {rows[-1]['epoch']}."
            if rows
            else ""
        )
        return step.body.format(loss_fell=fell)
    if step.key == "budget":
        return step.body.format(seeds=budget_seeds or "several")
    if step.key == "objectives":
        entries = list((objectives or {}).values())
        epochs = " or ".join(str(n) for n in sorted({e["ae_epochs"] for e in entries})) or "a few"
        counts = sorted({len({p["seed"] for p in e["points"]}) for e in entries})
        seeds = " or ".join(map(str, counts)) or "several"
        return step.body.format(epochs=epochs, seeds=seeds)
    return step.body


def first_layer_size() -> int:
    return conv_output_size(32, 3, 1, 2)


@torch.no_grad()
def recognition(
    autoencoder: ConvAutoencoder, classifier: Classifier, images: torch.Tensor, labels: torch.Tensor
) -> dict:
    """The fine-tuned classifier on test images and on their reconstructions: how many it gets right
    on each, and on how many only one of the two ({"originals", "reconstructions", "only_originals",
    "only_reconstructions", "n", "chance"}; accuracies in percent)."""
    rebuilt = (reconstruct(autoencoder, images) * 255).round().to(torch.uint8)
    right = [class_probabilities(classifier, x).argmax(1) == labels for x in (images, rebuilt)]
    n = len(labels)
    return {
        "originals": 100 * right[0].float().mean().item(),
        "reconstructions": 100 * right[1].float().mean().item(),
        "only_originals": int((right[0] & ~right[1]).sum()),
        "only_reconstructions": int((right[1] & ~right[0]).sum()),
        "n": n,
        "chance": 100 / int(classifier.head.out_features),
    }


@dataclass(frozen=True)
class Answer:
    """A question's answer from the numbers: the choice they point to, why, and the other choices
    within the noise of it, which count as right too."""

    choice: str
    why: str
    also: tuple[str, ...] = ()

    def judge(self, guess: str | None) -> str:
        """The words for a learner's prediction ("" before one was made)."""
        if guess is None:
            return ""
        if guess == self.choice:
            return "✓ As you predicted. "
        if guess in self.also:
            return (
                f"✓ Right within the noise: {guess} is within the noise of {self.choice}, so the numbers cannot "
                "tell them apart. "
            )
        return "✗ Not quite. "


def _recognisable(seen: dict) -> Answer:
    """The autoencoder step's answer from `recognition`: paired test against the originals, then the
    two-accuracies rule against chance."""
    versus_originals = compare_paired(seen["only_originals"], seen["only_reconstructions"], seen["n"])
    versus_chance = compare_to_chance(seen["reconstructions"], seen["chance"], seen["n"])
    if versus_chance.winner != 0:
        choice = "no better than chance"
    elif versus_originals.winner is None:
        choice = "as well as from the originals"
    else:
        choice = "less well, but above chance"
    p = mcnemar_p(seen["only_originals"], seen["only_reconstructions"])
    return Answer(
        choice,
        f"On {seen['n']} test images the fine-tuned classifier names {seen['reconstructions']:.1f}% of the "
        f"reconstructions right, against {seen['originals']:.1f}% of the originals and "
        f"{seen['chance']:.0f}% by guessing ({versus_chance.noise}). {seen['only_originals']} images are "
        f"right only as originals, {seen['only_reconstructions']} only as reconstructions (McNemar's exact "
        f"test: p = {p:.2g}).",
    )


def _finetune(metrics: dict, seeds: list[dict] | None) -> Answer:
    """The fine-tuning step's answer: the seeds' spread where the shipped seeds exist, else this seed's
    test-set rule."""
    ((when, verdict, pre, scratch),) = pretraining_comparison(metrics, seeds)[-1:]
    choice = verdict.say("the autoencoder's encoder", "too close to call", "random weights")
    if verdict.rule != "seeds":
        return Answer(
            choice,
            f"{pre:.1f}% fine-tuned vs {scratch:.1f}% from scratch, for this seed; "
            f"{noise_words(pre, scratch, verdict.n)}.",
        )
    ours = " / ".join(f"{s['classifier'][-1]['test_acc']:.1f}" for s in seeds)
    theirs = " / ".join(f"{s['scratch']['classifier'][-1]['test_acc']:.1f}" for s in seeds)
    flips = [s["seed"] for s in seeds if s["classifier"][-1]["test_acc"] < s["scratch"]["classifier"][-1]["test_acc"]]
    flipped = f" (seed {', '.join(map(str, flips))} flips it)" if flips and verdict.winner is None else ""
    spread = verdict.say("the ranges do not overlap", "the ranges overlap", "the ranges do not overlap")
    return Answer(
        choice,
        f"Over seeds {', '.join(str(s['seed']) for s in seeds)}: fine-tuned {ours}% vs scratch "
        f"{theirs}% — {spread}{flipped}, so the seeds' spread decides, not one run.",
    )


def _code(representation: dict) -> Answer:
    """The code step's answer: the code's k-NN accuracy against raw pixels', in the words the Latent
    page uses for the same numbers (report.versus)."""
    code, pixels, n = representation["knn"], representation["pixels_knn"], representation["test_size"]
    verdict = compare_accuracies(code, pixels, n)
    tail = verdict.say("", "", ": it keeps what rebuilds the pixels, not what tells classes apart")
    return Answer(
        verdict.say("better than pixels", "about the same or worse", "about the same or worse"),
        f"k-NN accuracy {code:.1f}% for the code vs {pixels:.1f}% for raw pixels ({noise_words(code, pixels, n)}): "
        f"as a neighbourhood the code is {versus(code, pixels, n)} the raw pixels{tail}.",
    )


def _budget(lines: dict[str, dict[int, dict]]) -> Answer:
    """The label-budget step's answer: the budgets where fine-tuned beats scratch beyond the seeds'
    spread (the choice holding the widest gap; any other choice holding such a budget counts too)."""
    verdicts = budget_verdicts(lines, LECTURE_BUDGETS)
    budgets = list(verdicts)
    ahead = [b for b in budgets if verdicts[b].winner == 0]
    said = label_budget_sentence({k: {b: v[b] for b in budgets} for k, v in lines.items()})
    if not ahead:
        return Answer("at no budget", said)
    widest = max(ahead, key=lambda b: verdicts[b].gap)
    holding = [c for c, bs in BUDGET_CHOICES.items() if set(bs) & set(ahead)]
    choice = next(c for c in holding if widest in BUDGET_CHOICES[c])
    return Answer(choice, said, tuple(c for c in holding if c != choice))


def _objectives(options: dict[str, dict], names: dict[str, str]) -> Answer:
    """The objectives step's answer: of the objectives whose fine-tuning beats scratch beyond the
    classifier seeds' spread at 1,000 labels, the family of the widest gap (the others' families
    count as right too); "none yet" when none does."""
    ahead, gaps, _ = objective_measures(options)
    said = objectives_answer(options, names)
    if not ahead:
        return Answer("none yet", said)
    families = list(dict.fromkeys(OBJECTIVE_FAMILIES[n.split("-")[0]] for n in sorted(ahead, key=gaps.get)[::-1]))
    return Answer(families[0], said, tuple(families[1:]))


def _classes(metrics: dict, seeds: list[dict] | None) -> Answer:
    """The per-class step's answer: the worst class, and every class within the noise of it counts
    as right (by the seeds' spread where the recipe has shipped seeds, else this seed's test images)."""
    said, bottom = class_words(metrics, seeds, worst_first=True)
    return Answer(bottom[0], said, tuple(bottom[1:]))


def answer(
    step: Step,
    metrics: dict,
    kernels: dict | None = None,
    representation: dict | None = None,
    *,
    seeds: list[dict] | None = None,
    seen: dict | None = None,
    budget: dict[str, dict[int, dict]] | None = None,
    objectives: dict[str, dict] | None = None,
    names: dict[str, str] | None = None,
) -> Answer:
    """The right choice (and those within the noise of it), with one sentence why, for a step's
    question, from the numbers: the shipped run's metrics and kernels, the code's k-NN
    (`code_numbers`), the shipped seeds (`seed_spread`), the classifier on reconstructions
    (`recognition`), the label-budget lines (`budget_lines`) and the comparison of pretraining
    objectives (its options, with their names)."""
    if step.key == "architecture":
        side = first_layer_size()
        return Answer(f"{side}×{side}", f"⌊(32 − 3 + 2·1) / 2⌋ + 1 = ⌊15.5⌋ + 1 = {side}: the lecture's 14 is a slip.")
    if step.key == "autoencoder" and seen:
        return _recognisable(seen)
    if step.key == "kernels":
        moved = relative_change(kernels["initial"], kernels["autoencoder"])
        return Answer(
            "almost the same" if moved < 0.3 else "very different",
            f"They moved {moved:.0%} of their size (‖after − before‖ / ‖before‖).",
        )
    if step.key == "finetune":
        return _finetune(metrics, seeds)
    if step.key == "classes":
        return _classes(metrics, seeds)
    if step.key == "code" and representation:
        return _code(representation)
    if step.key == "budget" and budget:
        return _budget(budget)
    if step.key == "objectives" and objectives:
        return _objectives(objectives, names or {})
    return Answer("", "")


def code_numbers(metrics: dict, sweep_rows: list[dict]) -> dict | None:
    """The code's final k-NN accuracy beside the raw pixels', {"knn", "pixels_knn", "test_size"}: from
    the run's own curve when it recorded one, else from the shipped sweep's run with its settings."""
    rows, representation = metrics.get("autoencoder") or [], metrics.get("representation")
    if representation and rows and "knn_acc" in rows[-1]:
        return {
            "knn": rows[-1]["knn_acc"],
            "pixels_knn": representation["pixels_knn"],
            "test_size": representation["test_size"],
        }
    config = metrics.get("config") or {}
    match = next(
        (
            r
            for r in sweep_rows
            if (r["latent_dim"], r["leak"], r["seed"], r["ae_epochs"])
            == (config.get("latent_dim"), config.get("leak"), config.get("seed"), config.get("ae_epochs"))
        ),
        None,
    )
    if match is None:
        return None
    return {"knn": match["knn_curve"][-1], "pixels_knn": match["pixels_knn"], "test_size": TEST_SUBSET}
