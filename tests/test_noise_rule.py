"""A best or a worst is named only when it stands beyond the noise of the runner-up (cae/evidence.py:
`leaders`), in every sentence that names one and in Lecture mode's answers, where a prediction within
the noise of the answer counts as right. Each rule is fed gaps just under and just over its
threshold; the words must switch exactly there."""

from __future__ import annotations

import json

from cae import lecture
from cae.budget_report import objectives_sentence
from cae.evidence import compare_accuracies, leaders
from cae.latent import TEST_SUBSET
from cae.report import class_extremes_sentence, representation_sentence, sweep_sentence, versus
from cae.runs import PRETRAINED_DIR, pretrained_index
from tests.test_evidence import EPS, threshold_gap

SHIPPED = PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"]


def classes_with(cat: float, bird: float) -> dict:
    """The shipped preset's metrics (1,000 test images per class) with cat and bird set, every other
    class far above both."""
    m = json.loads((SHIPPED / "metrics.json").read_text())
    per_class = {c: 70.0 + i for i, c in enumerate(m["per_class_acc"])}
    return {**m, "per_class_acc": {**per_class, "cat": cat, "bird": bird}}


def step(key: str) -> lecture.Step:
    return next(s for s in lecture.STEPS if s.key == key)


def test_leaders_keep_the_runner_up_exactly_while_it_is_within_the_noise():
    b, n = 40.0, 1000
    g = threshold_gap(b, n)

    def compare(x, y):
        return compare_accuracies(values[x], values[y], n)

    values = {"top": b + g - EPS, "next": b, "far": b - 30}
    assert leaders(values, compare) == ["top", "next"]
    values = {"top": b + g + EPS, "next": b, "far": b - 30}
    assert leaders(values, compare) == ["top"]
    assert leaders(values, compare, highest=False) == ["far"]


def test_the_worst_class_is_named_only_beyond_the_noise_and_a_prediction_within_it_counts():
    b, n = 32.8, 1000  # the preset's cat, on its 1,000 test images
    g = threshold_gap(b, n)
    within = classes_with(b, b + g - EPS)
    said = class_extremes_sentence(within)
    assert "no class is clearly the worst: cat (32.8%) is within noise of bird" in said, said
    assert "for this seed: two standard errors of the difference on 1,000 test images per class" in said
    answer = lecture.answer(step("classes"), within)
    assert (answer.choice, answer.also) == ("cat", ("bird",))
    assert answer.why.startswith("No class is clearly the worst: cat (32.8%) is within noise of bird"), answer.why
    assert answer.judge("bird").startswith("✓ Right within the noise: bird is within the noise of cat")
    assert answer.judge("cat") == "✓ As you predicted. " and answer.judge("frog") == "✗ Not quite. "

    apart = classes_with(b, b + g + EPS)
    assert "the worst class is cat (32.8%), beyond the noise of every other" in class_extremes_sentence(apart)
    answer = lecture.answer(step("classes"), apart)
    assert answer.also == () and answer.judge("bird") == "✗ Not quite. "
    assert answer.why.startswith("The worst class is cat (32.8%), beyond the noise of every other"), answer.why


def test_with_seeds_the_seeds_ranges_decide_the_worst_class():
    m = classes_with(32.8, 36.0)

    def seeds(bird_low: float) -> list[dict]:
        return [
            {"seed": s, "per_class_acc": {**m["per_class_acc"], "cat": 30.0 + s, "bird": bird_low + s}}
            for s in range(3)
        ]

    touching = seeds(32.0)  # cat 30-32, bird 32-34: the ranges touch
    assert "no class is clearly the worst" in class_extremes_sentence(m, touching)
    assert "3 seeds of this recipe" in class_extremes_sentence(m, touching)
    assert lecture.answer(step("classes"), m, seeds=touching).also == ("bird",)
    apart = seeds(32.0 + EPS)
    assert "the worst class is cat" in class_extremes_sentence(m, apart)
    assert lecture.answer(step("classes"), m, seeds=apart).also == ()


def knn_option(knn: float, pixels: float = 27.5, initial: float = 27.4) -> dict:
    return {"knn_curve": [knn], "pixels_knn": pixels, "initial_knn": initial, "points": []}


def test_the_best_code_is_named_only_beyond_the_noise_and_the_reference_points_are_said():
    b = 23.1
    g = threshold_gap(b, TEST_SUBSET)
    names = {"plain": "plain", "mask-0.75": "masking 75%"}
    close = objectives_sentence({"plain": knn_option(b + g - EPS), "mask-0.75": knn_option(b)}, names)
    assert close.startswith(f"By k-NN no code is clearly the best: plain ({b + g:.1f}%) is within noise of masking 75%")
    assert "raw pixels (27.5%)" in close and "the untrained encoder (27.4%)" in close
    far = objectives_sentence({"plain": knn_option(b + g + EPS), "mask-0.75": knn_option(b)}, names)
    assert far.startswith(f"By k-NN the best code is plain ({b + g:.1f}%), beyond the noise of every other")
    # every code below both reference points: said, with the codes for which that is beyond the noise
    low = objectives_sentence({"plain": knn_option(25.8), "mask-0.75": knn_option(23.1)}, names)
    assert "every code is below raw pixels (27.5%) and the untrained encoder (27.4%)" in low
    assert "beyond the noise only for masking 75%" in low


def seeded(values: list[float]) -> dict:
    return {"mean": sum(values) / len(values), "n": len(values), "values": values}


def test_a_sweeps_top_setting_is_named_only_beyond_every_other_settings_seeds():
    def groups(second_low: float) -> dict:
        return {
            0.1: {"test_acc": seeded([52.0, 53.0, 54.0])},
            0.3: {"test_acc": seeded([second_low - 2, second_low - 1, second_low])},
            0.0: {"test_acc": seeded([40.0, 41.0, 42.0])},
        }

    touching = sweep_sentence(groups(52.0), "test_acc", "leak", "Fine-tuned accuracy")
    assert touching.startswith("No leak clearly has the highest fine-tuned accuracy: leak 0.1 (53.0%) is within")
    assert "fine-tuned accuracy is lowest at leak 0 (41.0%), beyond the noise of every other" in touching
    apart = sweep_sentence(groups(52.0 - EPS), "test_acc", "leak", "Fine-tuned accuracy")
    assert apart.startswith("Fine-tuned accuracy is highest at leak 0.1 (53.0%), beyond the noise of every other")


def test_lecture_step_7_and_the_latent_page_say_the_same_words_for_the_same_numbers():
    pixels, n = 27.5, TEST_SUBSET  # two standard errors of the difference: about 3.8 points here
    said = []
    for code in (26.0, 22.0):
        words = versus(code, pixels, n)
        step7 = lecture.answer(step("code"), {}, representation={"knn": code, "pixels_knn": pixels, "test_size": n})
        latent = representation_sentence(
            {"code": {"knn": code, "probe": 30.0}, "pixels": {"knn": pixels}, "initial": {"knn": pixels}}, n, 5
        )
        assert f"the code is {words} the raw pixels" in step7.why and f"is {words} the raw pixels" in latent
        said.append(words)
    assert said == ["about as good as", "worse than"]
