"""Lecturer (classroom mode only): every seat's jobs and runs, with the power to cancel or delete
anything, behind the password in CAE_ADMIN_PASSWORD."""

from dataclasses import fields

import streamlit as st

from app_pages import state
from app_pages._shared import run_label, view_run
from app_pages.caches import jobs, lecturer_gate
from app_pages.rights import caps, client_address, forget_owner, is_admin, seat_ledger
from cae.classroom import SETTINGS, password_problem
from cae.runs import RunError, delete_run, list_runs, runs_dir
from cae.words import duration as minutes

st.title("Lecturer")
if problem := password_problem():
    st.info(problem)
    st.stop()
if not is_admin():
    gate = lecturer_gate()
    with st.form("admin_login"):
        given = st.text_input("Lecturer's password", type="password", key="admin_password")
        code = st.text_input("Lecturer code (the server's log has it)", key="admin_code") if gate.code_needed() else ""
        if st.form_submit_button("Open"):
            if (why := gate.open(state.session_token(), given, code, client_address() or "")) is None:
                state.open_admin()
                st.rerun()
            else:
                st.error(why)
    st.stop()

limits = caps()
st.caption(
    "Caps for every seat (environment variables): "
    + "; ".join(
        f"{name} = {getattr(limits, field):,} ({what})"
        for (name, (what, _)), field in zip(SETTINGS.items(), [f.name for f in fields(limits)])
    )
)

st.header("Jobs")
trainings = [j for j in reversed(jobs().jobs()) if j.trains]
if not trainings:
    st.caption("No trainings or sweeps yet.")
for job in trainings:
    left, right = st.columns([5, 1], vertical_alignment="center")
    place = jobs().place_in_queue(job.id)
    what = (
        f"{job.config.ae_epochs}+{job.config.clf_epochs} epochs, latent {job.config.latent_dim}"
        if job.config
        else f"label-budget sweep, {len(job.result or [])} points so far"
    )
    left.markdown(
        f"**#{job.id}** {job.kind}: {what} · seat {(job.owner or 'none')[:6]} · **{job.status}**"
        + (f" (number {place} in the queue)" if place else "")
        + f" · {minutes(job.elapsed())}"
        + f" · {len(job.watchers)} watching"
    )
    if job.active and right.button("Cancel", key=f"admin_cancel_{job.id}"):
        jobs().cancel(job.id)
        st.rerun()

st.header("Runs in the runs folder")
owners = seat_ledger().read()["runs"]
own_runs = [info for info in list_runs(runs_dir()) if not info.pretrained]
if not own_runs:
    st.caption("No runs trained here yet.")
for info in own_runs:
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.markdown(f"{run_label(info)} · seat {(owners.get(info.name) or 'none')[:6]} · `{info.name}`")
    if right.button("Delete", key=f"admin_delete_{info.name}"):
        try:
            delete_run(info.path)
            forget_owner(info.path)
            view_run(None)
            st.rerun()
        except (RunError, OSError) as exc:
            st.error(str(exc))
