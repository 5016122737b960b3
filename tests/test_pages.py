"""Every page as a student reads it: runs you can tell apart, honest texts about the numbers,
figures that read on a projector (checked on the figures `cae` builds and through AppTest)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from cae.config import Config
from cae.experiment import train_or_load
from cae.figures import classifier_curves, kernel_difference, live_loss, per_class_bars, timing_bars
from cae.report import class_extremes_sentence
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index, runs_dir
from cae.words import run_summary, run_title

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SHIPPED = PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"]


def shipped_metrics() -> dict:
    return json.loads((SHIPPED / "metrics.json").read_text())


def test_a_run_title_says_what_differs_from_the_lecture():
    m = shipped_metrics()
    assert run_title(m) == "Lecture's settings"
    variant = {**m, "config": {**m["config"], "label_fraction": 0.01, "freeze_encoder": True, "seed": 2}}
    assert run_title(variant) == "1% labels, frozen encoder (linear probe), seed 2"
    small = {
        **m,
        "config": {**m["config"], "batch_size": 100, "ae_epochs": 20, "clf_epochs": 10},
        "dataset": {**m["dataset"], "name": "bundled sample (CIFAR-10, 1,000 + 200 images)", "test_size": 200},
    }
    assert run_title(small) == "20 + 10 epochs, batch 100, on bundled sample"
    assert "200 test images" in run_summary(small)


def test_a_run_at_chance_level_names_no_best_class():
    m = shipped_metrics()
    chance = {
        **m,
        "classifier": [{"epoch": 1, "test_acc": 10.0}],
        "per_class_acc": {c: (100.0 if c == "cat" else 0.0) for c in m["dataset"]["classes"]},
    }
    assert class_extremes_sentence(chance).startswith("At chance level: 10.0%")
    assert class_extremes_sentence(m).startswith(
        "The best class is automobile (67.2%), beyond the noise of every other"
    )


def test_accuracy_charts_draw_the_chance_line():
    m = shipped_metrics()
    for fig in (classifier_curves({"this": m}), per_class_bars(m["dataset"]["classes"], m["per_class_acc"], None)):
        assert any(shape.y0 == 10.0 and shape.line.dash == "dot" for shape in fig.layout.shapes)


def test_the_live_loss_has_two_panels_and_whole_epochs():
    points = [("autoencoder", 0.5, 0.2), ("autoencoder", 1.0, 0.1), ("classifier", 0.5, 2.0), ("scratch", 0.5, 2.1)]
    fig = live_loss(points)
    assert [t.xaxis for t in fig.data] == ["x", "x2", "x2"]
    assert fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.type != "log"
    assert fig.data[1].line.dash != fig.data[2].line.dash  # fine-tuned and scratch told apart


def test_difference_maps_share_one_scale_and_timing_charts_one_axis():
    small, big = torch.full((64, 3, 3, 3), 0.01), torch.full((64, 3, 3, 3), 0.1)
    assert kernel_difference(small, "a", 0.1).data[0].zmax == kernel_difference(big, "b", 0.1).data[0].zmax == 0.1
    transpose = timing_bars(
        {"encoder convs": 0.01, "fc layers": 0.002, "decoder convs": 0.02, "upsampling": 0.0}, "transpose", top_ms=30
    )
    assert "upsampling" not in list(transpose.data[0].x) and list(transpose.layout.yaxis.range) == [0, 30]


def test_a_variant_with_few_labels_says_so_on_every_page(small_dataset):
    cfg = Config(
        latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=1, label_fraction=0.1, precision="fp32", test_limit=50
    )
    path = train_or_load(cfg, small_dataset, runs_dir()).path
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = path.name
    at.run()
    for page in ("app_pages/kernels.py", "app_pages/classifier.py", "app_pages/try_image.py", "app_pages/overview.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert any("10% labels" in m.value for m in at.markdown), page
    assert any("10% labels" in label for label in at.sidebar.selectbox[0].options)


def test_the_kernels_page_steps_through_every_epoch_of_a_new_run(small_dataset, small_folder):
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=3, clf_epochs=2, precision="fp32", test_limit=50)
    path = train_or_load(cfg, small_dataset, runs_dir()).path
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = path.name
    at.query_params["data"] = str(small_folder)
    at.run()
    at.switch_page("app_pages/kernels.py").run()
    assert not at.exception
    step = at.slider(key="kernel_step")
    assert step.max == 5 and step.value == 5  # the random start, 3 autoencoder epochs, 2 fine-tuning epochs
    step.set_value(2).run()
    assert any(m.value.startswith("**autoencoder epoch 2**") for m in at.markdown)
    at.number_input(key="kernel_pick").set_value(17).run()
    assert not at.exception
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    slices = next(s for s in specs if s["layout"]["title"]["text"].startswith("Kernel 17"))
    assert len(slices["data"]) == 3  # R, G and B
    distance = next(s for s in specs if s["layout"]["title"]["text"].startswith("Distance from the random start"))
    assert {t["name"] for t in distance["data"]} >= {"autoencoder: mean of 64", "scratch classifier: kernel 17"}


def test_the_kernels_page_of_a_run_saved_before_per_epoch_snapshots_says_so():
    import shutil

    old_style = runs_dir() / "saved-before-per-epoch-kernels"
    shutil.copytree(SHIPPED, old_style)
    kernels = torch.load(old_style / "kernels.pt", weights_only=True)
    torch.save({k: v for k, v in kernels.items() if not k.endswith("_epochs")}, old_style / "kernels.pt")
    if not (old_style / "autoencoder.pt").exists():
        shutil.copy(SHIPPED / "autoencoder.pt", old_style)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = old_style.name
    at.run()
    at.switch_page("app_pages/kernels.py").run()
    assert not at.exception
    assert at.slider(key="kernel_step").max == 2  # three snapshots: the start, after the autoencoder, after fine-tuning
    assert any("three moments only" in c.value for c in at.caption)


def budget_points(gaps: dict[int, tuple[float, float]], seeds: int = 3) -> list[dict]:
    """Points whose fine-tuned and scratch accuracy at each budget are the given means, +-0.5 over seeds."""
    return [
        {"budget": b, "seed": s, "finetuned": f + (s - 1) * 0.5, "scratch": sc + (s - 1) * 0.5, "frozen": 20.0}
        for b, (f, sc) in gaps.items()
        for s in range(seeds)
    ]


def test_the_label_budget_sentence_says_where_pretraining_helps_and_where_the_lines_meet():
    from cae.budget_report import label_budget_sentence
    from cae.sweeps import budget_lines

    lines = budget_lines(
        budget_points({100: (25.0, 20.0), 1000: (40.0, 37.0), 10000: (51.0, 50.8), 50000: (55.0, 55.2)})
    )
    sentence = label_budget_sentence(lines)
    assert sentence.startswith(
        "Starting from the autoencoder beats starting from random weights beyond the seeds' "
        "spread at 100, 1,000 labelled images"
    )
    assert "widest gap is +5.0 points at 100 labels" in sentence and "from 10,000 labels on" in sentence
    one_seed = label_budget_sentence(budget_lines(budget_points({100: (25.0, 20.0)}, seeds=1)))
    assert "one seed per point, so the noise is not measured" in one_seed
    none = label_budget_sentence(budget_lines(budget_points({100: (25.0, 24.5), 1000: (40.0, 40.4)})))
    assert none.startswith("At no budget is the fine-tuned line above scratch beyond the seeds' spread")
    assert "every gap is within the seeds' spread" in none


def test_the_classifier_page_draws_the_shipped_label_budget_lines():
    from cae.sweeps import load_label_budget

    sweep = load_label_budget()
    assert sweep is not None and sweep["steps"] == 300
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/classifier.py").run()
    assert not at.exception
    chart = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("Test accuracy against labels")
    )
    assert [t["name"] for t in chart["data"]] == [
        "fine-tuned from the autoencoder",
        "frozen encoder + linear head",
        "from scratch (random init)",
    ]
    assert chart["data"][0]["x"] == sorted({p["budget"] for p in next(iter(sweep["sources"].values()))["points"]})
    # no mode bar (eight Tab stops each) on charts that take no clicks
    assert all(json.loads(c.proto.config or "{}").get("displayModeBar") is False for c in at.get("plotly_chart"))


def test_an_indefinite_article_follows_the_word():
    from cae.words import with_article

    assert [with_article(w) for w in ("airplane", "automobile", "cat", "Ox")] == [
        "an airplane",
        "an automobile",
        "a cat",
        "an Ox",
    ]


def test_run_this_sweep_is_one_job_and_its_chart_fills_in_and_each_point_opens_on_every_page():
    from cae.jobs import DONE, manager_for

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/classifier.py").run()
    at.radio(key="finetune_what").set_value("the label-budget sweep").run()
    button = at.button(key="run_budget")
    assert "100, 1,000 labels, 1 seed" in button.label  # the sample: the CPU default, budgets that fit it
    button.click().run()
    job = manager_for(runs_dir()).get(at.session_state["budget_job"])
    assert manager_for(runs_dir()).wait(job.id, 600).state == DONE and len(job.result) == 2
    at.run()
    assert not at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any("this run on bundled sample" in t for t in titles)
    assert at.selectbox(key="open_point").options[0] == "100 labels, seed 0: fine-tuned and scratch"
    at.selectbox(key="open_point").set_value("1,000 labels, seed 0: frozen encoder").run()
    at.button(key="open_point_button").click().run()
    point = load_run(at.session_state["viewing"])  # metrics and kernels only; the autoencoder is the source's
    assert point.config.label_count == 1000 and point.config.freeze_encoder and point.classifier is None
    assert not (point.path / "autoencoder.pt").exists()
    source = load_run(PRETRAINED_DIR / pretrained_index()["default"])
    assert point.metrics["autoencoder_source"] == source.name
    assert all(
        torch.equal(a, b)
        for a, b in zip(point.autoencoder.state_dict().values(), source.autoencoder.state_dict().values())
    )
    for page in (
        "app_pages/overview.py",
        "app_pages/train.py",
        "app_pages/kernels.py",
        "app_pages/latent.py",
        "app_pages/classifier.py",
        "app_pages/try_image.py",
    ):
        at.switch_page(page).run()
        assert not at.exception, page
        assert any("1,000 labels" in m.value for m in at.markdown), page


def test_the_label_budget_box_shows_the_lines_of_the_run_viewed():
    """Opening the Long run shows the Long run's label-budget lines, not the Lecture preset's."""
    from cae.sweeps import load_label_budget

    sources = load_label_budget()["sources"]
    long_run = next(name for name in sources if name != pretrained_index(PRETRAINED_DIR)["default"])
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = long_run
    at.run()
    at.switch_page("app_pages/classifier.py").run()
    assert not at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert f"Test accuracy against labels: {sources[long_run]['title']}" in titles, titles
    # one seed: its verdict says "for this seed", and how far the lecture recipe's seeds spread at epoch 1
    from cae.sweeps import lecture_seeds

    first = [s["classifier"][0]["test_acc"] for s in lecture_seeds()]
    spread = f"spread {min(first):.1f}–{max(first):.1f}% fine-tuned"
    assert any("for this seed" in m.value for m in at.markdown)
    assert any("This run has one seed" in c.value and spread in c.value for c in at.caption)
