"""CAE Explorer: the router. Page config, navigation over app_pages/, and the sidebar every page shares."""

# Plotly reads pandas from sys.modules without importing it (`get_module(..., should_load=False)`):
# while one session's thread was still importing pandas, another's first chart saw the half-made
# module and failed ("partially initialized module 'pandas' has no attribute 'Series'"). Every
# session runs this line first, and a plain import waits for a finished module.
from pathlib import Path

import pandas  # noqa: F401
import streamlit as st
import torch

from app_pages import state, styles
from app_pages._shared import (
    current_dataset,
    dataset_label,
    link_params,
    run_label,
    same_classes_other_images,
    selected_run_path,
    view_run,
    write_run_to_url,
)
from app_pages.caches import device_label, devices_problem, jobs, log_once, runs
from app_pages.rights import adopt_seat, keep_seat_in_browser, seat, seat_ledger
from cae.classroom import active_jobs_of, password_problem
from cae.devices import cpu_share_warning
from cae.lecture import step_number as lecture_step_number

# the icon: 16 of the shipped run's trained first-layer kernels, a file here (a material icon as
# the tab's icon is fetched from the internet, which a classroom without it cannot reach)
ICON = str(Path(__file__).resolve().parent / "cae" / "assets" / "icon.png")
st.set_page_config(page_title="CAE Explorer", page_icon=ICON, layout="wide")
# The web server never trains; its few small forward passes run on one thread and leave the other
# cores to the training worker (measured in bench/NOTES.md: two teams on one core are 10-60x slower).
torch.set_num_threads(1)

pages = [
    st.Page("app_pages/lecture.py", title="Lecture mode", icon=":material/co_present:"),
    st.Page("app_pages/overview.py", title="Overview", icon=":material/school:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/kernels.py", title="Kernels", icon=":material/grid_on:"),
    st.Page("app_pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("app_pages/classifier.py", title="Classifier", icon=":material/bar_chart:"),
    st.Page("app_pages/try_image.py", title="Try an image", icon=":material/image_search:"),
]
if seat() is not None:  # classroom mode: the lecturer's view (password in CAE_ADMIN_PASSWORD)
    pages.append(st.Page("app_pages/admin.py", title="Lecturer", icon=":material/admin_panel_settings:"))
    if problem := password_problem():
        log_once(problem)
page = st.navigation(pages)
# The presenter view has no sidebar: it starts collapsed there, rather than arriving beside the page and
# being hidden after (the page jumped 300 px right and back: layout shift 0.23 + 0.23, Lighthouse).
# Elsewhere "auto": open on a wide screen, as before.
lecturing = page.url_path == "lecture" and state.presenting()
st.set_page_config(initial_sidebar_state="collapsed" if lecturing else "auto")
# Styles before the page's elements: a style that comes after them moves them (layout shift)
st.html(styles.for_page(page.url_path, lecturing))
if problem := devices_problem():  # CAE_DEVICES names workers this machine cannot give: say so, start none
    st.error(problem)
    st.stop()
if problem := jobs().backend.problem():  # a Ray cluster this server cannot reach: said; the shipped runs still open
    st.error(problem)


def queue_line() -> str:
    """Classroom mode: how long the training queue is, and where this seat's jobs are in it."""
    mine = active_jobs_of(jobs(), seat())
    places = sorted(p for j in mine if (p := jobs().place_in_queue(j.id)))
    training = any(j.state == "running" for j in mine)
    yours = ("yours is training" + (", " if places else "") if training else "") + (
        f"yours {'is' if len(places) == 1 else 'are'} number {' and '.join(map(str, places))}" if places else ""
    )
    busy, at_once = jobs().training_counts()
    busy_line = f" · {busy} of {at_once} training at once" if at_once > 1 else ""
    return f"**Queue:** {jobs().queue_length()} waiting{busy_line}" + (f" · {yours}" if yours else " · none of yours")


def seat_box() -> None:
    """Classroom mode: this browser's seat code, and a box to reach one's seat from another browser."""
    with st.expander(f"Your seat: {seat_ledger().code_of(seat())}"):
        st.caption(
            "Your runs, uploads and jobs belong to this seat. This browser remembers it; in another "
            "browser, type the code above below. Keep it to yourself, like a password."
        )
        with st.form("seat_form", border=False):
            typed = st.text_input("Seat code from another browser", key="seat_code", max_chars=12)
            if st.form_submit_button("Use that seat") and typed:
                if problem := adopt_seat(typed):
                    st.error(problem)
                else:
                    st.rerun()


with st.sidebar:
    st.caption(f"**Device:** {device_label()}")
    if crowded := cpu_share_warning([getattr(m, "device", None) for m in jobs().members]):
        st.caption(crowded)
    dataset = current_dataset(show_error=False)
    st.caption(f"**Data:** {dataset_label(dataset)}")
    infos = runs()
    if infos:
        paths = [str(i.path) for i in infos]
        if selected_run_path() not in paths:  # the run was deleted: back to the default run
            view_run(None)
            if selected_run_path() not in paths:
                view_run(paths[0])
        state.set_widget("run_picker", selected_run_path())
        st.selectbox(
            "Run being viewed",
            paths,
            format_func=lambda p: run_label(infos[paths.index(p)]),
            key="run_picker",
            on_change=lambda: view_run(state.widget("run_picker")),
        )
        info = infos[paths.index(selected_run_path())]
        if info.description:
            st.caption(info.description)
        if info.metrics and same_classes_other_images(info, dataset):
            st.caption(
                "This run was trained on other images of the same classes as the data in use; "
                "the Classifier page can evaluate it on yours."
            )
    else:
        st.caption("**Run:** none yet — train one on the Train page.")
    if seat() is not None:
        st.caption(queue_line())
        seat_box()
        keep_seat_in_browser()
    if message := state.take_link_message():
        st.warning(message)
    if (step := state.lecture_step()) and page.url_path != "lecture":
        st.page_link(
            "app_pages/lecture.py",
            label=f"Back to Lecture mode, step {lecture_step_number(step)}",
            icon=":material/undo:",
            query_params=link_params(step=step),
        )
write_run_to_url()

page.run()
