"""Widgets and sentences every page shares: the data in use, the run viewed, its summary line,
clickable charts, charts with a text equivalent. State lives in `state`, caches in `caches`,
classroom rights in `rights`."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from app_pages import state
from app_pages.caches import cached_dataset, cached_run, runs
from app_pages.rights import allowed_data
from cae.config import SETTINGS
from cae.data import SAMPLE, DataError, Dataset
from cae.export import reproduce_command, standalone_script
from cae.figures import chart_alt
from cae.files import absolute
from cae.runs import Run, RunError, RunInfo, pretrained_dir, pretrained_index
from cae.settings import Setting
from cae.words import run_summary, run_title


def data_source() -> str:
    """The session's data source, one spelling (absolute) for a folder: the address's ?data= (a
    reload keeps the data chosen), else $CAE_DATA, else the bundled sample."""
    if state.chosen_data() is None:
        wanted = state.url_param("data")
        if wanted and not allowed_data(wanted):
            state.say_in_sidebar(
                "In this class the data is the sample, the class's data or your own uploads; "
                "the link's folder is not used."
            )
            wanted = None
        use_data(wanted or os.environ.get("CAE_DATA") or SAMPLE)
    return state.chosen_data()


def default_data_source() -> str:
    """The data a session starts on without ?data=: $CAE_DATA, else the bundled sample."""
    return spelt_source(os.environ.get("CAE_DATA") or SAMPLE)


def spelt_source(source: str) -> str:
    """A data source in one spelling: "sample", or an absolute folder."""
    source = source.strip() or SAMPLE
    return source if source == SAMPLE else str(absolute(source))


def use_data(source: str) -> None:
    """Make `source` ("sample" or a folder) the session's data from the next rerun on."""
    state.choose_data(spelt_source(source))


def current_dataset(show_error: bool = True) -> Dataset | None:
    """The dataset in use, or None with the reason shown."""
    try:
        return cached_dataset(data_source())
    except DataError as exc:
        if show_error:
            st.error(f"{exc}")
        return None


def default_run(infos: list[RunInfo]) -> RunInfo | None:
    """The pretrained default named in pretrained/index.json, else the newest sound run."""
    default = pretrained_index().get("default")
    sound = [i for i in infos if i.error is None]
    return next((i for i in sound if i.pretrained and i.name == default), sound[0] if sound else None)


def selected_run_path() -> str | None:
    """The run being viewed. Kept in a plain session key (not a widget's), so page switches keep it;
    a new session (a reload, a bookmark, a shared link) starts on the run its URL names."""
    if state.viewing() is None:
        infos = runs()
        choice = linked_run(infos) or default_run(infos)
        state.set_viewing(str(choice.path) if choice else None)
    return state.viewing()


def linked_run(infos: list[RunInfo]) -> RunInfo | None:
    """The sound run named by the URL's ?run=, looked up by name among the listed runs (never
    turned into a path); an unknown name leaves a sentence for the sidebar."""
    wanted = state.url_param("run")
    if not wanted:
        return None
    match = next((i for i in infos if i.name == wanted and i.error is None), None)
    if match is None:
        state.say_in_sidebar(f"The link names a run that is not here ({wanted[:80]}); showing the default run instead.")
    return match


def write_run_to_url() -> None:
    """Keep the address naming what a reload or a shared link must reopen: ?run= unless it is the
    shipped default, ?data= unless it is the server's default; never a seat (an old ?seat= is removed).
    Written in one message, and only
    when it changes: Streamlit pushes a browser-history entry for each change, so writing each key
    alone made the browser's Back land on the same page (once per key) instead of the page before."""
    path = state.viewing()
    default = pretrained_index().get("default")
    wanted = {
        "seat": None,
        "run": Path(path).name if path and Path(path).name != default else None,
        "data": data_source() if data_source() != default_data_source() else None,
    }
    current = state.url_params()
    state.set_url_params({k: v for k, v in current.items() if k not in wanted} | {k: v for k, v in wanted.items() if v})


def link_params(**extra: str) -> dict[str, str]:
    """The address's parameters for an in-app link, plus `extra`: a link that keeps them changes
    the page only, so it leaves one browser-history entry (Back returns to where it was pressed)."""
    return state.url_params() | extra


def view_run(path: str | None) -> None:
    """Show this run on every page from the next rerun on (None: back to the default run)."""
    state.set_viewing(path)


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
    return (
        dataset is not None
        and not same_dataset(run, dataset)
        and list(run.metrics["dataset"]["classes"]) == list(dataset.classes)
    )


def reproduce_this_run(run: Run) -> None:
    """The command that asks for exactly this run, and its standalone PyTorch script to download."""
    with st.expander("Reproduce this run (a command, or a script to take home)"):
        st.markdown(
            "The command that asks for exactly this run (the CLI finds it instead of training again where it exists):"
        )
        st.code(reproduce_command(run), language="bash")
        title = pretrained_index().get("runs", {}).get(run.name, {}).get("title") or run_title(run.metrics)
        try:
            script = standalone_script(run, f"{title} (CAE Explorer run {run.name})")
        except RunError as exc:
            st.info(str(exc))
            return
        st.download_button(
            "Download a standalone PyTorch script",
            script,
            file_name=f"{run.name}.py",
            mime="text/x-python",
            key="download_script",
        )
        st.caption(
            "One readable file, torch and torchvision only (no `cae`): the same model, initial weights, "
            "data order and recipe; `--data cifar10` downloads torchvision's CIFAR-10, or give it an image "
            "folder with train/ and test/. It prints one line per epoch like the CLI."
        )


def click_chart_key(name: str) -> str:
    """The key of the clickable chart `name` for this round: a new round (after its number was typed,
    see `typed_instead_of_clicked`) draws the chart afresh, without the old selection, so a click on
    the point chosen before counts again."""
    return f"{name}_{state.chart_round(name)}"


def typed_instead_of_clicked(name: str) -> None:
    """`on_change` of the number input that the clickable chart `name` also moves: start a new round."""
    state.next_chart_round(name, click_chart_key(name))


def clicked_point(chart_key: str) -> int | None:
    """The customdata (a number) of the point last clicked on a chart drawn with
    `on_select="rerun"` under `chart_key`, once per click (a page then moves its number input)."""
    return state.new_click(chart_key)


def show_chart(where, fig, alt: str | None = None, **kwargs):
    """`where.plotly_chart(fig, ...)` with a text equivalent for screen readers: `alt`, else written
    from the figure (`chart_alt`). Plotly's mode bar (zoom, pan, download: eight more Tab stops per
    chart) only where a chart takes clicks or selections, whose tools live there."""
    if "on_select" not in kwargs:
        kwargs.setdefault("config", {"displayModeBar": False})
    return where.plotly_chart(fig, alt=alt or chart_alt(fig), **kwargs)


# --- the settings form (the Train page): widgets made from each setting's description --------------


def form_settings(columns: tuple = (0, 1, 2)) -> list[Setting]:
    """The settings the Train page shows in these columns ("rebuilds": its objectives' expander), in
    Config's order."""
    return [spec for spec in SETTINGS.values() if spec.form and spec.form["column"] in columns]


def widget_value(spec: Setting, value):
    """A setting's value as its widget holds it: an empty whole number is 0 there."""
    return 0 if value is None and spec.kind == "int" else value


def setting_widget(spec: Setting, note: str | None, keep: str):
    """The widget its Setting's `form` describes (key: the setting's name), and its value as a Config
    takes it (0 in an optional whole number is None)."""
    form = spec.form
    options = dict(key=spec.name, persist_state=keep, help=note or form.get("help"))
    label, choices = form["label"], form.get("choices", spec.choices)  # the setting's own unless narrowed
    match form["widget"]:
        case "select_slider":
            percent, floats = form.get("percent"), spec.kind == "float"
            fmt = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:g}") if floats else str
            value = st.select_slider(label, choices, format_func=fmt, **options)
        case "slider":
            value = st.slider(label, form["low"], form["high"], step=form["step"], **options)
        case "radio":
            value = st.radio(label, choices, horizontal=True, **options)
        case "selectbox":
            value = st.selectbox(label, choices, **options)
        case "number_input":
            value = st.number_input(label, form["low"], form["high"], step=form.get("step", 1), **options)
        case _:
            value = st.checkbox(label, **options)
    if spec.kind == "int":
        return int(value) or None if spec.optional else int(value)
    return float(value) if spec.kind == "float" else value
