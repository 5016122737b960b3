"""Lecture mode: the lecture in its order, one idea per screen, Next / Back, the step in the URL;
"predict, then reveal" questions answered with the shipped run's real figures. Runs entirely from
the shipped runs, so it never waits on training."""

import streamlit as st

from cae import lecture
from cae.config import QUICK_LOOK, preset_config
from cae.data import load_sample
from cae.explain import reconstruct
from cae.figures import (architecture_diagram, autoencoder_curves, classifier_curves, image_strip, kernel_sheet,
                         live_loss, per_class_bars, sample_grid)
from cae.jobs import RUNNING
from cae.model import ConvAutoencoder, layer_table, seeded
from cae.report import duration as minutes, pretraining_verdict
from cae.runs import PRETRAINED_DIR, pretrained_index
from cae.sweeps import fits_sweep, load_sweeps
from cae.train import estimate_seconds
from app_pages._shared import cached_run, current_dataset, jobs, seconds_per_mflop, submit_training

PRESENTER_CSS = """<style>
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label { font-size: 20px !important; }
[data-testid="stMain"] h1 { font-size: 34px !important; padding-top: 0 !important; }
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem !important; padding-bottom: 1rem !important; }
</style>"""
HIDE_SIDEBAR_CSS = """<style>[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] { display: none; }</style>"""
FIGURE_HEIGHT = 400  # every figure fits beside the text in a 1280x720 window


def shipped_run():
    """The Lecture preset, the run every step shows."""
    path = PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"]
    return cached_run(str(path), (path / "metrics.json").stat().st_mtime)


def plotly_figure(key: str, run):
    """The step's chart, from the shipped run (and the bundled sample's images), or None."""
    m = run.metrics
    if key == "why":
        sample = load_sample()
        return sample_grid(sample.train.images, sample.train.labels, sample.classes, per_class=8)
    if key == "architecture":
        return architecture_diagram(layer_table(ConvAutoencoder.from_config(run.config, seeded(0))))
    if key == "autoencoder":
        sample = load_sample()
        images = sample.test.images[[int((sample.test.labels == c).nonzero()[0]) for c in range(8)]]  # 8 classes
        return image_strip([images, reconstruct(run.autoencoder, images)],
                           f"Test images (top) and their reconstructions after {len(m['autoencoder'])} epochs")
    if key == "finetune":
        return classifier_curves({"Lecture preset": m})
    if key == "classes":
        return per_class_bars(m["dataset"]["classes"], m["per_class_acc"], m["scratch"]["per_class_acc"])
    return None


def show_figure(key: str, run, code: dict | None) -> None:
    """The step's figure beside its text, sized to fit a 1280x720 window."""
    if key == "kernels":
        before, after = run.kernels["initial"], run.kernels["autoencoder"]
        bounds = (float(min(before.min(), after.min())), float(max(before.max(), after.max())))
        left, right = st.columns(2)
        left.image(kernel_sheet(before, bounds, scale=10), caption="random start", width="stretch")
        right.image(kernel_sheet(after, bounds, scale=10), caption="after 5 autoencoder epochs (one colour scale)",
                    width="stretch")
    elif key == "code" and code:
        st.dataframe([{"features": "raw pixels", "k-NN accuracy": f"{code['pixels_knn']:.1f}%"},
                      {"features": "the code after 5 epochs", "k-NN accuracy": f"{code['knn']:.1f}%"}],
                     hide_index=True, width="stretch")
    elif (fig := plotly_figure(key, run)) is not None:
        st.plotly_chart(fig.update_layout(height=FIGURE_HEIGHT if key != "autoencoder" else 210), width="stretch")
    if key == "autoencoder":
        st.plotly_chart(autoencoder_curves({"Lecture preset": run.metrics["autoencoder"]}).update_layout(height=240),
                        width="stretch")


def live_training(dataset) -> None:
    """Train the Quick look preset here when this machine would take under a minute."""
    cfg = preset_config(QUICK_LOOK)
    per_mflop = seconds_per_mflop(cfg)
    if per_mflop is None or dataset is None:
        return
    guess = estimate_seconds(cfg, len(dataset.train), len(dataset.test), per_mflop)
    if guess >= 60:
        st.caption(f"Training it live here would take about {minutes(guess)}; the Train page can do that.")
        return
    if st.button(f"Train it live: {QUICK_LOOK}, about {minutes(guess)}", key="lecture_live") and \
            (job := submit_training(cfg, dataset)):
        st.session_state.lecture_job = job.id

    @st.fragment(run_every=1.0)
    def progress() -> None:
        job = jobs().get(st.session_state.get("lecture_job"))
        if job is None:
            return
        if job.status == RUNNING and job.progress:
            p = job.progress
            st.progress(min(p.epoch / max(p.epochs, 1), 1.0), text=f"{p.phase} epoch {p.epoch}/{p.epochs}, loss {p.loss:.4f}")
        elif not job.active:
            st.caption(f"Finished ({job.status}); the Train page shows the run.")
        if job.losses:
            st.plotly_chart(live_loss(job.losses).update_layout(height=260), width="stretch")
    progress()


st.markdown(PRESENTER_CSS, unsafe_allow_html=True)
presenter = st.toggle("Presenter view (no sidebar)", key="presenter", value=True)
if presenter:
    st.markdown(HIDE_SIDEBAR_CSS, unsafe_allow_html=True)
steps = lecture.STEPS
try:
    number = min(max(int(st.query_params.get("step", 1)), 1), len(steps))
except ValueError:
    number = 1
st.query_params["step"] = str(number)
step, run = steps[number - 1], shipped_run()
st.title(f"{number}/{len(steps)} · {step.title}")
left, right = st.columns([2, 3])
with left:
    st.markdown(step.body)
    choices = step.choices or (tuple(run.classes) if step.key == "classes" else ())
    revealed = not step.question or st.session_state.get(f"revealed_{step.key}", False)
    sweeps = load_sweeps()
    code = lecture.code_numbers(run.metrics, sweeps["runs"] if sweeps and fits_sweep(run.metrics, sweeps) else [])
    if step.question:
        guess = st.radio(f"**Predict:** {step.question}", choices, index=None, key=f"guess_{step.key}",
                         horizontal=True)
        if st.button("Reveal", key=f"reveal_{step.key}", disabled=revealed):
            st.session_state[f"revealed_{step.key}"] = revealed = True
        if revealed:
            right_answer, why = lecture.answer(step, run.metrics, run.kernels, code)
            verdict = "" if guess is None else ("✓ As you predicted. " if guess == right_answer else "✗ Not quite. ")
            st.markdown(f"{verdict}**{right_answer}** — {why}")
    if step.key == "finetune" and revealed:
        st.caption(pretraining_verdict(run.metrics))
    if step.key == "autoencoder":
        live_training(current_dataset(show_error=False))
with right:
    if revealed:
        show_figure(step.key, run, code)
    else:
        st.caption("Predict first; the shipped run's real result appears here.")
back, live, forward = st.columns([1, 2, 1])
if back.button("← Back", disabled=number == 1, key="lecture_back", width="stretch"):
    st.query_params["step"] = str(number - 1)
    st.rerun()
live.page_link(step.live_page, label="Open this step's live page", icon=":material/open_in_new:")
if forward.button("Next →", disabled=number == len(steps), key="lecture_next", type="primary", width="stretch"):
    st.query_params["step"] = str(number + 1)
    st.rerun()
