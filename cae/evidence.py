"""One place for the statistics of a comparison: when two measured numbers differ beyond their
noise, which rule decided, and the words for it. Every sentence in the app that compares numbers
(the Classifier verdict, Lecture mode's reveals, the Latent space and sweep sentences, the
label-budget sentence, the Overview) is written from a `Verdict` made here.

The rules, in the order they are preferred (`RULES` says them in words for the pages):
- seeds: where several seeds were run, their spread is the noise. One side is ahead only when the
  two ranges (lowest to highest seed) do not overlap.
- paired: where both classifiers' predictions on the same test images exist, McNemar's exact test
  on the images only one of them gets right; one side is ahead when p < 0.05 (two-sided).
- accuracies: two accuracies measured on the same n test images, one seed: one side is ahead only
  when the gap exceeds two standard errors of the difference, 2·√(a(1−a)/n + b(1−b)/n).
- chance: one accuracy against guessing (a fixed number): above chance only beyond two standard
  errors of guessing on n images, 2·√(c(1−c)/n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Z = 2.0  # standard errors of a difference that make a gap more than noise
P_PAIRED = 0.05  # McNemar's two-sided p below which a paired gap is more than noise
Z_WILSON = 1.96  # a 95% interval for one accuracy

RULES = {
    "seeds": "the seeds' spread is the noise: one start is ahead only when the ranges of the seeds' results "
    "(lowest to highest) do not overlap",
    "paired": "a paired test on the same test images (McNemar, exact): one start is ahead only when p < 0.05",
    "accuracies": "two accuracies on the same test images, one seed: one start is ahead only when the gap exceeds "
    "two standard errors of the difference",
    "chance": "an accuracy is above chance only when it beats guessing by more than two standard errors of guessing "
    "on that many test images",
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison of a first and a second number."""

    gap: float  # first minus second, in points
    winner: int | None  # 0: the first is ahead, 1: the second, None: within the noise
    rule: str  # a key of RULES
    noise: str  # the noise that decided, in words
    n: int | None = None  # test images (rules "accuracies" and "paired")
    seeds: int | None = None  # seeds on each side (rule "seeds"), and their ranges (low, high)
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None
    margin: float | None = None  # the gap (points) that is noise, where the rule has one number for it

    @property
    def decided(self) -> bool:
        return self.winner is not None

    def say(self, ahead: str, within: str, behind: str) -> str:
        """The words for this outcome: `ahead` when the first number is ahead beyond the noise,
        `behind` when the second is, `within` otherwise. Every sentence chooses its words here."""
        return {0: ahead, None: within, 1: behind}[self.winner]


# --- single accuracies ------------------------------------------------------------------------


def standard_error(accuracy: float, n: int) -> float:
    """One standard error (points) of a test accuracy in percent measured on n images (binomial)."""
    p = min(max(accuracy / 100, 0.0), 1.0)
    return 100 * math.sqrt(p * (1 - p) / max(n, 1))


def difference_margin(a: float, b: float, n: int, n_b: int | None = None) -> float:
    """Two standard errors (points) of the difference of two accuracies measured on n images each
    (or on n and n_b images: two classes' accuracies rest on different test images)."""
    return Z * math.hypot(standard_error(a, n), standard_error(b, n if n_b is None else n_b))


def wilson(accuracy: float, n: int, z: float = Z_WILSON) -> tuple[float, float]:
    """The Wilson score interval (points) of an accuracy in percent measured on n images."""
    if n <= 0:
        return 0.0, 100.0
    p = min(max(accuracy / 100, 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(centre - half, 0.0), 100 * min(centre + half, 1.0)


def noise_words(a: float, b: float, n: int) -> str:
    """ "on 18 test images a gap under 31.6 points is noise": the margin of `compare_accuracies`."""
    return f"on {n:,} test images a gap under {difference_margin(a, b, n):.1f} points is noise"


# --- the three rules --------------------------------------------------------------------------


def _winner(gap: float, apart: bool) -> int | None:
    return (0 if gap > 0 else 1) if apart and gap != 0 else None


def compare_accuracies(a: float, b: float, n: int, n_b: int | None = None) -> Verdict:
    """Two accuracies (percent) on n test images each (n and n_b where they differ), one seed."""
    margin = difference_margin(a, b, n, n_b)
    images = f"{n:,}" if n_b in (None, n) else f"{n:,} and {n_b:,}"
    return Verdict(
        a - b,
        _winner(a - b, abs(a - b) > margin),
        "accuracies",
        f"two standard errors of the difference on {images} test images: ±{margin:.1f} points",
        n=n,
        margin=margin,
    )


def compare_to_chance(accuracy: float, chance: float, n: int) -> Verdict:
    """An accuracy (percent) on n test images against guessing among the classes (a fixed number, so
    only the accuracy is noisy: two standard errors of guessing on n images)."""
    margin = Z * standard_error(chance, n)
    gap = accuracy - chance
    return Verdict(
        gap,
        _winner(gap, abs(gap) > margin),
        "chance",
        f"two standard errors of guessing on {n:,} test images: ±{margin:.1f} points",
        n=n,
        margin=margin,
    )


def mcnemar_p(only_first: int, only_second: int) -> float:
    """McNemar's exact two-sided p: of the images exactly one classifier gets right, how surprising
    this split is if each is equally likely to be the one."""
    n, k = only_first + only_second, min(only_first, only_second)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare_paired(only_first: int, only_second: int, n: int) -> Verdict:
    """Two classifiers on the same n test images: `only_first` images only the first gets right,
    `only_second` only the second."""
    p = mcnemar_p(only_first, only_second)
    gap = 100 * (only_first - only_second) / max(n, 1)
    return Verdict(
        gap,
        _winner(gap, p < P_PAIRED),
        "paired",
        f"McNemar's exact test on {n:,} test images ({only_first} right only for one, {only_second} "
        f"only for the other): p = {p:.2g}",
        n=n,
    )


def overlap(first: list[float], second: list[float]) -> bool:
    """Whether the ranges (lowest to highest) of two sets of seeds' results overlap."""
    return min(first) <= max(second) and min(second) <= max(first)


def compare_seeds(first: list[float], second: list[float]) -> Verdict:
    """Two settings, each run with several seeds (at least two each)."""
    if min(len(first), len(second)) < 2:
        raise ValueError("The seeds rule needs at least two seeds on each side.")
    gap = sum(first) / len(first) - sum(second) / len(second)
    ranges = ((min(first), max(first)), (min(second), max(second)))
    seeds = min(len(first), len(second))
    return Verdict(
        gap,
        _winner(gap, not overlap(first, second)),
        "seeds",
        f"{seeds} seeds each: {ranges[0][0]:.1f}–{ranges[0][1]:.1f}% vs {ranges[1][0]:.1f}–{ranges[1][1]:.1f}%",
        seeds=seeds,
        ranges=ranges,
    )


# --- curves and sweeps ------------------------------------------------------------------------


def best(values: dict, highest: bool = True):
    """(key, value) of the best point of a curve or a sweep: argmax, or argmin with highest=False.
    Only for choosing (an epoch, a point to show); a sentence that names a best uses `leaders`."""
    key = (max if highest else min)(values, key=values.get)
    return key, values[key]


def leaders(values: dict, compare: Callable[[object, object], Verdict], highest: bool = True) -> list:
    """The key with the highest value (lowest with highest=False) and every key within the noise of
    it by `compare(top, other)`, in order. One key alone means it stands beyond the noise of the
    runner-up, the only case in which a sentence may call it best (or worst)."""
    order = sorted(values, key=values.get, reverse=highest)
    return [order[0]] + [k for k in order[1:] if compare(order[0], k).winner is None]


def accuracy_comparison(values: dict, counts: dict, seeds: dict | None = None) -> Callable[[object, object], Verdict]:
    """`compare` for `leaders` over accuracies: the seeds rule where both keys have two seeds or more
    (`seeds`: key -> every seed's value), else two accuracies on `counts[key]` test images each."""

    def compare(a, b) -> Verdict:
        if seeds and min(len(seeds.get(a, ())), len(seeds.get(b, ()))) > 1:
            return compare_seeds(seeds[a], seeds[b])
        return compare_accuracies(values[a], values[b], counts[a], counts[b])

    return compare
