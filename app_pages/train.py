"""Train: set up an experiment, run it as a background job, watch it live, stop it, manage runs."""

import streamlit as st

from app_pages import state
from app_pages._shared import (
    current_dataset,
    current_run,
    form_settings,
    reproduce_this_run,
    selected_run_path,
    setting_widget,
    show_chart,
    show_run_summary,
    view_run,
    widget_value,
)
from app_pages.caches import jobs, measured_speed, run_estimate, runs
from app_pages.rights import forget_owner, is_admin, owns_job, owns_run, seat, submit_training
from cae.cluster import ClusterError
from cae.config import (
    PRESETS,
    SMALL_DATA,
    Config,
    ConfigError,
    few_steps_warning,
    optimiser_steps,
    preset_config,
    preset_for,
)
from cae.devices import DeviceError, resolve_device
from cae.figures import image_strip, live_loss
from cae.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, TRAIN
from cae.runs import RunError, delete_run, find_run, runs_dir, zip_run
from cae.transcript import LECTURE_CLF_ACC
from cae.words import duration as minutes
from cae.words import epoch_sentence

SUBSETS = {"Full training split": None, "Quick: 10,000 images": 10_000, "Custom size": "custom"}
KEEP = "session"  # every setting on this form keeps its value while the learner is on other pages


def apply_preset(name: str) -> None:
    """Set every control to a preset's values (the next widgets read them from session state)."""
    cfg = preset_config(name)
    subset = next((k for k, v in SUBSETS.items() if v == cfg.limit), "Custom size")
    state.set_widgets(
        {
            "preset": name,
            "subset": subset,
            "limit_custom": cfg.limit or 1000,
            **{spec.name: widget_value(spec, getattr(cfg, spec.name)) for spec in form_settings()},
        }
    )


def fine_tuning_lr_note() -> str:
    """What the shipped run fine-tuned at 2e-3 reached, read from its metrics, beside the lecture's number."""
    shipped = next(
        (
            i
            for i in runs()
            if i.pretrained and i.metrics and i.metrics.get("classifier") and i.metrics["config"]["clf_lr"] == 2e-3
        ),
        None,
    )
    if shipped is None:
        return "docs/RESULTS.md shows what the fine-tuning learning rate changes."
    return (
        f'At 2e-3 the shipped run "{shipped.title}" reached {shipped.metrics["classifier"][-1]["test_acc"]:.1f}% '
        f"(the lecture printed {LECTURE_CLF_ACC[-1]:.1f}%); docs/RESULTS.md has the rest."
    )


def stop_controls(job) -> None:
    """Stop; when other sessions watch the same job, confirm first and offer to detach instead."""
    me = state.session_token()
    others = len(job.watchers - {me})
    if state.confirming("stop") == job.id:
        st.warning(
            f"{others} other session{'s are' if others != 1 else ' is'} watching this job. Stop it for "
            "everyone, or detach and leave it running for them?"
        )
        c1, c2, c3 = st.columns(3)
        if c1.button("Stop for everyone", key="stop_everyone"):
            jobs().cancel(job.id)
            state.ask_to_confirm("stop", None)
        if c2.button("Detach (leave it running)", key="detach_button"):
            jobs().detach(job.id, me)
            state.ask_to_confirm("stop", None)
            state.watch_job("train", None)
            st.rerun(scope="app")
        if c3.button("Keep watching", key="keep_watching"):
            state.ask_to_confirm("stop", None)
        return
    if not owns_job(job):  # classroom mode: another seat's job goes on; this session can only leave it
        if st.button("Detach (leave it running)", key="detach_button"):
            jobs().detach(job.id, me)
            state.watch_job("train", None)
            st.rerun(scope="app")
        st.caption("Another seat started this job: only it (or the lecturer) can stop it.")
        return
    if st.button("Stop", key="stop_button"):
        if others:
            state.ask_to_confirm("stop", job.id)
            st.rerun()
        jobs().cancel(job.id)


def show_job(job) -> None:
    p = job.progress
    if job.status == RUNNING:
        if p is None:
            st.write("Job state: **running**, loading the images…")
        else:
            done = p.elapsed / max(p.elapsed + (p.remaining if p.remaining == p.remaining else 0), 1e-9)
            st.progress(
                min(done, 1.0),
                text=f"{p.phase} · epoch {p.epoch}/{p.epochs} · batch {p.batch}/{p.batches} "
                f"· loss {p.loss:.4f} · elapsed {minutes(p.elapsed)} · "
                f"about {minutes(p.remaining)} left",
            )
        stop_controls(job)
    elif job.status == QUEUED:
        st.write(f"Job state: **queued**, number {jobs().place_in_queue(job.id)} in the queue.")
        stop_controls(job)  # a job that waits can be taken off the queue too
    elif job.state == CANCELLED:
        st.write(
            f"Job state: **stopped** after {minutes(job.elapsed())}. Nothing was saved: a run is written "
            "only when the whole experiment finishes (an autoencoder it reused stays where it was). "
            "Press Train to start again."
        )
    else:
        st.write(
            f"Job state: **{job.status}** after {minutes(job.elapsed())}"
            + (f" — {job.error}" if job.state == FAILED else "")
        )
    if job.losses:
        show_chart(st, live_loss(job.losses), width="stretch")
    if job.reconstructions:
        epoch, recon = job.reconstructions[-1]
        show_chart(
            st,
            image_strip(
                [job.originals, recon],
                f"16 test images (top) and their reconstructions after autoencoder epoch {epoch}",
            ),
            width="stretch",
        )
    for phase, row in job.epochs[-12:]:
        st.caption(epoch_sentence(phase, row))


def job_panel() -> None:
    job = jobs().get(state.watched_job("train"))
    if job is None:
        return
    st.header("Your job")
    show_job(job)
    if job.state == DONE and state.seen_job() != job.id:
        state.mark_job_seen(job.id)
        view_run(str(job.run_path))
        state.flash(f"Training finished in {minutes(job.elapsed())}; now viewing the new run.", str(job.run_path))
        st.rerun(scope="app")


st.title("Train")
dataset = current_dataset()
if dataset is None:
    st.stop()
st.caption(
    f"One job runs the whole experiment: the autoencoder (no labels), fine-tuning a classifier "
    f"from its encoder, then the same classifier from random init. Data: {dataset.name}."
)

if state.preset_data() != dataset.fingerprint:  # first visit, or other data chosen
    state.set_preset_data(dataset.fingerprint)
    apply_preset(preset_for(len(dataset.train)))
st.radio(
    "Start from",
    list(PRESETS),
    key="preset",
    horizontal=True,
    on_change=lambda: apply_preset(state.widget("preset")),
    persist_state=KEEP,
    help="Lecture's settings: batch 2000, 5 + 5 epochs. Small data: batch 100, 20 + 10 epochs, for a few "
    "thousand images. Quick look: 5,000 images, batch 250, 3 + 2 epochs.",
)
if state.widget("preset") == SMALL_DATA and preset_for(len(dataset.train)) == SMALL_DATA:
    st.caption(
        f'"{SMALL_DATA}" fits this data: {len(dataset.train):,} training images at the lecture\'s batch '
        f"size of {Config().batch_size:,} would be {optimiser_steps(len(dataset.train), Config().batch_size)} "
        "optimiser step(s) per epoch."
    )

values, notes = {}, {"clf_lr": fine_tuning_lr_note()}


columns = st.columns(3)
with columns[2]:  # the training subset: a choice of sizes, or a number typed in
    subset = st.selectbox("Training images", list(SUBSETS), key="subset", persist_state=KEEP)
    limit = SUBSETS[subset]
    if limit == "custom":
        limit = st.number_input("How many training images", 10, 1_000_000, key="limit_custom", persist_state=KEEP)
    values["limit"] = limit and int(limit)
for spec in form_settings(columns=(0, 1, 2)):
    with columns[spec.form["column"]]:
        values[spec.name] = setting_widget(spec, notes.get(spec.name), KEEP)

with st.expander("What pretraining asks (denoising, masking, crops, contrastive)"):
    st.caption(
        "The lecture's autoencoder rebuilds its own input, which can be done by copying pixels. Denoising, masking "
        "and crops give it a corrupted input and the clean image as the target, so the code must keep what the "
        "picture shows. The contrastive objective rebuilds nothing: two random views of each image must get "
        "matching codes, unlike the other images'. Compare runs on the Latent space page (the k-NN accuracy of the "
        "code, epoch by epoch) and with the label-budget sweep on the Classifier page."
    )
    rebuilds = form_settings(columns=("rebuilds",))
    for where, spec in zip(st.columns(len(rebuilds)), rebuilds):
        with where:
            values[spec.name] = setting_widget(spec, None, KEEP)

try:
    cfg = Config(**values)
except (ConfigError, DeviceError) as exc:
    st.error(str(exc))
    st.stop()
try:  # the run's key as the backend that would train it decides; a cluster still connecting says so
    key = jobs().identity(cfg, dataset.fingerprint, wait=0).key
except ClusterError as exc:
    key = None
    st.info(str(exc))
if warning := few_steps_warning(cfg, len(dataset.train), len(dataset.classes)):
    st.warning(f"With the settings on this form: {warning}")

if key is not None and find_run(key, runs_dir()):
    st.success("A run with exactly these settings exists: it loads from cache, no training needed.")
elif resolve_device("auto").type == "cpu":

    def time_estimate() -> None:
        """The estimate, once the worker has measured a step (between a running job's batches)."""
        estimate = run_estimate(cfg, dataset)  # a quick look each tick: the page is never held
        if estimate is None:
            st.info("Estimating the time on this CPU (a training step is being measured)…")
        else:
            running, slots = jobs().training_counts()
            wait = f" It starts when one of the {running} trainings running now ends." if running >= slots else ""
            st.info(f"Estimated time on this CPU: {estimate.words()}.{wait}")

    # while the step is being measured the estimate asks again every 2 s, with no input needed
    st.fragment(time_estimate, run_every=None if measured_speed(cfg, wait=2) is not None else 2.0)()

jobs().start_worker()  # warm: the first Train press does not wait for the worker to start
trainings = [j for j in jobs().jobs() if j.kind == TRAIN]
watched = jobs().get(state.watched_job("train"))
if watched is not None and watched.active:  # the live progress takes the Train button's place, in view
    st.fragment(run_every=1.0)(job_panel)()
if st.button(
    "Train" if watched is None or not watched.active else "Train these settings too (queued after it)",
    type="primary",
    key="train_button",
) and (job := submit_training(cfg, dataset)):
    state.watch_job("train", job.id)
    if job.cached:
        view_run(str(job.run_path))
        state.mark_job_seen(job.id)
        state.flash("Loaded from cache: this run already existed.", str(job.run_path))
    st.rerun()  # the new job's progress is drawn where the button was
if msg := state.flash_for(selected_run_path()):
    st.success(msg)
if watched is None or not watched.active:
    st.fragment(job_panel)()


if trainings:
    at_once = jobs().training_counts()[1]
    st.header(f"Queue (this server, {at_once} training{'s' if at_once != 1 else ''} at a time)")
    st.dataframe(
        [
            {
                **(
                    {"seat": "yours" if j.owner == seat() else (j.owner or "")[:6] if is_admin() else ""}
                    if seat()
                    else {}
                ),
                "state": j.status,
                "latent": j.config.latent_dim,
                "epochs": f"{j.config.ae_epochs}+{j.config.clf_epochs}",
                "images": f"{j.config.limit:,}" if j.config.limit else "all",
                "labels": f"{j.config.label_fraction:.0%}",
                "watching": len(j.watchers),
                "elapsed": minutes(j.elapsed()),
                "message": j.error or ("cached" if j.cached else ""),
            }
            for j in reversed(trainings)
        ],
        hide_index=True,
        width="stretch",
    )

run = current_run(show_message=False)
if run is not None:
    reproduce_this_run(run)
if run is not None and runs_dir() in run.path.parents:  # never a shipped run (a sweep point is one level down)
    st.header("The run being viewed")
    show_run_summary(run)
    left, right = st.columns(2)
    left.download_button(
        "Download as zip",
        lambda: zip_run(run.path),
        file_name=f"{run.name}.zip",
        mime="application/zip",
        key="download_run",
    )  # zipped when pressed, not on every rerun
    if not owns_run(run.path):
        right.caption("Another seat trained this run: only it (or the lecturer) can delete it.")
    elif state.confirming("delete") != run.name:
        if right.button("Delete this run", key="delete_run"):
            state.ask_to_confirm("delete", run.name)
            st.rerun()
    else:
        right.warning("Delete this run for good? Its weights and metrics are removed from the runs folder.")
        yes, no = right.columns(2)
        if yes.button("Delete", key="delete_confirmed", type="primary"):
            try:
                delete_run(run.path)
                forget_owner(run.path)
                view_run(None)
                state.ask_to_confirm("delete", None)
                st.rerun()
            except (RunError, OSError) as exc:
                st.error(str(exc))
        if no.button("Keep it", key="delete_cancelled"):
            state.ask_to_confirm("delete", None)
            st.rerun()
