"""Classroom mode's rights for this session (cae/classroom.py holds the rules and the ledger): the
seat, the lecturer's view, who may stop a job or delete a run, and the caps on what a seat queues."""

from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st

from app_pages import state
from app_pages.caches import code_attempts, jobs
from cae import classroom
from cae.cluster import ClusterError
from cae.data import SAMPLE, Dataset
from cae.files import absolute
from cae.jobs import Refused
from cae.runs import runs_dir


def allowed_data(source: str) -> bool:
    """Any source outside classroom mode; in it, only the sample, $CAE_DATA and this seat's uploads
    (students never type a path on the server)."""
    if seat() is None or source.strip() == SAMPLE:
        return True
    folder = str(absolute(source.strip()))
    class_data = os.environ.get("CAE_DATA")
    return (class_data is not None and folder == str(absolute(class_data))) or folder in seat_ledger().uploads(seat())


def seat() -> str | None:
    """This browser's seat in classroom mode, None otherwise. Only seats this server issued exist:
    the browser's cookie names one, or a new one is issued (and the cookie set; see
    `keep_seat_in_browser`). The address never carries a seat, so a shared link never hands one over."""
    if not classroom.enabled():
        return None
    if state.seat_token() is None:
        token = browser_cookie(classroom.SEAT_COOKIE)
        if seat_ledger().has_seat(token):
            seat_ledger().saw(token, time.time())
            state.hold_seat(token, store_in_browser=False)
        else:
            if token or state.url_param("seat"):
                state.say_in_sidebar(
                    "That seat is not one this server keeps (never issued, or unused for "
                    f"{classroom.SEAT_IDLE_DAYS} days); this browser has a new seat. To reach your runs, type "
                    "your seat code in the sidebar."
                )
            state.hold_seat(issue_seat(), store_in_browser=True)
    return state.seat_token()


def browser_cookie(name: str) -> str | None:
    """A cookie the browser sent with this session's first request (text only; None elsewhere)."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) else None


FORWARDING_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "Forwarded")
FORWARDED = "a forwarded address"  # every session whose forwarding header this server may not trust


def client_address() -> str | None:
    """The browser's IP address as far as this server can trust it; None on 127.0.0.1 and where
    Streamlit cannot tell (tests). Streamlit's server takes a forwarding header's address from any
    connection on 127.0.0.1, which anyone can write: unless CAE_TRUSTED_PROXY=1 says a proxy on
    this machine sets it (and the app listens on 127.0.0.1 only), every session that carries one
    shares the one address FORWARDED, so forged headers buy no extra seats or tries."""
    if os.environ.get("CAE_TRUSTED_PROXY") != "1" and any(st.context.headers.get(h) for h in FORWARDING_HEADERS):
        return FORWARDED
    value = st.context.ip_address
    return value if isinstance(value, str) else None


def issue_seat() -> str:
    """A new seat for this browser, unless its address has had too many this minute (then the
    page stops with the reason)."""
    address, now, limit = client_address(), time.time(), caps().seats_per_minute
    if seat_ledger().seats_issued_since(address, now - 60) >= limit:
        st.error(
            f"This address has been given {limit} new seats in the last minute, the class's limit; wait a "
            "minute and reload the page."
        )
        st.stop()
    try:
        token, _ = seat_ledger().issue_seat(address, now, caps().max_seats)
    except classroom.ClassroomError as exc:
        st.error(str(exc))
        st.stop()
    return token


def adopt_seat(typed_code: str) -> str | None:
    """Switch this browser to the seat with this code (a student's own, from another browser);
    None with nothing changed when no seat has it. Wrong codes wait like wrong passwords."""
    if (wait := code_attempts().wait(state.session_token(), client_address())) > 0:
        return f"Too many wrong seat codes from this browser or address: try again in {wait:.0f} s."
    token = seat_ledger().seat_of_code(typed_code)
    if token is None:
        code_attempts().failed(state.session_token(), client_address())
        return "No seat has that code; it is shown in the sidebar of the browser you used before."
    state.hold_seat(token, store_in_browser=True)
    return None


def keep_seat_in_browser() -> None:
    """Once per new or adopted seat: store its token in this browser's cookie (Streamlit reads
    cookies but cannot set them, so a line of JavaScript does), for the next session to find."""
    if state.seat_cookie_due():
        st.html(
            f"<script>document.cookie = '{classroom.SEAT_COOKIE}={state.seat_token()}; path=/; "
            "max-age=31536000; SameSite=Strict';</script>",
            unsafe_allow_javascript=True,
        )


def is_admin() -> bool:
    """The lecturer's admin view is open in this session (it always is outside classroom mode)."""
    return seat() is None or state.admin()


def caps() -> classroom.Caps:
    return classroom.Caps.from_env()


def seat_ledger() -> classroom.Ledger:
    return classroom.Ledger(runs_dir())


def owns_run(path: Path) -> bool:
    """This seat may delete the run: outside classroom mode, as admin, or when it trained it."""
    return is_admin() or seat_ledger().owner(Path(path).name) == seat()


def forget_owner(path: Path) -> None:
    """A deleted run's line in the classroom ledger goes with it."""
    if seat() is not None:
        seat_ledger().forget_run(Path(path).name)


def owns_job(job) -> bool:
    """This seat may stop the job for everyone: outside classroom mode, as admin, or its submitter."""
    return is_admin() or job.owner == seat()


def admission(cfg=None, n_train: int = 0, budgets: tuple[int, ...] | None = None, seeds: int = 1):
    """The classroom caps for this seat's new training (or sweep), for JobManager.submit's `admit`;
    None outside classroom mode and for the lecturer."""
    if seat() is None or is_admin():
        return None
    return classroom.admission(seat(), caps(), cfg, n_train, budgets, seeds)


def submit_training(cfg, dataset: Dataset):
    """Queue (or attach to, or find) the run for `cfg`; in classroom mode within the seat's caps,
    else None with the reason shown."""
    try:
        return jobs().submit(cfg, dataset, state.session_token(), seat(), admission(cfg, len(dataset.train)))
    except (ClusterError, Refused) as exc:  # a cap, or a cluster that cannot be reached: said, nothing started
        st.error(str(exc))
        return None


def submit_sweep(source: Path, dataset: Dataset, budgets: tuple[int, ...], seeds: int):
    """Queue the label-budget sweep (one job) for this seat, or None with the reason shown."""
    admit = admission(budgets=budgets, seeds=seeds)
    try:
        return jobs().submit_sweep(source, dataset, budgets, seeds, state.session_token(), owner=seat(), admit=admit)
    except (ClusterError, Refused) as exc:
        st.error(str(exc))
        return None
