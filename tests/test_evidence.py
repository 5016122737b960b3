"""The rules that decide every comparison the app prints (cae/evidence.py), fed gaps just under and
just over each threshold; the words must switch exactly there. Expected margins are computed here
from the textbook formulas, not taken from the module."""

from __future__ import annotations

import math

import pytest

from cae.evidence import (
    compare_accuracies,
    compare_paired,
    compare_seeds,
    compare_to_chance,
    mcnemar_p,
    noise_words,
    wilson,
)
from cae.report import pretraining_verdict, versus

EPS = 1e-6


def margin_of_difference(a: float, b: float, n: int) -> float:
    """Two standard errors of a difference of two binomial proportions (percent)."""
    return 200 * math.sqrt(a / 100 * (1 - a / 100) / n + b / 100 * (1 - b / 100) / n)


def threshold_gap(b: float, n: int) -> float:
    """The gap g at which g equals the margin of (b + g, b): solved by bisection."""
    low, high = 0.0, 100 - b
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if mid < margin_of_difference(b + mid, b, n) else (low, mid)
    return (low + high) / 2


@pytest.mark.parametrize("b, n", [(36.5, 200), (51.3, 10_000), (50.0, 18), (20.4, 1_000)])
def test_two_accuracies_are_apart_only_beyond_two_standard_errors_of_the_difference(b, n):
    g = threshold_gap(b, n)
    assert compare_accuracies(b + g - EPS, b, n).winner is None
    assert compare_accuracies(b + g + EPS, b, n).winner == 0
    assert compare_accuracies(b, b + g + EPS, n).winner == 1
    assert versus(b + g - EPS, b, n) == "about as good as" and versus(b + g + EPS, b, n) == "better than"


def rows(accuracies):
    return [{"epoch": e, "test_acc": a} for e, a in enumerate(accuracies, start=1)]


@pytest.mark.parametrize("b, n", [(36.5, 200), (51.3, 10_000)])
def test_the_classifier_verdict_switches_its_words_at_the_threshold(b, n):
    g = threshold_gap(b, n)
    for gap, words in ((g - 1e-4, "the two starts are within noise"), (g + 1e-4, "the pretrained encoder leads by")):
        text = pretraining_verdict(
            {"classifier": rows([b, b + gap]), "scratch": {"classifier": rows([b, b])}, "dataset": {"test_size": n}}
        )
        assert f"after the last epoch (2), for this seed, {words}" in text, text


def test_the_issue_cases_are_within_noise():
    """200 sample test images, 40.5 vs 36.5%; an 18-image upload, 72.2 vs 50.0%; the preset, 52.5 vs 51.3%."""
    for a, b, n in ((40.5, 36.5, 200), (72.2, 50.0, 18), (52.54, 51.34, 10_000)):
        assert abs(a - b) < margin_of_difference(a, b, n)
        assert compare_accuracies(a, b, n).winner is None


def test_small_test_sets_get_their_noise_in_words():
    assert noise_words(72.2, 50.0, 18) == (
        f"on 18 test images a gap under {margin_of_difference(72.2, 50.0, 18):.1f} points is noise"
    )
    assert noise_words(72.2, 50.0, 18) == "on 18 test images a gap under 31.6 points is noise"


def test_an_accuracy_is_above_chance_only_beyond_two_standard_errors_of_guessing():
    margin = 200 * math.sqrt(0.1 * 0.9 / 200)  # 4.24 points on 200 images, 10 classes
    assert compare_to_chance(10 + margin - EPS, 10, 200).winner is None
    assert compare_to_chance(10 + margin + EPS, 10, 200).winner == 0


@pytest.mark.parametrize(
    "only_first, only_second, p",
    [(15, 5, 0.041389), (14, 6, 0.115318), (9, 1, 0.021484), (8, 2, 0.109375), (0, 0, 1.0)],
)
def test_mcnemars_exact_p_matches_the_binomial_tables(only_first, only_second, p):
    assert mcnemar_p(only_first, only_second) == pytest.approx(p, abs=1e-6)


def test_a_paired_gap_is_decided_at_p_005():
    # 20 discordant images: 15/5 gives p = 0.041 (apart), 14/6 gives p = 0.115 (within noise)
    assert compare_paired(15, 5, 200).winner == 0 and compare_paired(5, 15, 200).winner == 1
    assert compare_paired(14, 6, 200).winner is None


def test_seeds_are_apart_only_when_their_ranges_do_not_overlap():
    assert compare_seeds([50.0, 51.0, 52.0], [52.0, 53.0, 54.0]).winner is None  # touching ranges overlap
    assert compare_seeds([50.0, 51.0, 52.0 - EPS], [52.0, 53.0, 54.0]).winner == 1
    assert compare_seeds([52.54, 54.04, 52.21], [51.34, 51.39, 52.80]).winner is None  # the preset's seeds
    with pytest.raises(ValueError):
        compare_seeds([50.0], [51.0])


def test_the_wilson_interval_matches_its_formula():
    assert wilson(50.0, 20) == pytest.approx((29.93, 70.07), abs=0.01)
    low, high = wilson(0.0, 20)
    assert low == 0.0 and high == pytest.approx(16.11, abs=0.01)  # a class at 0% of 20 images
