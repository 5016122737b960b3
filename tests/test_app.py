"""The Streamlit app through AppTest: every page in every situation, the Train controls, real jobs
started by buttons, Stop, shared jobs, and fine-tuning variants that reuse the autoencoder.

Charts are unknown elements to AppTest: these tests check state and the figures `cae` builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from cae.config import Config
from cae.figures import classifier_curves, kernel_grid_picture, per_class_bars
from cae.runs import load_run, runs_dir
from tests.conftest import wait_until

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = [
    "app_pages/overview.py",
    "app_pages/data.py",
    "app_pages/train.py",
    "app_pages/kernels.py",
    "app_pages/classifier.py",
    "app_pages/try_image.py",
]
TITLES = ["Overview", "Data", "Train", "First-layer kernels", "Classifier", "Try an image"]


def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def manager():
    from app_pages.caches import jobs

    return jobs()


def visit_every_page(at: AppTest) -> dict[str, AppTest]:
    seen = {}
    for page, title in zip(PAGES, TITLES):
        at.switch_page(page).run()
        assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
        assert at.title and at.title[0].value.startswith(title), page
        seen[page] = at
    return seen


def info_text(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.info, *at.error, *at.warning, *at.success])


def test_every_page_with_the_pretrained_run():
    at = app()
    assert "pretrained" in at.session_state["viewing"]
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert "No run yet" not in info_text(at), page


def test_every_page_with_no_run_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_PRETRAINED", str(tmp_path / "none"))
    at = app()
    visit_every_page(at)
    for page in ["app_pages/kernels.py", "app_pages/classifier.py", "app_pages/try_image.py"]:
        at.switch_page(page).run()
        assert "No run yet — train one on the Train page." in info_text(at)


def test_every_page_with_no_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_DATA", str(tmp_path / "missing"))
    at = app()
    visit_every_page(at)
    at.switch_page("app_pages/data.py").run()
    assert "does not exist" in info_text(at)


def test_a_damaged_run_is_named_and_the_others_still_work(tmp_path, monkeypatch):
    broken = runs_dir() / "z16-broken"
    broken.mkdir(parents=True)
    (broken / "metrics.json").write_text('{"config": ')
    at = app()
    labels = at.sidebar.selectbox[0].options  # AppTest lists the formatted labels
    assert any("damaged" in label for label in labels)
    at.session_state["viewing"] = str(broken)
    at.run()
    at.switch_page("app_pages/kernels.py").run()
    assert not at.exception and "metrics.json is damaged" in info_text(at)


def set_train_controls(at: AppTest, **values) -> AppTest:
    at.switch_page("app_pages/train.py").run()
    for key, value in values.items():
        at.session_state[key] = value
    return at.run()


TINY_CONTROLS = dict(
    latent_dim=16,
    ae_epochs=1,
    clf_epochs=1,
    batch_size=128,
    subset="Custom size",
    limit_custom=256,
    test_limit=256,
    precision="fp32",
)


def test_every_train_control_reaches_the_config_of_the_job_it_starts(hold):
    at = set_train_controls(
        app(),
        latent_dim=64,
        leak=0.25,
        upsample="transpose",
        ae_epochs=3,
        clf_epochs=2,
        batch_size=500,
        lr=5e-4,
        clf_lr=2e-3,
        subset="Quick: 10,000 images",
        test_limit=300,
        precision="fp32",
        seed=7,
        scratch_baseline=False,
        flip=True,
        noise=0.15,
        mask=0.25,
        augment=True,
    )
    assert not at.exception
    at.button(key="train_button").click().run()
    job = manager().get(at.session_state["job_id"])
    manager().cancel(job.id)
    assert job.config == Config(
        latent_dim=64,
        leak=0.25,
        upsample="transpose",
        ae_epochs=3,
        clf_epochs=2,
        batch_size=500,
        lr=5e-4,
        clf_lr=2e-3,
        limit=10_000,
        test_limit=300,
        precision="fp32",
        seed=7,
        scratch_baseline=False,
        flip=True,
        noise=0.15,
        mask=0.25,
        augment=True,
    )


def wait_for_job(at: AppTest, timeout: float = 300) -> None:
    job = manager().wait(at.session_state["job_id"], timeout)
    assert job.state == "done", job.error
    for _ in range(3):  # the fragment notices, then the app reruns onto the new run
        at.run()


def test_a_tiny_job_started_from_the_buttons_shows_up_everywhere():
    at = set_train_controls(app(), **TINY_CONTROLS)
    at.button(key="train_button").click().run()
    assert not at.exception
    job = manager().get(at.session_state["job_id"])
    assert job.config.limit == 256 and job.config.latent_dim == 16
    wait_for_job(at)
    new_run = at.session_state["viewing"]
    assert new_run == str(job.run_path) and "pretrained" not in new_run
    assert at.sidebar.selectbox[0].value == new_run
    for page in ("app_pages/kernels.py", "app_pages/classifier.py", "app_pages/try_image.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    run = load_run(new_run)
    assert kernel_grid_picture(run.kernels["finetuned"]).shape == (330, 330, 3)
    assert (
        len(per_class_bars(run.classes, run.metrics["per_class_acc"], run.metrics["scratch"]["per_class_acc"]).data)
        == 2
    )
    assert len(classifier_curves({"this": run.metrics}).data) == 4
    at.switch_page("app_pages/train.py").run()
    at.button(key="train_button").click().run()
    assert "Loaded from cache" in info_text(at)


def test_stop_cancels_a_running_job(hold):
    at = set_train_controls(app(), **TINY_CONTROLS)
    at.button(key="train_button").click().run()
    job = manager().get(at.session_state["job_id"])
    wait_until(lambda: job.held, what="job held")
    at.run()
    at.button(key="stop_button").click().run()
    assert manager().wait(job.id, 60).state == "cancelled"
    assert job.run_path is None


def test_two_sessions_asking_for_the_same_config_share_one_job():
    first = set_train_controls(app(), **TINY_CONTROLS, seed=3)
    second = set_train_controls(app(), **TINY_CONTROLS, seed=3)
    first.button(key="train_button").click().run()
    second.button(key="train_button").click().run()
    assert first.session_state["job_id"] == second.session_state["job_id"]
    key = manager().get(first.session_state["job_id"]).key
    assert len([j for j in manager().jobs() if j.key == key]) == 1
    wait_for_job(first)
    wait_for_job(second)
    assert first.session_state["viewing"] == second.session_state["viewing"]


def test_a_third_config_queues_and_runs_after_the_shared_job(hold):
    sessions = [set_train_controls(app(), **TINY_CONTROLS, seed=seed) for seed in (5, 5, 6)]
    for at in sessions:
        at.button(key="train_button").click().run()
    ids = [at.session_state["job_id"] for at in sessions]
    assert ids[0] == ids[1] != ids[2]
    shared, third = manager().get(ids[0]), manager().get(ids[2])
    wait_until(lambda: shared.held, what="shared job held")
    assert shared.state == "running" and third.state == "queued"
    sessions[2].run()
    assert not sessions[2].exception
    assert any("number 1 in the queue" in m.value for m in sessions[2].markdown)
    hold.release()
    assert manager().wait(ids[2], 300).state == "done"
    assert third.started >= shared.finished


def test_stop_asks_first_when_other_sessions_watch_and_a_session_can_detach(hold):
    mine, theirs = (set_train_controls(app(), **TINY_CONTROLS, seed=8) for _ in range(2))
    mine.button(key="train_button").click().run()
    theirs.button(key="train_button").click().run()
    job = manager().get(mine.session_state["job_id"])
    wait_until(lambda: job.held, what="job held")
    mine.run()
    mine.button(key="stop_button").click().run()
    assert any("1 other session is watching this job" in w.value for w in mine.warning)
    assert job.state == "running" and not job.cancel_requested  # nothing stopped yet
    mine.button(key="detach_button").click().run()
    assert len(job.watchers) == 1 and "job_id" not in mine.session_state
    theirs.run()
    theirs.button(key="stop_button").click().run()  # the last watcher: no question asked
    assert manager().wait(job.id, 60).state == "cancelled"


def test_clear_cache_never_starts_a_second_manager_or_loses_a_running_job(hold):
    import streamlit as st

    at = set_train_controls(app(), **TINY_CONTROLS, seed=9)
    at.button(key="train_button").click().run()
    before, job_id = manager(), at.session_state["job_id"]
    st.cache_resource.clear()  # the menu's "Clear cache"
    st.cache_data.clear()
    at.run()
    assert manager() is before and manager().get(job_id).active
    assert not at.exception and any(h.value == "Your job" for h in at.header)
    hold.release()
    wait_for_job(at)


def test_the_zip_is_built_when_download_is_pressed_not_on_every_rerun(monkeypatch):
    import cae.runs

    at = set_train_controls(app(), **TINY_CONTROLS, seed=10)
    at.button(key="train_button").click().run()
    wait_for_job(at)
    calls = []
    monkeypatch.setattr(cae.runs, "zip_run", lambda path: calls.append(path) or b"")
    for _ in range(3):
        at.run()
    assert not at.exception and calls == []


def test_the_run_list_is_read_again_only_when_the_runs_folder_changes(monkeypatch):
    import app_pages.caches as shared

    at = app()
    calls = []
    original = shared.list_runs
    monkeypatch.setattr(shared, "list_runs", lambda *a, **k: calls.append(1) or original(*a, **k))
    for _ in range(3):
        at.run()
    assert calls == []  # listed once when the app opened, then from the cache
    (runs_dir() / "z16-new").mkdir()
    at.run()
    assert calls == [1]


def test_a_label_fraction_variant_reuses_the_autoencoder():
    at = set_train_controls(app(), **TINY_CONTROLS, seed=4)
    at.button(key="train_button").click().run()
    wait_for_job(at)
    base = load_run(at.session_state["viewing"])
    at.switch_page("app_pages/classifier.py").run()
    at.radio(key="variant_labels").set_value("10%").run()
    at.button(key="variant_button").click().run()
    at.switch_page("app_pages/train.py")  # where st.switch_page took the browser; AppTest needs telling
    wait_for_job(at)
    variant = load_run(at.session_state["viewing"])
    assert variant.config.label_fraction == 0.1
    assert variant.metrics["autoencoder_source"] == base.name
    assert variant.metrics["autoencoder"] == base.metrics["autoencoder"]  # not trained again: the same rows
    assert all(
        torch.equal(a, b)
        for a, b in zip(variant.autoencoder.state_dict().values(), base.autoencoder.state_dict().values())
    )


def test_overview_measures_where_the_time_goes_and_checks_the_calculator():
    at = app()
    at.number_input(key="calc_w").set_value(32).run()
    assert any("16 × 16" in s.value for s in at.success)
    at.button(key="measure_time").click().run()
    times = at.session_state["block_times"]
    assert set(times) == {"bilinear", "nearest", "transpose"}
    assert times["transpose"]["upsampling"] == 0 and times["bilinear"]["upsampling"] > 0


def test_try_an_image_rejects_a_non_image_upload():
    from cae.uploads import ImageInputError, image_from_bytes

    with pytest.raises(ImageInputError, match="not a picture"):
        image_from_bytes(b"hello, not an image")


def test_a_new_user_trains_with_the_defaults_and_every_page_shows_the_new_run(as_a_new_user):
    """A fresh clone, no CAE_* settings, an empty HOME: Train with the defaults on the sample."""
    at = AppTest.from_file(str(as_a_new_user / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert at.session_state["preset"] == "Small data" and not at.warning  # fits 1,000 images
    at.button(key="train_button").click().run()
    wait_for_job(at)
    new_run = Path(at.session_state["viewing"])
    assert new_run.parent == as_a_new_user.resolve() / "runs"  # the default ./runs, spelled one way
    for page in ("app_pages/kernels.py", "app_pages/classifier.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.sidebar.selectbox[0].value == str(new_run), page
        assert at.query_params["run"] == new_run.name  # a reload or a shared link opens it again
    assert load_run(new_run).metrics["classifier"][-1]["test_acc"] >= 30


def test_a_link_opens_its_run_and_an_unknown_name_falls_back_with_a_sentence():
    from cae.runs import list_runs

    shipped = [i for i in list_runs() if i.pretrained]
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = shipped[-1].name
    at.run()
    assert at.session_state["viewing"] == str(shipped[-1].path)
    lost = AppTest.from_file(APP, default_timeout=120)
    lost.query_params["run"] = "../../etc/passwd"
    lost.run()
    assert "pretrained" in lost.session_state["viewing"]
    assert any("not here" in w.value for w in lost.sidebar.warning)


def test_the_address_names_the_run_and_data_only_when_they_are_not_the_defaults(monkeypatch):
    """Streamlit pushes a browser-history entry per address change: the default view writes none,
    so the browser's Back is never spent on the same page."""
    from cae.runs import list_runs, pretrained_index

    monkeypatch.delenv("CAE_DATA", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert Path(at.session_state["viewing"]).name == pretrained_index()["default"]
    assert "run" not in at.query_params and "data" not in at.query_params
    other = next(i for i in list_runs() if i.pretrained and i.name != pretrained_index()["default"])
    at.sidebar.selectbox(key="run_picker").set_value(str(other.path)).run()
    assert at.query_params["run"] in (other.name, [other.name]) and "data" not in at.query_params


@pytest.mark.parametrize("damage", ["nested", "folder", "too large"])
def test_any_damaged_metrics_file_is_listed_as_damaged_and_breaks_no_page(tmp_path, monkeypatch, damage):
    """A metrics.json nested 100,000 deep (RecursionError in the JSON reader), a folder named
    metrics.json, or one larger than any run's: the run is listed as damaged, by its folder's name
    and never the server's path, and every page still draws."""
    from cae import runs

    broken = runs_dir() / f"z16-{damage.replace(' ', '-')}"
    broken.mkdir(parents=True)
    if damage == "nested":
        (broken / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "folder":
        (broken / "metrics.json").mkdir()
    else:
        monkeypatch.setattr(runs, "MAX_METRICS_BYTES", 100)
        (broken / "metrics.json").write_text('{"config": {}, "padding": "' + "x" * 200 + '"}')
    (error,) = [i.error for i in runs.list_runs() if i.path == broken]
    assert error.startswith(f"{broken.name}/metrics.json ") and str(runs_dir()) not in error, error
    at = app()
    assert any("damaged" in label for label in at.sidebar.selectbox[0].options)
    visit_every_page(at)
