"""The Latent space page as a student reads it, through AppTest: the map of a shipped run and of a
freshly trained one, neighbours by image number, the measured table and curve, a picture of
their own placed on the map, the sweeps drawn."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from cae.config import Config
from cae.experiment import train_or_load
from cae.runs import load_run, runs_dir

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "app_pages/latent.py"


def figures(at: AppTest) -> list[dict]:
    """The Plotly figures on the page (AppTest sees charts as unknown elements with a JSON spec)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def the_map(at: AppTest) -> dict:
    return next(f for f in figures(at) if "2-D" in f["layout"]["title"]["text"])


def open_page(run: str | None = None, data: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    if run:
        at.query_params["run"] = run
    if data:
        at.query_params["data"] = data
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def test_a_shipped_run_on_the_sample_shows_its_map_neighbours_and_measurements():
    at = open_page()
    assert any("everything below is measured on the data in use" in i.value for i in at.info)
    points = [p for trace in the_map(at)["data"] if trace.get("customdata") for p in trace["customdata"]]
    assert len(points) == 200 and len(set(points)) == 200  # the sample's whole test split, each image once
    at.number_input(key="latent_image").set_value(points[57]).run()
    assert not at.exception
    captions = [img.caption for image in at.get("image") for img in image.proto.imgs]
    assert any(c.startswith(f"test image {points[57]}: ") for c in captions)
    neighbours = [m.value for m in at.markdown if "nearest" in m.value]
    assert len(neighbours) == 2 and all(" of the 8 share its class" in n for n in neighbours)
    table = at.dataframe[0].value
    assert list(table["features"]) == [
        "raw pixels",
        "the initial (random) encoder's code",
        "this run's code",
        "the fine-tuned classifier's features",
    ]
    assert any("neighbourhood" in m.value and "k-NN accuracy" in m.value for m in at.markdown)
    titles = [f["layout"]["title"]["text"] for f in figures(at)]
    assert any(t.startswith("Latent size") for t in titles) and any(t.startswith("Leak") for t in titles)
    curve = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("Is the code"))
    assert {t["name"] for t in curve["data"]} >= {"this run", "Long run (30 + 30 epochs)"}


def test_a_freshly_trained_run_draws_the_curve_it_recorded(small_dataset, small_folder):
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=3, clf_epochs=1, precision="fp32", test_limit=50)
    run = load_run(train_or_load(cfg, small_dataset, runs_dir()).path)
    at = open_page(run.name, str(small_folder))
    assert not any("measured on the data in use" in i.value for i in at.info)
    curve = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("Is the code"))
    mine = [t for t in curve["data"] if t["name"] == "this run" and t.get("xaxis", "x") == "x"][0]
    recorded = [run.metrics["representation"]["initial_knn"], *(r["knn_acc"] for r in run.metrics["autoencoder"])]
    assert mine["x"] == [0, 1, 2, 3] and mine["y"] == recorded
    assert any("is not on the chart" in c.value for c in at.caption)  # 16 numbers, 3 epochs: not the sweep's recipe


def test_a_picture_of_their_own_is_placed_on_the_map():
    picture = Image.fromarray(np.full((40, 40, 3), (30, 160, 60), np.uint8))
    data = io.BytesIO()
    picture.save(data, format="PNG")
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    at.session_state["uploaded_picture"] = data.getvalue()  # what the Try page keeps after an upload
    at.switch_page(PAGE).run()
    assert not at.exception
    assert any(trace["name"] == "your picture" for trace in the_map(at)["data"])
