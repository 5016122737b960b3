"""Lecture mode: the lecture in its order, one idea per screen, Next / Back, the step in the URL;
"predict, then reveal" questions answered with the shipped run's real figures. Runs entirely from
the shipped runs, so it never waits on training."""

import streamlit as st

from app_pages import state
from app_pages._shared import current_dataset, link_params, show_chart
from app_pages.caches import cached_run, jobs, measured_speed, run_estimate
from app_pages.rights import submit_training
from cae import lecture
from cae.analysis import per_class_counts
from cae.budget_figures import label_budget_chart, objectives_chart
from cae.data import load_sample
from cae.evidence import RULES
from cae.explain import reconstruct
from cae.figures import (
    architecture_diagram,
    autoencoder_curves,
    classifier_curves,
    image_strip,
    kernel_sheet,
    live_loss,
    per_class_bars,
    projector_fonts,
    sample_grid,
)
from cae.jobs import DONE, RUNNING
from cae.model import ConvAutoencoder, layer_table, seeded
from cae.report import live_run_sentence
from cae.runs import default_pretrained_run, read_metrics
from cae.sweeps import (
    OBJECTIVE_NAMES,
    budget_lines,
    fits_sweep,
    load_label_budget,
    load_objectives,
    load_sweeps,
    seed_spread,
)
from cae.words import duration as minutes
from cae.words import run_title

FIGURE_HEIGHT = 400  # every figure fits beside the text in a 1280x720 window
# A presenter clicker's keys, whatever has the focus (a prediction clicked with the mouse, the view's
# toggle: Streamlit's own shortcuts stop while an input has it): PageDown / PageUp press Next / Back,
# "." or "b" (a clicker's blank-screen key) presses Reveal. Never while typing in a text field.
CLICKER_KEYS_JS = """<script>
(() => {
  if (window.caeClickerKeys) return;
  window.caeClickerKeys = true;
  const buttons = {PageDown: '.st-key-lecture_next button', PageUp: '.st-key-lecture_back button',
                   '.': '[class*="st-key-reveal_"] button', b: '[class*="st-key-reveal_"] button'};
  document.addEventListener('keydown', (event) => {
    const selector = buttons[event.key];
    const target = event.target;
    const typing = target && (target.isContentEditable || ['TEXTAREA', 'SELECT'].includes(target.tagName) ||
      (target.tagName === 'INPUT' && !['radio', 'checkbox', 'button'].includes(target.type)));
    if (!selector || typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const button = document.querySelector('[data-testid="stMain"] ' + selector);
    if (!button || button.disabled) return;
    event.preventDefault();
    event.stopImmediatePropagation();  // Streamlit's own PageDown shortcut must not press it twice
    if (target && target.blur) target.blur();
    button.click();
  }, true);
})();
</script>"""


def shipped_run():
    """The Lecture preset, the run every step shows."""
    path = default_pretrained_run()
    return cached_run(str(path), (path / "metrics.json").stat().st_mtime)


@st.cache_resource(show_spinner=False)
def recognition(path: str) -> dict:
    """The shipped run's fine-tuned classifier on the bundled sample's test images and on their
    reconstructions (the autoencoder step's evidence; about a second, once per server)."""
    run, sample = cached_run(path, 0.0), load_sample()
    return lecture.recognition(run.autoencoder, run.classifier, sample.test.images, sample.test.labels)


def lecture_budget_lines(run) -> tuple[dict, dict] | None:
    """(lines up to 10,000 labels, the shipped file) of the label-budget sweep for the shipped run's
    encoder, in the precision the file draws; None when the copy has none."""
    sweep = load_label_budget()
    entry = (sweep or {}).get("sources", {}).get(run.name)
    if not entry or not entry["points"]:
        return None
    points = [p for p in entry["points"] if p["budget"] in lecture.LECTURE_BUDGETS]
    return budget_lines(points, sweep.get("precision")), sweep


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
        return image_strip(
            [images, reconstruct(run.autoencoder, images)],
            f"Test images (top) and their reconstructions after {len(m['autoencoder'])} epochs",
        )
    if key == "finetune":
        return classifier_curves({"Lecture preset": m})
    if key == "classes":
        return per_class_bars(
            m["dataset"]["classes"], m["per_class_acc"], m["scratch"]["per_class_acc"], per_class_counts(m)
        )
    if key == "budget" and (found := lecture_budget_lines(run)):
        return label_budget_chart(found[0], len(m["dataset"]["classes"]), "Test accuracy against labelled images")
    if key == "objectives" and (shipped := load_objectives()):
        return objectives_chart(shipped["options"], OBJECTIVE_NAMES)
    return None


def show_figure(key: str, run, code: dict | None) -> None:
    """The step's figure beside its text, sized to fit a 1280x720 window."""
    if key == "kernels":
        before, after = run.kernels["initial"], run.kernels["autoencoder"]
        bounds = (float(min(before.min(), after.min())), float(max(before.max(), after.max())))
        left, right = st.columns(2)
        left.image(
            kernel_sheet(before, bounds, scale=10),
            caption="random start",
            width="stretch",
            alt="The 64 first-layer kernels at their random start, an 8 by 8 grid of 3x3 colour squares",
        )
        right.image(
            kernel_sheet(after, bounds, scale=10),
            caption="after 5 autoencoder epochs (one colour scale)",
            alt="The same 64 kernels after 5 autoencoder epochs, on the same colour scale",
            width="stretch",
        )
    elif key == "code" and code:
        st.dataframe(
            [
                {"features": "raw pixels", "k-NN accuracy": f"{code['pixels_knn']:.1f}%"},
                {"features": "the code after 5 epochs", "k-NN accuracy": f"{code['knn']:.1f}%"},
            ],
            hide_index=True,
            width="stretch",
        )
    elif (fig := plotly_figure(key, run)) is not None:
        show_chart(
            st,
            projector_fonts(fig.update_layout(height=FIGURE_HEIGHT if key != "autoencoder" else 210)),
            width="stretch",
        )
    if key == "autoencoder":
        curves = autoencoder_curves({"Lecture preset": run.metrics["autoencoder"]}).update_yaxes(title="MSE")
        show_chart(st, projector_fonts(curves.update_layout(height=250)), width="stretch")


def live_training(dataset) -> None:
    """Train Lecture mode's live recipe here when this machine would take under a minute, and say
    what the run showed once it is done. The panel ticks only while it waits for something (the
    worker measuring a step, the job training); a run of the whole page starts and stops its timer."""
    if dataset is None:
        return
    cfg = lecture.live_config(len(dataset.train), len(dataset.test))
    job = jobs().get(state.watched_job("lecture"))
    waiting = job.active if job is not None else measured_speed(cfg, wait=2) is None
    st.fragment(live_panel, run_every=1.0 if waiting else None)(dataset, cfg, waiting)


def live_panel(dataset, cfg, ticking: bool) -> None:
    job = jobs().get(state.watched_job("lecture"))
    if job is None:
        estimate = run_estimate(cfg, dataset)
        if estimate is None:
            st.caption("Measuring this machine's speed for a live run…")
            return
        if ticking:
            st.rerun(scope="app")  # measured: stop ticking, show the button
        guess = estimate.likely
        if guess >= 60:
            st.caption(f"Training it live here would take {estimate.words()}; the Train page can do that.")
            return
        used = min(len(dataset.train), cfg.limit or len(dataset.train))
        if st.button(
            f"Train it live: {used:,} images of {dataset.name.split(' (')[0]}, about {minutes(guess)}",
            key="lecture_live",
        ) and (job := submit_training(cfg, dataset)):
            state.watch_job("lecture", job.id)
            st.rerun(scope="app")  # start ticking
        return
    if job.status == RUNNING and job.progress:
        p = job.progress
        st.progress(
            min(p.epoch / max(p.epochs, 1), 1.0), text=f"{p.phase} epoch {p.epoch}/{p.epochs}, loss {p.loss:.4f}"
        )
    elif job.state == DONE and job.run_path is not None:
        metrics = read_metrics(job.run_path)
        st.markdown(live_run_sentence(metrics), help=f"Run: {run_title(metrics)}")
    elif not job.active:
        st.caption(f"Finished ({job.status}){f': {job.error}' if job.error else ''}.")
    if job.losses and job.active:
        show_chart(st, projector_fonts(live_loss(job.losses).update_layout(height=260)), width="stretch")
    if ticking and not job.active:
        st.rerun(scope="app")  # done: stop ticking


st.html(CLICKER_KEYS_JS, unsafe_allow_javascript=True)
if cookie := state.reveals_cookie():
    st.sidebar.html(cookie, unsafe_allow_javascript=True)  # the sidebar: no gap in the projected page
# the view's styles come from streamlit_app.py (app_pages/styles.py), before the page's elements
st.toggle("Presenter view (no sidebar)", key="presenter", value=state.presenting())
steps = lecture.STEPS
# the address names the step; without one (the sidebar's link, the browser's Back to a page address
# without it) the step this session left; a reveal stays in this browser (a session cookie, for a
# reload), never in a link
number = lecture.step_number(state.url_param("step") or state.lecture_step())
state.set_lecture_step(steps[number - 1].key)
state.set_url_param("step", steps[number - 1].key)
step, run = steps[number - 1], shipped_run()
st.title(f"{number}/{len(steps)} · {step.title}")
# Next / Back first, under the title: in view after any reveal and during live training (PageDown /
# PageUp, what presenter clickers send, press them too)
back, live, forward = st.columns([1, 2, 1])
if back.button("← Back", disabled=number == 1, key="lecture_back", width="stretch", shortcut="PageUp"):
    state.set_url_param("step", steps[number - 2].key)
    st.rerun()
live.page_link(
    step.live_page, label="Open this step's live page", icon=":material/open_in_new:", query_params=link_params()
)
if forward.button(
    "Next →", disabled=number == len(steps), key="lecture_next", type="primary", width="stretch", shortcut="PageDown"
):
    state.set_url_param("step", steps[number].key)
    st.rerun()
budget = lecture_budget_lines(run)
objectives = (load_objectives() or {}).get("options")
left, right = st.columns([2, 3])
with left:
    budget_seeds = budget and min(v["n"] for v in budget[0]["finetuned"].values())
    body = lecture.step_body(step, run.metrics, budget_seeds, objectives)
    choices = step.choices or (tuple(run.classes) if step.key == "classes" else ())
    revealed = not step.question or state.revealed(step.key)
    sweeps = load_sweeps()
    code = lecture.code_numbers(run.metrics, sweeps["runs"] if sweeps and fits_sweep(run.metrics, sweeps) else [])
    if not step.question or not revealed:
        st.markdown(body)
    else:  # revealed: the answer takes the text's place, so the step fits one projector screen
        with st.expander("The step's text"):
            st.markdown(body)
    if step.question and not revealed:
        guess = st.radio(
            f"**Predict:** {step.question}",
            choices,
            index=None,
            key=f"guess_{step.key}",
            horizontal=True,
            persist_state="session",
        )  # kept while the step's live page is open
        if st.button("Reveal", key=f"reveal_{step.key}"):
            state.reveal(step.key, guess)
            st.rerun()
    elif step.question:
        guess = state.revealed_guess(step.key)
        said = lecture.answer(
            step,
            run.metrics,
            run.kernels,
            code,
            seeds=seed_spread(run.metrics),
            seen=recognition(str(run.path)) if step.key == "autoencoder" else None,
            budget=budget[0] if budget else None,
            objectives=objectives,
            names=OBJECTIVE_NAMES,
        )
        st.markdown(f"**{step.question}** " + (f"You predicted *{guess}*." if guess else "No prediction."))
        if said.choice:
            st.markdown(f"{said.judge(guess)}**{said.choice}** — {said.why}")
        else:
            st.info("This copy lacks the shipped numbers that answer this question (pretrained/).")
    if step.key == "finetune" and revealed:
        seeds = seed_spread(run.metrics)
        st.caption(f"How this is decided: {RULES['seeds' if seeds else 'accuracies']}.")
    if step.key == "budget" and revealed and budget:
        with st.expander("How each point was trained"):
            st.caption(
                f"Protocol: {budget[1]['protocol']} Shown up to 10,000 labels (300 steps are less than one epoch "
                "of 50,000 images)."
            )
    if step.key == "autoencoder":
        live_training(current_dataset(show_error=False))
with right:
    if revealed:
        show_figure(step.key, run, code)
    else:
        st.caption("Predict first; the shipped run's real result appears here.")
