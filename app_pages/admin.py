"""Lecturer (classroom mode only): every seat's jobs and runs, with the power to cancel or delete
anything, behind the password in CAE_ADMIN_PASSWORD."""

import os

import streamlit as st

from cae.classroom import SETTINGS, admin_password_matches
from cae.jobs import TRAINING_KINDS
from cae.report import duration as minutes
from cae.runs import RunError, delete_run, list_runs, runs_dir
from app_pages._shared import caps, forget_owner, is_admin, jobs, run_label, seat_ledger, view_run

st.title("Lecturer")
if not os.environ.get("CAE_ADMIN_PASSWORD"):
    st.info("The lecturer's view is off: start the app with CAE_ADMIN_PASSWORD set to open it.")
    st.stop()
if not is_admin():
    with st.form("admin_login"):
        given = st.text_input("Lecturer's password", type="password", key="admin_password")
        if st.form_submit_button("Open"):
            if admin_password_matches(given):
                st.session_state.admin = True
                st.rerun()
            st.error("That is not the lecturer's password.")
    st.stop()

limits = caps()
st.caption("Caps for every seat (environment variables): " + "; ".join(
    f"{name} = {getattr(limits, field):,} ({what})"
    for (name, (what, _)), field in zip(SETTINGS.items(), ("epochs", "images", "batch", "queued", "upload_mb"))))

st.subheader("Jobs")
trainings = [j for j in reversed(jobs().jobs()) if j.kind in TRAINING_KINDS]
if not trainings:
    st.caption("No trainings or sweeps yet.")
for job in trainings:
    left, right = st.columns([5, 1], vertical_alignment="center")
    place = jobs().place_in_queue(job.id)
    what = (f"{job.config.ae_epochs}+{job.config.clf_epochs} epochs, latent {job.config.latent_dim}"
            if job.config else f"label-budget sweep, {len(job.result or [])} points so far")
    left.markdown(f"**#{job.id}** {job.kind}: {what} · seat {(job.owner or 'none')[:6]} · **{job.status}**"
                  + (f" (number {place} in the queue)" if place else "") + f" · {minutes(job.elapsed())}"
                  + f" · {len(job.watchers)} watching")
    if job.active and right.button("Cancel", key=f"admin_cancel_{job.id}"):
        jobs().cancel(job.id)
        st.rerun()

st.subheader("Runs in the runs folder")
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
