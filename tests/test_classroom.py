"""Classroom mode (CAE_CLASSROOM=1): seats the server issued own their jobs, runs and uploads; no typed
server paths; the lecturer's caps; an admin view behind a password. Without it, nothing changes."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from cae import classroom
from cae.classroom import Caps, Ledger, active_jobs_of, admin_password_matches, refusal, sweep_refusal
from cae.config import Config
from cae.experiment import train_or_load
from cae.jobs import CANCELLED, DONE, RUNNING, manager_for
from cae.runs import runs_dir
from tests.conftest import REPO, wait_until

APP = str(REPO / "streamlit_app.py")
TINY = dict(
    latent_dim=16,
    ae_epochs=1,
    clf_epochs=1,
    batch_size=128,
    subset="Custom size",
    limit_custom=256,
    test_limit=256,
    precision="fp32",
)
PASSWORD = "lecture-hall-7"


@pytest.fixture
def hall(monkeypatch):
    """Classroom mode with small caps and a lecturer's password."""
    for name, value in {
        "CAE_CLASSROOM": "1",
        "CAE_ADMIN_PASSWORD": PASSWORD,
        "CAE_MAX_EPOCHS": "3",
        "CAE_MAX_QUEUED": "2",
        "CAE_MAX_BATCH": "500",
        "CAE_MAX_IMAGES": "600",
    }.items():
        monkeypatch.setenv(name, value)


def browser(code: str | None = None, **params) -> AppTest:
    """A new browser (a new session, no cookie) opening the app at an address with `params`; with
    `code`, its student then types that seat code in the sidebar, as from another browser."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if code:
        at.sidebar.text_input(key="seat_code").input(code)
        next(b for b in at.sidebar.button if "Use that seat" in b.label).click().run()
    return at


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
    assert Caps.from_env({}) == Caps(30, 50_000, 2_000, 2, 100, 20, 2_000, 300)
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
    assert refusal(fine.replace(limit=None), 500, caps, 0) is None  # all of 500 fit
    roomy = Caps(epochs=10, images=600, batch=500, queued=2, upload_mb=1)  # 3 x 10 x 600 = 18,000 images of work
    assert sweep_refusal((100,), 1, roomy, queued=1) is None  # one job; 3 lines x 300 steps x 10 images = 9,000
    assert "each seat may have 2" in sweep_refusal((100,), 1, caps, queued=2)
    assert "reaches 1,000" in sweep_refusal((100, 1000), 1, caps, queued=0)
    # its points train by steps: its work is held to one capped run's, 3 x 3 epochs x 600 images
    assert "more than one run may in this class (5,400" in sweep_refusal((100, 500), 1, caps, queued=0)


def test_the_whole_server_has_caps_too_whatever_the_number_of_seats():
    caps = Caps(epochs=3, images=600, batch=500, queued=2, upload_mb=1, queued_total=3)
    fine = Config(ae_epochs=3, clf_epochs=3, batch_size=500, limit=600)
    assert refusal(fine, 1000, caps, queued=0, queued_total=2) is None
    assert "server's queue is full (3 jobs" in refusal(fine, 1000, caps, queued=0, queued_total=3)  # a new seat too
    assert "server's queue is full" in sweep_refusal((100,), 1, caps, queued=0, queued_total=3)


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
    assert [j.id for j in active_jobs_of(manager, "seat-aaaaaaaa")] == [first.id]
    assert active_jobs_of(manager, "seat-bbbbbbbb") == []  # attaching to a job is not queuing one
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


def test_a_seat_exists_only_if_the_server_issued_it_and_no_address_carries_one(hall):
    at = browser()
    seat, ledger = at.session_state["seat"], Ledger(runs_dir())
    assert ledger.has_seat(seat) and "seat" not in at.query_params  # a link people share carries no seat
    assert any("Queue:** 0 waiting" in c.value for c in at.sidebar.caption)
    for typed in ("seat-forged-12345678", seat):  # a seat typed in the address is never adopted, even a real one
        other = browser(seat=typed)
        assert other.session_state["seat"] not in (typed, seat) and "seat" not in other.query_params
        assert any("not one this server keeps" in w.value for w in other.sidebar.warning)
    code = ledger.code_of(seat)
    assert at.sidebar.expander[0].label == f"Your seat: {code}"
    assert browser(code=code.lower().replace("-", "")).session_state["seat"] == seat  # the student's other browser
    wrong = browser(code="ABCD-EFGH")
    assert wrong.session_state["seat"] != seat and any("No seat has that code" in e.value for e in wrong.sidebar.error)


def test_one_address_gets_a_limited_number_of_new_seats_a_minute(hall, monkeypatch):
    monkeypatch.setenv("CAE_SEATS_PER_MINUTE", "2")
    browser(), browser()
    third = browser()
    assert "seat" not in third.session_state
    assert any("given 2 new seats in the last minute" in e.value for e in third.error)


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
    assert len(active_jobs_of(manager_for(runs_dir()), at.session_state["seat"])) == 2
    press_train(at, seed=3)
    assert any("You already have 2 jobs queued or training" in e for e in errors(at))
    other = press_train(browser(), seed=3)  # another seat is not held back by this one
    assert not errors(other) and len(active_jobs_of(manager_for(runs_dir()), other.session_state["seat"])) == 1
    hold.release()


def test_another_seats_run_cannot_be_deleted_but_its_own_can(hall, small_dataset):
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=1, precision="fp32", test_limit=50)
    path = train_or_load(cfg, small_dataset, runs_dir()).path
    owner_seat, owner_code = Ledger(runs_dir()).issue_seat(None, time.time())
    Ledger(runs_dir()).claim_run(path.name, owner_seat)
    stranger = browser(run=path.name)
    stranger.switch_page("app_pages/train.py").run()
    assert not [b for b in stranger.button if b.key == "delete_run"]
    assert any("only it (or the lecturer) can delete it" in c.value for c in stranger.caption)
    owner = browser(owner_code, run=path.name)  # the owner, from another browser, with the seat's code
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
    path = train_or_load(
        Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=0, precision="fp32", test_limit=50),
        small_dataset,
        runs_dir(),
    ).path
    Ledger(runs_dir()).claim_run(path.name, student.session_state["seat"])
    lecturer.run()
    lecturer.button(key=f"admin_delete_{path.name}").click().run()
    assert not path.exists()


@pytest.mark.parametrize("password", ["a", "            ", "  choose-one  ", "elevenchars"])
def test_a_short_or_blank_lecturer_password_keeps_the_page_closed_and_says_why(hall, monkeypatch, password, caplog):
    monkeypatch.setenv("CAE_ADMIN_PASSWORD", password)
    assert classroom.password_problem() and "12 characters" in classroom.password_problem()
    assert not admin_password_matches(password)  # not even the password itself opens it
    lecturer = browser()
    lecturer.switch_page("app_pages/admin.py").run()
    assert not [w for w in lecturer.text_input if w.key == "admin_password"]
    assert any("shorter than 12 characters" in i.value for i in lecturer.info)


def test_wrong_lecturer_passwords_wait_longer_each_time_per_session_and_are_logged(hall, caplog):
    lecturer = browser()
    lecturer.switch_page("app_pages/admin.py").run()
    for attempt in range(4):
        lecturer.text_input(key="admin_password").input(f"guess-{attempt}")
        lecturer.button[0].click().run()
    assert any("try again in" in e for e in errors(lecturer)), errors(lecturer)  # the 4th waits
    lecturer.text_input(key="admin_password").input(PASSWORD)  # even the right one, until the wait is over
    lecturer.button[0].click().run()
    assert "admin" not in lecturer.session_state or not lecturer.session_state["admin"]
    assert sum("wrong password" in r.getMessage() for r in caplog.records) == 3  # the waiting try is not a guess
    other = browser()  # another student's browser (the same address here) is not locked by this one
    other.switch_page("app_pages/admin.py").run()
    other.text_input(key="admin_password").input(PASSWORD)
    other.button[0].click().run()
    assert other.session_state["admin"] is True


def test_the_wait_doubles_after_three_wrong_tries_and_an_address_waits_at_most_a_minute():
    now = [0.0]
    attempts = classroom.Attempts(clock=lambda: now[0])
    for _ in range(3):
        assert attempts.wait("s1", "10.0.0.7") == 0
        attempts.failed("s1", "10.0.0.7")
    waits = []
    for _ in range(10):
        waits.append(attempts.wait("s1", "10.0.0.7"))
        now[0] += waits[-1]
        attempts.failed("s1", "10.0.0.7")
    assert waits[:4] == [5, 10, 20, 40] and max(waits) == 600
    assert 0 < attempts.wait("s2", "10.0.0.7") <= 60  # the same hall's address, another browser: a minute at most
    assert attempts.wait("s3", None) == 0  # nothing is server-wide
    attempts.succeeded("s1")
    assert attempts.wait("s1", None) == 0


def test_no_student_locks_the_lecturer_out_and_the_class_gets_twenty_guesses_per_ten_minutes():
    """A script guessing from every session it likes (new cookies, the lecturer's own address) never
    delays the lecturer's right password; after 20 wrong ones in 10 minutes, a password counts only
    beside the one-time code written to the server's log, which guessing renews."""
    now, logged = [0.0], []
    gate = classroom.LecturerGate(clock=lambda: now[0], log=lambda text, *args: logged.append(text % args))
    env = {"CAE_ADMIN_PASSWORD": PASSWORD}
    for i in range(gate.WINDOW_FAILURES - 1):  # just under the budget, each from a fresh session
        assert gate.open(f"student-{i}", "guess", env=env) == "That is not the lecturer's password."
        now[0] += 1
    assert gate.open("lecturer", PASSWORD, env=env) is None  # at once, no wait, no code
    for i in range(gate.WINDOW_FAILURES - 1):  # failures older than the window no longer count
        gate.open(f"early-{i}", "guess", env=env)
    now[0] += gate.WINDOW + 1
    assert not gate.code_needed()
    for i in range(gate.WINDOW_FAILURES):  # the budget spent: the code is needed, and logged once
        gate.open(f"late-{i}", "guess", env=env)
    assert gate.code_needed()
    codes = [line.split("Lecturer code: ")[1][:9] for line in logged if line.startswith("Lecturer code: ")]
    assert len(codes) == 1
    refused = gate.open("lecturer", PASSWORD, env=env)
    assert "lecturer code in the server's log" in refused
    for i in range(gate.WINDOW_FAILURES):  # guessing codes renews it: the old one stops working
        gate.open(f"grinder-{i}", PASSWORD, code=f"AAAA-{i:04d}", env=env)
    codes = [line.split("Lecturer code: ")[1][:9] for line in logged if line.startswith("Lecturer code: ")]
    assert len(codes) == 2 and codes[0] != codes[1]
    assert "lecturer code" in gate.open("lecturer-2", PASSWORD, code=codes[0], env=env)
    assert gate.open("lecturer-3", PASSWORD, code=codes[1].lower().replace("-", ""), env=env) is None
    assert not gate.code_needed()


def test_the_lecturer_page_asks_for_the_logged_code_after_the_class_guessed_too_often(hall, caplog):
    from app_pages.caches import lecturer_gate

    lecturer_gate.clear()
    try:
        for attempt in range(classroom.LecturerGate.WINDOW_FAILURES):  # a new browser session each time
            student = browser()
            student.switch_page("app_pages/admin.py").run()
            student.text_input(key="admin_password").input(f"guess-{attempt}")
            student.button[0].click().run()
        lecturer = browser()
        lecturer.switch_page("app_pages/admin.py").run()
        lecturer.text_input(key="admin_password").input(PASSWORD)
        lecturer.button[0].click().run()
        assert any("lecturer code in the server's log" in e for e in errors(lecturer)), errors(lecturer)
        code = next(r.args[0] for r in caplog.records if r.getMessage().startswith("Lecturer code: "))
        lecturer.text_input(key="admin_password").input(PASSWORD)
        lecturer.text_input(key="admin_code").input(code)
        lecturer.button[0].click().run()
        assert lecturer.session_state["admin"] is True
    finally:
        lecturer_gate.clear()


def test_a_seats_upload_quota_counts_disk_blocks_files_and_pixels_over_all_its_uploads(tmp_path):
    from cae.uploads import DECODED_BYTES, unpack_upload
    from tests.conftest import zip_of
    from tests.test_upload_limits import picture

    folder = unpack_upload(
        [("a.zip", zip_of({f"c{c}/{i}.png": picture((10, 10)) for c in range(2) for i in range(5)}))]
    )
    size, files, pixels = classroom.upload_cost(folder)
    assert files == 10 and pixels == 10 * 100 and size >= 10 * (4096 + DECODED_BYTES)
    caps = Caps(upload_files=15, upload_megapixels=1)
    ledger = Ledger(tmp_path)
    ledger.record_upload("seat-aaaaaaaa", folder, size, files, pixels)
    budget = classroom.upload_budget(ledger, "seat-aaaaaaaa", caps)
    assert budget.files == 5 and budget.pixels == 1_000_000 - 1_000  # what is left, over all its uploads
    assert classroom.upload_budget(ledger, "seat-bbbbbbbb", caps).files == 15  # another seat: its own
    ledger.record_upload("seat-aaaaaaaa", folder, size, files, pixels)  # the same upload again: counted once
    assert ledger.upload_use("seat-aaaaaaaa") == (10, 1_000)


def test_seats_submitting_at_the_same_instant_never_pass_a_cap_together(tmp_path, hold, small_dataset):
    """Eight submissions from two seats released at one instant against a server-wide cap of 3 and
    a per-seat cap of 2: the caps are checked and the job queued under one lock, so exactly 3 are
    queued, at most 2 of them any one seat's, and every other one is refused with its sentence."""
    import threading

    from cae.jobs import Refused
    from tests.test_jobs import TINY

    manager = manager_for(tmp_path / "runs")
    limits = Caps(queued=2, queued_total=3)
    start, outcomes = threading.Barrier(8), []

    def submit(i: int) -> None:
        seat = f"seat-{i % 2}"
        admit = classroom.admission(seat, limits, Config(**TINY), 500)

        start.wait()
        try:
            outcomes.append(manager.submit(Config(**{**TINY, "seed": i}), small_dataset, owner=seat, admit=admit))
        except Refused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queued = [o for o in outcomes if not isinstance(o, str)]
    assert len(queued) == 3 and max(sum(j.owner == s for j in queued) for s in ("seat-0", "seat-1")) == 2
    assert all("queued or training" in o or "server" in o for o in outcomes if isinstance(o, str)), outcomes
    for job in queued:
        manager.cancel(job.id)


def test_seats_that_are_never_used_again_make_room_and_the_server_keeps_at_most_its_cap(tmp_path):
    """A client that keeps no cookie gets a new seat on every visit; those seats own nothing and
    are never seen again, so past CAE_MAX_SEATS they are forgotten first (after 10 minutes). Seats
    that own a run, or came back, stay; when only those are left, a new seat is refused in a
    sentence. A seat unused for 30 days has expired."""
    ledger, now = Ledger(tmp_path), 1_000_000.0
    kept, _ = ledger.issue_seat("10.0.0.1", now, max_seats=3)
    owner, _ = ledger.issue_seat("10.0.0.1", now, max_seats=3)
    ledger.claim_run("z16-a", owner)
    ledger.issue_seat("10.0.0.9", now, max_seats=3)  # a cookie-less visit: never seen again
    ledger.saw(kept, now + classroom.SEEN_EVERY + 1)  # its browser came back
    with pytest.raises(classroom.ClassroomError, match="keeps 3 seats, its limit"):
        ledger.issue_seat("10.0.0.9", now + 60, max_seats=3)  # the cookie-less seat is still fresh
    later = now + classroom.UNCLAIMED_SECONDS + 120
    fresh, _ = ledger.issue_seat("10.0.0.9", later, max_seats=3)  # room made by the unused seat
    assert all(ledger.has_seat(t, later) for t in (kept, owner, fresh)) and len(ledger.read()["seats"]) == 3
    with pytest.raises(classroom.ClassroomError):
        ledger.issue_seat("10.0.0.9", later + 1, max_seats=3)  # only seats in use left: refused
    seen = now + classroom.SEEN_EVERY + 1
    assert ledger.has_seat(kept, seen + classroom.SEAT_IDLE_DAYS * 86400 - 1)
    assert not ledger.has_seat(kept, seen + classroom.SEAT_IDLE_DAYS * 86400 + 1)  # unused for 30 days


def test_the_ledger_is_parsed_again_only_when_it_changed(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path)
    token, _ = ledger.issue_seat(None, 1.0)
    parsed = []
    real = classroom.json.loads
    monkeypatch.setattr(classroom.json, "loads", lambda text: parsed.append(1) or real(text))
    for _ in range(5):  # five page runs
        assert ledger.has_seat(token, 2.0)
    assert parsed == []
    ledger.claim_run("z16-b", token)  # written by this process: known without parsing
    assert ledger.owner("z16-b") == token and parsed == []
    ledger.file.write_text(ledger.file.read_text().replace("z16-b", "z16-c"))  # another server process
    assert ledger.owner("z16-c") == token and ledger.has_seat(token, 3.0) and parsed == [1]
