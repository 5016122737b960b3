"""Classroom mode (CAE_CLASSROOM=1): seats in the address own their jobs, runs and uploads; no typed
server paths; the lecturer's caps; an admin view behind a password. Without it, nothing changes."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cae import classroom
from cae.classroom import Caps, Ledger, admin_password_matches, refusal, sweep_refusal
from cae.config import Config
from cae.jobs import CANCELLED, DONE, RUNNING, manager_for
from cae.runs import runs_dir, train_or_load
from tests.conftest import REPO, wait_until

APP = str(REPO / "streamlit_app.py")
TINY = dict(latent_dim=16, ae_epochs=1, clf_epochs=1, batch_size=128, subset="Custom size", limit_custom=256,
            test_limit=256, precision="fp32")
PASSWORD = "lecture-hall-7"


@pytest.fixture
def hall(monkeypatch):
    """Classroom mode with small caps and a lecturer's password."""
    for name, value in {"CAE_CLASSROOM": "1", "CAE_ADMIN_PASSWORD": PASSWORD, "CAE_MAX_EPOCHS": "3",
                        "CAE_MAX_QUEUED": "2", "CAE_MAX_BATCH": "500", "CAE_MAX_IMAGES": "600"}.items():
        monkeypatch.setenv(name, value)


def browser(seat: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if seat:
        at.query_params["seat"] = seat
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def press_train(at: AppTest, **controls) -> AppTest:
    at.switch_page("app_pages/train.py").run()
    for key, value in {**TINY, **controls}.items():
        at.session_state[key] = value
    at.run()
    return at.button(key="train_button").click().run()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --- the rules, as a library -----------------------------------------------------------------

def test_the_caps_come_from_the_environment_and_bad_values_are_named(monkeypatch):
    assert Caps.from_env({}) == Caps(30, 50_000, 2_000, 2, 100)
    assert Caps.from_env({"CAE_MAX_EPOCHS": "4", "CAE_MAX_QUEUED": "1"}).epochs == 4
    with pytest.raises(classroom.ClassroomError, match="CAE_MAX_BATCH='lots' is not a whole number"):
        Caps.from_env({"CAE_MAX_BATCH": "lots"})
    with pytest.raises(classroom.ClassroomError, match="CAE_MAX_QUEUED must be at least 1"):
        Caps.from_env({"CAE_MAX_QUEUED": "0"})


def test_each_cap_refuses_with_a_sentence():
    caps = Caps(epochs=3, images=600, batch=500, queued=2, upload_mb=1)
    fine = Config(ae_epochs=3, clf_epochs=3, batch_size=500, limit=600)
    assert refusal(fine, 1000, caps, queued=1) is None
    assert "each seat may have 2" in refusal(fine, 1000, caps, queued=2)
    assert "At most 3 epochs" in refusal(fine.replace(clf_epochs=4), 1000, caps, 0)
    assert "largest batch size in this class is 500" in refusal(fine.replace(clf_batch_size=501), 1000, caps, 0)
    assert "asks for 1,000" in refusal(fine.replace(limit=None), 1000, caps, 0)  # all of 1,000 images
    assert refusal(fine.replace(limit=None), 500, caps, 0) is None              # all of 500 fit
    assert sweep_refusal((100, 500), caps, queued=1) is None                    # a sweep counts as one job
    assert "each seat may have 2" in sweep_refusal((100,), caps, queued=2)
    assert "reaches 1,000" in sweep_refusal((100, 1000), caps, queued=0)


def test_the_admin_password_is_compared_in_constant_time_and_never_empty():
    assert admin_password_matches(PASSWORD, {"CAE_ADMIN_PASSWORD": PASSWORD})
    assert not admin_password_matches(PASSWORD[:-1], {"CAE_ADMIN_PASSWORD": PASSWORD})
    assert not admin_password_matches("", {})  # no password set: no admin view at all
    assert "compare_digest" in classroom.admin_password_matches.__code__.co_names


def test_a_shared_job_belongs_to_its_submitter_and_a_cached_hit_to_nobody_new(small_dataset, hold):
    manager = manager_for(runs_dir())
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=1, precision="fp32", test_limit=50)
    first = manager.submit(cfg, small_dataset, "a", owner="seat-aaaaaaaa")
    same = manager.submit(cfg, small_dataset, "b", owner="seat-bbbbbbbb")
    assert same is first and first.owner == "seat-aaaaaaaa"
    assert [j.id for j in manager.active_jobs_of("seat-aaaaaaaa")] == [first.id]
    assert manager.active_jobs_of("seat-bbbbbbbb") == []  # attaching to a job is not queuing one
    hold.release()
    assert manager.wait(first.id, 300).state == DONE
    assert Ledger(runs_dir()).owner(first.run_path.name) == "seat-aaaaaaaa"
    again = manager.submit(cfg, small_dataset, "c", owner="seat-cccccccc")
    assert again.cached and again.owner is None
    assert Ledger(runs_dir()).owner(first.run_path.name) == "seat-aaaaaaaa"


def test_uploads_count_against_their_seat_only(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.record_upload("seat-aaaaaaaa", tmp_path / "u1", 400_000)
    ledger.record_upload("seat-aaaaaaaa", tmp_path / "u2", 300_000)
    ledger.record_upload("seat-aaaaaaaa", tmp_path / "u1", 400_000)  # the same upload again: counted once
    assert ledger.upload_bytes("seat-aaaaaaaa") == 700_000 and ledger.upload_bytes("seat-bbbbbbbb") == 0


# --- the app, as students and the lecturer use it ----------------------------------------------

def test_without_classroom_mode_there_are_no_seats_and_no_lecturer_page():
    at = browser()
    assert "seat" not in at.query_params and "seat" not in at.session_state
    at.switch_page("app_pages/data.py").run()
    assert len(at.radio(key="data_kind").options) == 4  # every source, typed folders included


def test_each_browser_gets_a_seat_in_its_address_and_a_reload_keeps_it(hall):
    at = browser()
    seat = at.query_params["seat"]
    assert classroom.valid_seat(seat)
    assert browser(seat).session_state["seat"] == seat       # a reload: the same seat
    assert browser().query_params["seat"] != seat             # another browser: another seat
    assert any("Queue:** 0 waiting" in c.value for c in at.sidebar.caption)


def test_a_typed_path_is_refused(hall, small_folder, monkeypatch):
    at = browser(data=str(small_folder))  # a link naming a folder on the server
    assert at.session_state["data_source"] == "sample"
    assert any("the link's folder is not used" in w.value for w in at.sidebar.warning)
    at.switch_page("app_pages/data.py").run()
    options = at.radio(key="data_kind").options
    assert not any("folder on this computer" in o or "CIFAR-10 (downloads" in o for o in options)
    assert not [w for w in at.text_input if w.key == "data_path"]  # no box to type a server path in
    monkeypatch.setenv("CAE_DATA", str(small_folder))  # the lecturer's data is offered and allowed
    at = browser(data=str(small_folder))
    assert at.session_state["data_source"] == str(small_folder.resolve())
    at.switch_page("app_pages/data.py").run()
    assert at.radio(key="data_kind").options[0] == "The class's data (chosen by the lecturer)"


def test_the_caps_are_enforced_on_the_train_page(hall):
    at = press_train(browser(), ae_epochs=4)
    assert any("At most 3 epochs" in e for e in errors(at)) and "job_id" not in at.session_state
    at = press_train(at, batch_size=1000)
    assert any("largest batch size in this class is 500" in e for e in errors(at))
    at = press_train(at, limit_custom=800)
    assert any("At most 600 training images" in e for e in errors(at))


def test_the_third_queued_job_of_a_seat_is_refused(hall, hold):
    at = browser()
    press_train(at, seed=1)
    press_train(at, seed=2)
    assert len(manager_for(runs_dir()).active_jobs_of(at.session_state["seat"])) == 2
    press_train(at, seed=3)
    assert any("You already have 2 jobs queued or training" in e for e in errors(at))
    other = press_train(browser(), seed=3)  # another seat is not held back by this one
    assert not errors(other) and len(manager_for(runs_dir()).active_jobs_of(other.session_state["seat"])) == 1
    hold.release()


def test_another_seats_run_cannot_be_deleted_but_its_own_can(hall, small_dataset):
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=1, precision="fp32", test_limit=50)
    path = train_or_load(cfg, small_dataset, runs_dir()).path
    Ledger(runs_dir()).claim_run(path.name, "seat-owner-1")
    stranger = browser("seat-stranger", run=path.name)
    stranger.switch_page("app_pages/train.py").run()
    assert not [b for b in stranger.button if b.key == "delete_run"]
    assert any("only it (or the lecturer) can delete it" in c.value for c in stranger.caption)
    owner = browser("seat-owner-1", run=path.name)
    owner.switch_page("app_pages/train.py").run()
    owner.button(key="delete_run").click().run()
    owner.button(key="delete_confirmed").click().run()
    assert not path.exists() and Ledger(runs_dir()).owner(path.name) is None


def test_the_lecturer_sees_every_seats_jobs_and_can_cancel_and_delete_them(hall, hold, small_dataset):
    student = press_train(browser())
    job = manager_for(runs_dir()).get(student.session_state["job_id"])
    wait_until(lambda: job.state == RUNNING, what="the student's job running")
    lecturer = browser()
    lecturer.switch_page("app_pages/admin.py").run()
    assert not [b for b in lecturer.button if b.key == f"admin_cancel_{job.id}"]  # not before the password
    lecturer.text_input(key="admin_password").input("guess")  # a form: sent by its button
    lecturer.button[0].click().run()
    assert any("not the lecturer's password" in e for e in errors(lecturer))
    lecturer.text_input(key="admin_password").input(PASSWORD)
    lecturer.button[0].click().run()
    lines = [m.value for m in lecturer.markdown]
    assert any(f"**#{job.id}**" in line and student.session_state["seat"][:6] in line for line in lines), lines
    lecturer.button(key=f"admin_cancel_{job.id}").click().run()
    hold.release()
    assert manager_for(runs_dir()).wait(job.id, 300).state == CANCELLED
    path = train_or_load(Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=0, precision="fp32",
                                test_limit=50), small_dataset, runs_dir()).path
    Ledger(runs_dir()).claim_run(path.name, student.session_state["seat"])
    lecturer.run()
    lecturer.button(key=f"admin_delete_{path.name}").click().run()
    assert not path.exists()
