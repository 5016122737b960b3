"""A session's state and its address, in one place: every `st.session_state` key and every URL
parameter the app uses is read and written here, through a named function.

Widgets keep their values with Streamlit's own `persist_state="session"` (on the widget call, in
the page): a page left and come back to shows what the learner set. That is the only keeping
mechanism; no page copies widget values by hand.

What lives here, by who reads it:
- the whole app: the session's name among job watchers, the data in use, the run viewed, the seat,
  the lecturer's admin view, a sentence for the sidebar (`link_message`), the address;
- one page's own memory: the job a page watches (`watched_job`), the Train page's sentence about a
  finished job (`flash`),
  a pending confirmation (`confirming`), Lecture mode's step and reveals, Kernels' timeline,
  the picture uploaded on Try (Latent space places it too), clickable charts' rounds.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, unquote

import streamlit as st

# --- the address (URL parameters) ---------------------------------------------------------------


def url_param(name: str) -> str | None:
    """One parameter of the address (`?run=`, `?data=`, `?step=`, an old `?seat=`)."""
    return st.query_params.get(name)


def url_params() -> dict[str, str]:
    return st.query_params.to_dict()


def set_url_params(params: dict[str, str]) -> None:
    """Replace the address's parameters in one message, only when they change (each change is one
    entry in the browser's history)."""
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


def set_url_param(name: str, value: str) -> None:
    set_url_params(url_params() | {name: value})


# --- the whole app ------------------------------------------------------------------------------


def session_token() -> str:
    """This browser session's name among a job's watchers."""
    return st.session_state.setdefault("session_token", uuid.uuid4().hex)


def chosen_data() -> str | None:
    """The data source this session chose (one spelling), None before the first choice."""
    return st.session_state.get("data_source")


def choose_data(source: str) -> None:
    st.session_state.data_source = source


def viewing() -> str | None:
    """The folder of the run this session views, None before the first choice."""
    return st.session_state.get("viewing")


def set_viewing(path: str | None) -> None:
    st.session_state.viewing = path


def seat_token() -> str | None:
    """The classroom seat this session holds, None before one is found or issued."""
    return st.session_state.get("seat")


def hold_seat(token: str, store_in_browser: bool) -> None:
    """This session's seat from now on; `store_in_browser` asks for the cookie to be written once."""
    st.session_state.seat = token
    if store_in_browser:
        st.session_state.seat_cookie_due = True


def seat_cookie_due() -> bool:
    """True once after a seat was issued or adopted: the page writes the cookie now."""
    return bool(st.session_state.pop("seat_cookie_due", False))


def admin() -> bool:
    """The lecturer's password was given in this session."""
    return bool(st.session_state.get("admin"))


def open_admin() -> None:
    st.session_state.admin = True


def say_in_sidebar(sentence: str) -> None:
    """A sentence about the link this session came in by (an unknown run, a refused folder), shown
    once in the sidebar."""
    st.session_state.link_message = sentence


def take_link_message() -> str | None:
    return st.session_state.pop("link_message", None)


# --- one page's memory --------------------------------------------------------------------------


WATCHED_JOB_KEYS = {"train": "job_id", "lecture": "lecture_job", "budget": "budget_job"}


def watched_job(purpose: str) -> int | None:
    """The job this session follows for `purpose`: "train" (the Train page's panel; a
    Classifier variant is followed there too), "lecture" (the live step), "budget" (a sweep)."""
    return st.session_state.get(WATCHED_JOB_KEYS[purpose])


def watch_job(purpose: str, job_id: int | None) -> None:
    """Follow this job for `purpose` from now on; None: follow none."""
    if job_id is None:
        st.session_state.pop(WATCHED_JOB_KEYS[purpose], None)
    else:
        st.session_state[WATCHED_JOB_KEYS[purpose]] = job_id


def seen_job() -> int | None:
    """The last finished training whose run the Train page switched to (so it switches once)."""
    return st.session_state.get("job_seen")


def mark_job_seen(job_id: int) -> None:
    st.session_state.job_seen = job_id


def flash(message: str, run: str) -> None:
    """A sentence the Train page shows while the run it is about stays the one viewed (kept, not
    shown once: a run of the page that follows at once would otherwise lose it)."""
    st.session_state.flash = (message, run)


def flash_for(run: str | None) -> str | None:
    """The Train page's sentence about `run`, the run viewed, if there is one."""
    message, about = st.session_state.get("flash") or (None, None)
    return message if run is not None and about == run else None


def confirming(what: str) -> object:
    """What the learner is asked to confirm for `what` ("stop": a job id, "delete": a run name)."""
    return st.session_state.get(f"confirm_{what}")


def ask_to_confirm(what: str, value: object | None) -> None:
    """Ask for confirmation of `value`; None: nothing to confirm any more."""
    if value is None:
        st.session_state.pop(f"confirm_{what}", None)
    else:
        st.session_state[f"confirm_{what}"] = value


def preset_data() -> str | None:
    """The fingerprint of the data the Train page last chose a preset for."""
    return st.session_state.get("preset_data")


def set_preset_data(fingerprint: str) -> None:
    st.session_state.preset_data = fingerprint


def lecture_step() -> str | None:
    """The Lecture mode step this session is on (its key), None before the first visit."""
    return st.session_state.get("lecture_step")


def set_lecture_step(key: str) -> None:
    st.session_state.lecture_step = key


def presenting() -> bool:
    """Whether Lecture mode's presenter view is on (its toggle, on until switched off)."""
    return bool(st.session_state.get("presenter", True))


REVEALS_COOKIE = "cae_reveals"  # Lecture mode's reveals, kept by the browser for a reload (never in a link)


def _browser_reveals() -> dict[str, str | None]:
    """{step: prediction} this browser revealed before (its session cookie), {} when none or unreadable."""
    text = st.context.cookies.get(REVEALS_COOKIE)
    try:
        value = json.loads(unquote(text)) if isinstance(text, str) else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else None for k, v in value.items()}


def revealed(step: str) -> bool:
    return f"revealed_{step}" in st.session_state or step in _browser_reveals()


def revealed_guess(step: str) -> str | None:
    """What the learner predicted before revealing a Lecture-mode step (None: no prediction)."""
    return st.session_state.get(f"revealed_{step}", _browser_reveals().get(step))


def reveal(step: str, guess: str | None) -> None:
    st.session_state[f"revealed_{step}"] = guess
    st.session_state.reveals_cookie_due = True


def reveals_cookie() -> str | None:
    """Once after a reveal: the script that keeps every reveal of this browser in its session
    cookie (gone when the browser closes), so a reload shows the step revealed as it was."""
    if not st.session_state.pop("reveals_cookie_due", False):
        return None
    reveals = _browser_reveals()
    reveals.update({k.removeprefix("revealed_"): v for k, v in st.session_state.items() if k.startswith("revealed_")})
    value = quote(json.dumps(reveals, separators=(",", ":")), safe="")
    return f"<script>document.cookie = '{REVEALS_COOKIE}={value}; path=/; SameSite=Strict';</script>"


def uploaded_picture() -> bytes | None:
    """The picture this session uploaded on Try an image or Latent space (both pages use it)."""
    return st.session_state.get("uploaded_picture")


def set_uploaded_picture(data: bytes) -> None:
    st.session_state.uploaded_picture = data


def kept(name: str) -> object | None:
    """A value a page computed and keeps for this session (Overview's layer timings)."""
    return st.session_state.get(name)


def keep(name: str, value: object) -> None:
    st.session_state[name] = value


# --- widgets' values ----------------------------------------------------------------------------


def widget(key: str, default: object = None) -> object:
    """The value of the widget with this key (or what it will start from), else `default`."""
    return st.session_state.get(key, default)


def has_widget(key: str) -> bool:
    return key in st.session_state


def set_widget(key: str, value: object) -> None:
    """Move a widget: it shows `value` on its next draw (call before it is drawn in this run)."""
    st.session_state[key] = value


def set_widgets(values: dict[str, object]) -> None:
    st.session_state.update(values)


def widget_defaults(**values: object) -> None:
    """Give widgets their first values (no widget also passes `value=`)."""
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def chart_round(name: str) -> int:
    """Clickable chart `name` is drawn afresh (a new key) in each round; see `_shared.click_chart_key`."""
    return st.session_state.get(f"{name}_round", 0)


def next_chart_round(name: str, key_now: str) -> None:
    st.session_state.pop(f"{key_now}_last_click", None)
    st.session_state[f"{name}_round"] = chart_round(name) + 1


def new_click(chart_key: str) -> int | None:
    """The number (customdata) of the point last clicked on the chart under `chart_key`, once per
    click: None when nothing is selected or the same point was already handed out."""
    points = ((st.session_state.get(chart_key) or {}).get("selection") or {}).get("points") or []
    if not points:
        return None
    data = points[0].get("customdata")
    number = int(data[0] if isinstance(data, list) else data)
    if st.session_state.get(f"{chart_key}_last_click") == number:
        return None
    st.session_state[f"{chart_key}_last_click"] = number
    return number
