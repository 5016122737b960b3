"""What every page shares: cached datasets, runs and the job manager, and the session's choices.

Only Streamlit glue lives here; everything computed comes from `cae`.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import streamlit as st

from cae import classroom
from cae.data import SAMPLE, DataError, Dataset, load_dataset
from cae.export import reproduce_command, standalone_script
from cae.figures import chart_alt
from cae.files import absolute
from cae.jobs import DONE, FAILED, JobManager, manager_for
from cae.report import run_summary, run_title
from cae.runs import (
    SWEEP_PREFIX,
    Run,
    RunError,
    RunInfo,
    list_runs,
    load_run,
    pretrained_dir,
    pretrained_index,
    runs_dir,
)
from cae.train import describe_device, resolve_device
from cae.worker import worker_threads


def jobs() -> JobManager:
    """The server's job manager for the runs folder (one per process, outside Streamlit's caches)."""
    return manager_for(runs_dir())


def session_token() -> str:
    """This browser session's name among a job's watchers."""
    return st.session_state.setdefault("session_token", uuid.uuid4().hex)


class TaskError(Exception):
    """A computation in the worker failed; the message says why."""


KEPT_RESULTS = 64  # worker results kept in memory (maps and probes hold tensors); the oldest go first


@st.cache_resource(show_spinner=False)
def _task_results() -> OrderedDict:
    return OrderedDict()


def computed(kind: str, payload: dict, wait: float) -> object | None:
    """The result of a longer computation run by the worker (cae/tasks.py), waiting at most `wait`
    seconds; None while it still runs. The last KEPT_RESULTS results are kept in memory (the
    worker keeps the large ones, maps and probes, on disk too, so a forgotten one comes back quickly)."""
    key = (kind, tuple(sorted(payload.items())))
    results = _task_results()
    if key not in results:
        job = jobs().settle(jobs().compute(kind, payload).id, wait)
        if job.state == FAILED:
            raise TaskError(job.error)
        if job.state != DONE:
            return None
        results[key] = job.result
        while len(results) > KEPT_RESULTS:
            results.popitem(last=False)
    results.move_to_end(key)
    return results[key]


@st.cache_resource(show_spinner="Loading images…", max_entries=4)
def cached_dataset(source: str) -> Dataset:
    """A dataset by its source; never downloads (the Data page's button does, with progress)."""
    return load_dataset(source, download=False)


@st.cache_resource(show_spinner=False, max_entries=8)
def _listing(directory: str, stamp: int, pretrained: str, pretrained_stamp: int) -> list[RunInfo]:
    return list_runs(directory, pretrained)


def _stamp(folder: Path) -> int:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner="Loading run…", max_entries=8)
def cached_run(path: str, stamp: float) -> Run:
    """A loaded run; `stamp` (the metrics file's mtime) makes a rewritten run load afresh."""
    return load_run(path)


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    """Where training runs: the GPU's name, or the CPU and the threads the training worker uses."""
    device = resolve_device("auto")
    if device.type != "cpu":
        return describe_device(device)
    return f"CPU, training on {worker_threads()} of {os.cpu_count()} cores"


def data_source() -> str:
    """The session's data source, one spelling (absolute) for a folder: the address's ?data= (a
    reload keeps the data chosen), else $CAE_DATA, else the bundled sample."""
    if "data_source" not in st.session_state:
        wanted = st.query_params.get("data")
        if wanted and not allowed_data(wanted):
            st.session_state.link_message = ("In this class the data is the sample, the class's data or your own "
                                             "uploads; the link's folder is not used.")
            wanted = None
        use_data(wanted or os.environ.get("CAE_DATA") or SAMPLE)
    return st.session_state.data_source


def default_data_source() -> str:
    """The data a session starts on without ?data=: $CAE_DATA, else the bundled sample."""
    return spelt_source(os.environ.get("CAE_DATA") or SAMPLE)


def spelt_source(source: str) -> str:
    """A data source in one spelling: "sample", or an absolute folder."""
    source = source.strip() or SAMPLE
    return source if source == SAMPLE else str(absolute(source))


def use_data(source: str) -> None:
    """Make `source` ("sample" or a folder) the session's data from the next rerun on."""
    st.session_state.data_source = spelt_source(source)


def allowed_data(source: str) -> bool:
    """Any source outside classroom mode; in it, only the sample, $CAE_DATA and this seat's uploads
    (students never type a path on the server)."""
    if seat() is None or source.strip() == SAMPLE:
        return True
    folder = str(absolute(source.strip()))
    class_data = os.environ.get("CAE_DATA")
    return (class_data is not None and folder == str(absolute(class_data))) or folder in seat_ledger().uploads(seat())


# --- classroom mode (cae/classroom.py) --------------------------------------------------------

def seat() -> str | None:
    """This browser's seat in classroom mode, None otherwise. Only seats this server issued exist:
    the browser's cookie names one, or a new one is issued (and the cookie set; see
    `keep_seat_in_browser`). The address never carries a seat, so a shared link never hands one over."""
    if not classroom.enabled():
        return None
    if "seat" not in st.session_state:
        token = browser_cookie(classroom.SEAT_COOKIE)
        if seat_ledger().has_seat(token):
            st.session_state.seat = token
        else:
            if token or st.query_params.get("seat"):
                st.session_state.link_message = ("That seat is not one this server issued; this browser has a new "
                                                 "seat. To reach your runs, type your seat code in the sidebar.")
            st.session_state.seat = issue_seat()
    return st.session_state.seat


def browser_cookie(name: str) -> str | None:
    """A cookie the browser sent with this session's first request (text only; None elsewhere)."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) else None


def client_address() -> str | None:
    """The browser's IP address; None on 127.0.0.1 and where Streamlit cannot tell (tests)."""
    value = st.context.ip_address
    return value if isinstance(value, str) else None


def issue_seat() -> str:
    """A new seat for this browser, unless its address has had too many this minute (then the
    page stops with the reason)."""
    address, now, limit = client_address(), time.time(), caps().seats_per_minute
    if seat_ledger().seats_issued_since(address, now - 60) >= limit:
        st.error(f"This address has been given {limit} new seats in the last minute, the class's limit; wait a "
                 "minute and reload the page.")
        st.stop()
    token, _ = seat_ledger().issue_seat(address, now)
    st.session_state.seat_cookie_due = True
    return token


def adopt_seat(typed_code: str) -> str | None:
    """Switch this browser to the seat with this code (a student's own, from another browser);
    None with nothing changed when no seat has it. Wrong codes wait like wrong passwords."""
    if (wait := code_attempts().wait(session_token(), client_address())) > 0:
        return f"Too many wrong seat codes from this browser or address: try again in {wait:.0f} s."
    token = seat_ledger().seat_of_code(typed_code)
    if token is None:
        code_attempts().failed(session_token(), client_address())
        return "No seat has that code; it is shown in the sidebar of the browser you used before."
    st.session_state.seat, st.session_state.seat_cookie_due = token, True
    return None


def keep_seat_in_browser() -> None:
    """Once per new or adopted seat: store its token in this browser's cookie (Streamlit reads
    cookies but cannot set them, so a line of JavaScript does), for the next session to find."""
    if st.session_state.pop("seat_cookie_due", False):
        st.html(f"<script>document.cookie = '{classroom.SEAT_COOKIE}={st.session_state.seat}; path=/; "
                "max-age=31536000; SameSite=Strict';</script>", unsafe_allow_javascript=True)


def is_admin() -> bool:
    """The lecturer's admin view is open in this session (it always is outside classroom mode)."""
    return seat() is None or bool(st.session_state.get("admin"))


@st.cache_resource(show_spinner=False)
def log_once(sentence: str) -> None:
    """A sentence in the server's log, once per server (not once per session)."""
    logging.getLogger("cae").warning(sentence)


@st.cache_resource(show_spinner=False)
def password_attempts() -> classroom.Attempts:
    """Wrong lecturer passwords of every session of this server."""
    return classroom.Attempts()


@st.cache_resource(show_spinner=False)
def code_attempts() -> classroom.Attempts:
    """Wrong seat codes of every session of this server."""
    return classroom.Attempts()


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


def classroom_refusal(cfg=None, n_train: int = 0, budgets: tuple[int, ...] | None = None,
                      seeds: int = 1) -> str | None:
    """Why this seat may not queue this training (or sweep), or None; never refused outside classroom mode."""
    if seat() is None or is_admin():
        return None
    queued, total = len(jobs().active_jobs_of(seat())), jobs().active_training_count()
    if budgets is not None:
        return classroom.sweep_refusal(budgets, seeds, caps(), queued, total)
    return classroom.refusal(cfg, n_train, caps(), queued, total)


def submit_training(cfg, dataset: Dataset):
    """Queue (or attach to, or find) the run for `cfg`; in classroom mode within the seat's caps,
    else None with the reason shown."""
    if problem := classroom_refusal(cfg, len(dataset.train)):
        st.error(problem)
        return None
    return jobs().submit(cfg, dataset, session_token(), seat())


def submit_sweep(source: Path, dataset: Dataset, budgets: tuple[int, ...], seeds: int):
    """Queue the label-budget sweep (one job) for this seat, or None with the reason shown."""
    if problem := classroom_refusal(budgets=budgets, seeds=seeds):
        st.error(problem)
        return None
    return jobs().submit_sweep(source, dataset, budgets, seeds, session_token(), owner=seat())


def current_dataset(show_error: bool = True) -> Dataset | None:
    """The dataset in use, or None with the reason shown."""
    try:
        return cached_dataset(data_source())
    except DataError as exc:
        if show_error:
            st.error(f"{exc}")
        return None


def runs() -> list[RunInfo]:
    """Shipped runs and the runs folder's (label-budget points too), read again only when a folder
    changed (a run is written by a rename into it, or deleted)."""
    folder, shipped = runs_dir(), pretrained_dir()
    sweeps = [p for p in folder.glob(f"{SWEEP_PREFIX}*") if p.is_dir()] if folder.is_dir() else []
    stamp = max([_stamp(folder), *map(_stamp, sweeps)])
    return _listing(str(folder), stamp, str(shipped), _stamp(shipped))


def default_run(infos: list[RunInfo]) -> RunInfo | None:
    """The pretrained default named in pretrained/index.json, else the newest sound run."""
    default = pretrained_index().get("default")
    sound = [i for i in infos if i.error is None]
    return next((i for i in sound if i.pretrained and i.name == default), sound[0] if sound else None)


def selected_run_path() -> str | None:
    """The run being viewed. Kept in a plain session key (not a widget's), so page switches keep it;
    a new session (a reload, a bookmark, a shared link) starts on the run its URL names."""
    if st.session_state.get("viewing") is None:
        infos = runs()
        choice = linked_run(infos) or default_run(infos)
        st.session_state.viewing = str(choice.path) if choice else None
    return st.session_state.viewing


def linked_run(infos: list[RunInfo]) -> RunInfo | None:
    """The sound run named by the URL's ?run=, looked up by name among the listed runs (never
    turned into a path); an unknown name leaves a sentence for the sidebar."""
    wanted = st.query_params.get("run")
    if not wanted:
        return None
    match = next((i for i in infos if i.name == wanted and i.error is None), None)
    if match is None:
        st.session_state.link_message = (f"The link names a run that is not here ({wanted[:80]}); "
                                         "showing the default run instead.")
    return match


def write_run_to_url() -> None:
    """Keep the address naming what a reload or a shared link must reopen: ?run= unless it is the
    shipped default, ?data= unless it is the server's default; never a seat (an old ?seat= is removed).
    Written in one message, and only
    when it changes: Streamlit pushes a browser-history entry for each change, so writing each key
    alone made the browser's Back land on the same page (once per key) instead of the page before."""
    path = st.session_state.get("viewing")
    default = pretrained_index().get("default")
    wanted = {"seat": None, "run": Path(path).name if path and Path(path).name != default else None,
              "data": data_source() if data_source() != default_data_source() else None}
    current = st.query_params.to_dict()
    address = {k: v for k, v in current.items() if k not in wanted} | {k: v for k, v in wanted.items() if v}
    if address != current:
        st.query_params.from_dict(address)


def link_params(**extra: str) -> dict[str, str]:
    """The address's parameters for an in-app link, plus `extra`: a link that keeps them changes
    the page only, so it leaves one browser-history entry (Back returns to where it was pressed)."""
    return st.query_params.to_dict() | extra


def view_run(path: str | None) -> None:
    """Show this run on every page from the next rerun on (None: back to the default run)."""
    st.session_state.viewing = path


def restore_settings(page: str, keys: tuple[str, ...]) -> None:
    """Give a page's widgets back the values they had when the learner left the page. Streamlit
    drops the state of widgets that were not drawn in a run (another page's run, or a fragment's
    rerun while a job trains), so each page keeps a copy under a plain session key."""
    saved = st.session_state.setdefault(f"settings_{page}", {})
    for key in keys:
        if key not in st.session_state and key in saved:
            st.session_state[key] = saved[key]


def remember_settings(page: str, keys: tuple[str, ...]) -> None:
    """Copy a page's widget values (after its widgets are drawn) for `restore_settings`."""
    st.session_state[f"settings_{page}"] = {k: st.session_state[k] for k in keys if k in st.session_state}


def keep_defaults(**values) -> None:
    """Give widgets their first values through session state (so no widget also passes `value=`)."""
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def current_run(show_message: bool = True) -> Run | None:
    """The run being viewed, or None with a sentence saying why."""
    path = selected_run_path()
    if path is None:
        if show_message:
            st.info("No run yet — train one on the Train page.")
        return None
    try:
        return cached_run(path, Path(path, "metrics.json").stat().st_mtime)
    except (RunError, OSError) as exc:
        if show_message:
            st.error(f"The run {Path(path).name} cannot be shown: {exc}")
        return None


def run_label(info: RunInfo) -> str:
    """The picker's label: a shipped run's title, else a title made of what differs from the
    lecture's settings; then its accuracy."""
    if info.error:
        return f"⚠ {info.name} (damaged)"
    m = info.metrics
    acc = f", {m['classifier'][-1]['test_acc']:.1f}%" if m.get("classifier") else ""
    title = f"★ {info.title}" if info.pretrained else run_title(m)
    return f"{title}{acc}"


def show_run_summary(run: Run) -> None:
    """The one line at the top of every page that shows a run: what it is and what it reached."""
    shipped = (
        pretrained_index().get("runs", {}).get(run.name, {}).get("title")
        if run.path.parent == pretrained_dir()
        else None
    )
    st.markdown(run_summary(run.metrics, shipped))


def dataset_label(dataset: Dataset | None) -> str:
    if dataset is None:
        return "none (see the Data page)"
    return f"{dataset.name}: {len(dataset.train):,} train / {len(dataset.test):,} test"


def same_dataset(run: Run | RunInfo, dataset: Dataset | None) -> bool:
    return dataset is not None and run.metrics["dataset"]["fingerprint"] == dataset.fingerprint


def same_classes_other_images(run: Run | RunInfo, dataset: Dataset | None) -> bool:
    """The data in use has the run's classes but other images (e.g. torchvision's CIFAR-10 where
    the run was trained on the JPEG copy)."""
    return (dataset is not None and not same_dataset(run, dataset)
            and list(run.metrics["dataset"]["classes"]) == list(dataset.classes))


def reproduce_this_run(run: Run) -> None:
    """The command that asks for exactly this run, and its standalone PyTorch script to download."""
    with st.expander("Reproduce this run (a command, or a script to take home)"):
        st.markdown("The command that asks for exactly this run (the CLI finds it instead of training again "
                    "where it exists):")
        st.code(reproduce_command(run), language="bash")
        title = pretrained_index().get("runs", {}).get(run.name, {}).get("title") or run_title(run.metrics)
        try:
            script = standalone_script(run, f"{title} (CAE Explorer run {run.name})")
        except RunError as exc:
            st.info(str(exc))
            return
        st.download_button("Download a standalone PyTorch script", script, file_name=f"{run.name}.py",
                           mime="text/x-python", key="download_script")
        st.caption("One readable file, torch and torchvision only (no `cae`): the same model, initial weights, "
                   "data order and recipe; `--data cifar10` downloads torchvision's CIFAR-10, or give it an image "
                   "folder with train/ and test/. It prints one line per epoch like the CLI.")


def click_chart_key(name: str) -> str:
    """The key of the clickable chart `name` for this round: a new round (after its number was typed,
    see `typed_instead_of_clicked`) draws the chart afresh, without the old selection, so a click on
    the point chosen before counts again."""
    return f"{name}_{st.session_state.get(f'{name}_round', 0)}"


def typed_instead_of_clicked(name: str) -> None:
    """`on_change` of the number input that the clickable chart `name` also moves: start a new round."""
    st.session_state.pop(f"{click_chart_key(name)}_last_click", None)
    st.session_state[f"{name}_round"] = st.session_state.get(f"{name}_round", 0) + 1


def clicked_point(chart_key: str) -> int | None:
    """The customdata (a number) of the point last clicked on a chart drawn with
    `on_select="rerun"` under `chart_key`, once per click (a page then moves its number input)."""
    points = ((st.session_state.get(chart_key) or {}).get("selection") or {}).get("points") or []
    if not points:
        return None
    data = points[0].get("customdata")
    number = int(data[0] if isinstance(data, list) else data)
    if st.session_state.get(f"{chart_key}_last_click") == number:
        return None
    st.session_state[f"{chart_key}_last_click"] = number
    return number


def seconds_per_mflop(cfg, wait: float = 5) -> float | None:
    """A training step measured on this machine by the worker (for time estimates), or None while
    it is being measured (waiting at most `wait` seconds) or when it failed."""
    try:
        return computed("step_time", {"latent_dim": cfg.latent_dim, "upsample": cfg.upsample,
                                      "precision": cfg.precision}, wait=wait)
    except TaskError:
        return None


def show_chart(where, fig, alt: str | None = None, **kwargs):
    """`where.plotly_chart(fig, ...)` with a text equivalent for screen readers: `alt`, else written
    from the figure (`chart_alt`)."""
    return where.plotly_chart(fig, alt=alt or chart_alt(fig), **kwargs)
