"""Lecture mode: the lecture's steps in order, the step in the URL, and every "predict, then reveal"
answer computed from the shipped run's numbers."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from cae import lecture
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index
from cae.sweeps import load_sweeps

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def preset():
    return load_run(PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"])


def step(key: str) -> lecture.Step:
    return next(s for s in lecture.STEPS if s.key == key)


def test_the_steps_follow_the_lecture_and_every_answer_is_one_of_its_choices():
    assert [s.key for s in lecture.STEPS] == ["why", "architecture", "autoencoder", "kernels", "finetune", "classes", "code"]
    run = preset()
    code = lecture.code_numbers(run.metrics, load_sweeps()["runs"])
    for s in lecture.STEPS:
        if s.question:
            choice, why = lecture.answer(s, run.metrics, run.kernels, code)
            assert why and choice in (s.choices or run.classes), s.key


def test_answers_come_from_the_numbers():
    run = preset()
    assert lecture.answer(step("architecture"), run.metrics)[0] == "16×16"
    m = run.metrics
    assert lecture.answer(step("classes"), m)[0] == min(m["per_class_acc"], key=m["per_class_acc"].get)
    tied = {**m, "scratch": {**m["scratch"], "classifier": [{**m["classifier"][-1]}]}}
    assert lecture.answer(step("finetune"), tied)[0] == "within noise"
    behind = {**m, "scratch": {**m["scratch"], "classifier": [{**m["classifier"][-1], "test_acc": 60.0}]}}
    assert lecture.answer(step("finetune"), behind)[0] == "random weights"
    assert lecture.answer(step("code"), m, representation={"knn": 40.0, "pixels_knn": 27.5, "test_size": 1000})[0] \
        == "better than pixels"


def test_the_step_is_in_the_url_and_next_moves_on():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["step"] = "4"
    at.run()
    at.switch_page("app_pages/lecture.py").run()
    assert not at.exception and at.title[0].value.startswith("4/7 · ")
    at.radio(key="guess_kernels").set_value("very different").run()
    at.button(key="reveal_kernels").click().run()
    assert any(m.value.startswith("✗ Not quite. **almost the same**") for m in at.markdown)
    at.button(key="lecture_next").click().run()
    assert at.title[0].value.startswith("5/7 · ") and at.query_params["step"] in ("5", ["5"])
