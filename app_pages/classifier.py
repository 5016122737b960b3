"""Classifier: pretrained vs scratch per epoch, per class and as a confusion matrix; the lecture's
table side by side; and fine-tuning this run's encoder again (other settings, or other data)."""

import streamlit as st

from app_pages import state
from app_pages._shared import (
    current_dataset,
    current_run,
    reproduce_this_run,
    run_label,
    same_classes_other_images,
    same_dataset,
    show_chart,
    show_run_summary,
    view_run,
)
from app_pages.caches import TaskError, computed, jobs, measured_speed, runs
from app_pages.rights import seat, submit_sweep, submit_training
from cae import budget
from cae.analysis import per_class_counts
from cae.budget_figures import label_budget_chart
from cae.budget_report import label_budget_sentence
from cae.config import LEARNING_RATES, ConfigError, few_steps_warning, fitting_batch_size
from cae.devices import resolve_device
from cae.experiment import transfer_config
from cae.figures import autoencoder_curves, classifier_curves, confusion_heatmap, per_class_bars
from cae.jobs import DONE
from cae.report import class_extremes_sentence, one_seed_caution, pretraining_verdict, verdict_rule
from cae.runs import RunError
from cae.sweeps import budget_lines, lecture_seeds, load_label_budget, seed_spread
from cae.transcript import lecture_autoencoder_rows, lecture_classifier_rows
from cae.words import code_span, test_images
from cae.words import duration as minutes


def same_data(a: dict, b: dict) -> bool:
    return a["dataset"]["fingerprint"] == b["dataset"]["fingerprint"]


def compare_label(info, metrics: dict) -> str:
    """A run to compare with, flagged when it was tested on other data."""
    if same_data(info.metrics, metrics):
        return run_label(info)
    name = info.metrics["dataset"]["name"].split(" (")[0]
    return f"{run_label(info)} — ⚠ other data: {name}, {test_images(info.metrics) or 0:,} test images"


def finetune_form(run, dataset) -> None:
    """The one form that fine-tunes this run's encoder again, on the data in use (the run's own
    data: a variant that reuses its autoencoder; other data: a transfer): one classifier, or the
    label-budget sweep."""
    transfer = not same_dataset(run, dataset)
    where = (
        f"on {dataset.name}: only the classifier sees its labels; the encoder learned from "
        f"{run.metrics['dataset']['name']} without labels"
        if transfer
        else "on this run's data, reusing its autoencoder (no retraining)"
    )
    st.caption(f"A new head on this run's encoder, {where}. Each result becomes a run the other pages can open.")
    what = st.radio(
        "Train",
        ["one classifier", "the label-budget sweep"],
        key="finetune_what",
        persist_state="session",
        horizontal=True,
    )
    if what == "one classifier":
        one_classifier(run, dataset, transfer)
    else:
        run_label_budget(run, dataset)


def one_classifier(run, dataset, transfer: bool) -> None:
    """One new classifier: its epochs, learning rate, batch, labels and whether the encoder trains."""
    n_train = len(dataset.train)
    state.widget_defaults(
        variant_epochs=max(run.config.clf_epochs, 1),
        variant_lr=run.config.clf_lr,
        variant_batch=fitting_batch_size(n_train),
        variant_labels="100%",
        variant_count=min(1000, n_train),
        variant_mode="fine-tune all",
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Classifier epochs (new run)", 1, 100, key="variant_epochs", persist_state="session")
    lr = c2.select_slider(
        "Learning rate", LEARNING_RATES, format_func=lambda v: f"{v:g}", key="variant_lr", persist_state="session"
    )
    batch = c3.number_input(
        "Batch size",
        1,
        10_000,
        key="variant_batch",
        persist_state="session",
        help="At least 10 optimiser steps per epoch: the labelled images / 10 or fewer.",
    )
    labels = c4.radio(
        "Labels used", ["1%", "10%", "100%", "a number"], key="variant_labels", persist_state="session", horizontal=True
    )
    count = c4.number_input(
        "Labelled images (class-balanced)",
        1,
        n_train,
        key="variant_count",
        persist_state="session",
        disabled=labels != "a number",
    )
    mode = c5.radio("Encoder", ["fine-tune all", "frozen (linear probe)"], key="variant_mode", persist_state="session")
    changes = dict(
        clf_epochs=int(epochs), clf_lr=float(lr), clf_batch_size=int(batch), freeze_encoder=mode != "fine-tune all"
    )
    if labels == "a number":
        changes.update(label_count=int(count), label_fraction=1.0)
    else:
        changes.update(label_fraction=int(labels[:-1]) / 100, label_count=None)
    try:
        cfg = transfer_config(run, **changes) if transfer else run.config.replace(**changes)
    except (RunError, ConfigError) as exc:
        st.error(str(exc))
        return
    if warning := few_steps_warning(cfg, n_train, len(dataset.classes), classifier_only=True):
        st.warning(f"With the settings on this form: {warning}")
    label = f"Fine-tune on {dataset.name}" if transfer else "Train this variant"
    if not st.button(label, key="variant_button", type="primary"):
        return
    job = submit_training(cfg, dataset)
    if job is None:
        return
    state.watch_job("train", job.id)  # the Train page shows its progress
    if job.cached:
        view_run(str(job.run_path))
        st.rerun()
    st.switch_page("app_pages/train.py")


def run_label_budget(run, dataset) -> None:
    """The label-budget experiment for this run's encoder on the data in use: one queue entry whose
    points arrive one by one (a reduced default on a CPU), the chart filling in as they do; each
    point is a run the other pages can open."""
    cpu = resolve_device("auto").type == "cpu"
    budgets = tuple(b for b in (budget.QUICK_BUDGETS if cpu else budget.BUDGETS) if b <= len(dataset.train))
    seeds = 1 if cpu else 3
    if not budgets:
        st.info(f"{dataset.name} has fewer than {min(budget.QUICK_BUDGETS)} training images: too few for a sweep.")
        return
    st.caption(f"Protocol: {budget.PROTOCOL}")
    per_mflop = measured_speed(run.config)
    guess = (
        f", about "
        f"{minutes(budget.planned(run.config, budgets, seeds, len(dataset.train), len(dataset.test)) * per_mflop)}"
        if per_mflop
        else ""
    )
    label = (
        f"Run this sweep for this run's encoder on {dataset.name}: {', '.join(f'{b:,}' for b in budgets)} labels, "
        f"{seeds} seed{'s' * (seeds > 1)}{guess}"
    )
    if st.button(label, key="run_budget") and (job := submit_sweep(run.path, dataset, budgets, seeds)):
        state.watch_job("budget", job.id)

    def progress() -> None:
        job = jobs().get(state.watched_job("budget"))
        points = list(job.result or []) if job else budget.saved_points(jobs().runs_dir, run.name, dataset.fingerprint)
        if job is not None:
            done = f"{len(points)} of {len(budgets) * seeds} points"
            st.caption(
                f"Sweep: **{job.status}**, {done}"
                + (f" — {job.error}" if job.error else "")
                + (f", place {jobs().place_in_queue(job.id)} in the queue" if jobs().place_in_queue(job.id) else "")
            )
        if points:
            lines = budget_lines(points)
            show_chart(
                st,
                label_budget_chart(
                    lines, len(dataset.classes), f"Test accuracy against labels: this run on {dataset.name}"
                ),
                width="stretch",
            )
            st.markdown(label_budget_sentence(lines))
            open_a_point(points, budget.sweep_folder(jobs().runs_dir, run.name, dataset.fingerprint))
        if job is not None and not job.active:
            state.watch_job("budget", None)
            if job.state == DONE:
                st.rerun()  # the whole page once: polling stops, the saved sweep is drawn

    running = (job := jobs().get(state.watched_job("budget"))) is not None and job.active
    st.fragment(progress, run_every=2.0 if running else None)()


def open_a_point(points: list[dict], folder) -> None:
    """A sweep point's runs (fine-tuned with its scratch baseline, and frozen) to view on every page."""
    choices = {
        f"{p['budget']:,} labels, seed {p['seed']}: {line}": folder / p["runs"][key]
        for p in points
        if p.get("runs")
        for key, line in (("finetuned", "fine-tuned and scratch"), ("frozen", "frozen encoder"))
    }
    if not choices:
        return
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    choice = left.selectbox("Open a point of this sweep on every page", list(choices), key="open_point")
    if right.button("Open", key="open_point_button") and choices[choice].is_dir():
        view_run(str(choices[choice]))
        st.rerun(scope="app")


def label_budget(viewed: str) -> None:
    """The lecture's claim as one chart: accuracy against labelled images, for the shipped encoders;
    the run viewed (`viewed`, its folder name) first when it is one of them."""
    sweep = load_label_budget()
    if not sweep or not sweep.get("sources"):
        st.info(
            "This copy has no label-budget results (pretrained/label_budget.json); "
            "`python bench/label_budget.py` makes them."
        )
        return
    sources = {name: entry for name, entry in sweep["sources"].items() if entry["points"]}
    names = sorted(sources, key=lambda n: n != viewed)  # stable: the viewed run first, else the shipped order
    name = st.selectbox(
        "Encoder", names, format_func=lambda n: sources[n]["title"], key=f"budget_source_{viewed}"
    )  # one choice per run viewed: opening another run shows its own lines
    lines = budget_lines(sources[name]["points"], sweep.get("precision"))
    show_chart(
        st,
        label_budget_chart(
            lines, len(sweep["dataset"]["classes"]), f"Test accuracy against labels: {sources[name]['title']}"
        ),
        width="stretch",
    )
    st.markdown(label_budget_sentence(lines))
    for other in sorted({p.get("precision") for p in sources[name]["points"]} - {sweep.get("precision"), None}):
        st.caption(
            f"The same protocol in {other} (a check that {sweep.get('precision')} does not decide it): "
            + label_budget_sentence(budget_lines(sources[name]["points"], other))
        )
    st.caption(
        f"Shipped results on {sweep['dataset']['name']}, metrics only, in {sweep.get('precision')}. {sweep['protocol']}"
    )


def evaluation_on_data_in_use(run, dataset) -> None:
    """The run's shipped numbers beside the same run evaluated on the user's copy of its classes."""
    st.info(
        f"This run was trained and tested on {run.metrics['dataset']['name']}; the data in use, "
        f"{dataset.name}, has the same classes but other images (for example torchvision's CIFAR-10 "
        "rather than the JPEG copy), so the numbers below are on the run's own test set."
    )
    if not st.button("Evaluate this run on the data in use", key="evaluate_here"):
        return
    payload = {"run": str(run.path), "origin": dataset.origin, "fingerprint": dataset.fingerprint}
    with st.spinner(f"Evaluating on {len(dataset.test):,} test images (in the training worker)…"):
        try:
            fresh = computed("evaluate", payload, wait=900)
        except TaskError as exc:
            st.error(f"The evaluation failed: {exc}")
            return
    m = run.metrics
    rows = (
        [
            {
                "": "test MSE",
                "its own test set": f"{m['autoencoder'][-1]['test_mse']:.4f}",
                "the data in use": f"{fresh['test_mse']:.4f}",
            }
        ]
        if fresh["test_mse"] is not None
        else []
    )
    if fresh["test_acc"] is not None:
        rows.append(
            {
                "": "test accuracy",
                "its own test set": f"{m['classifier'][-1]['test_acc']:.1f}%",
                "the data in use": f"{fresh['test_acc']:.1f}%",
            }
        )
        rows += [
            {"": c, "its own test set": f"{m['per_class_acc'][c]:.1f}%", "the data in use": f"{a:.1f}%"}
            for c, a in fresh["per_class_acc"].items()
        ]
    st.dataframe(rows, hide_index=True, width="stretch")


st.title("Classifier: does pretraining help?")
run = current_run()
if run is None:
    st.stop()
m = run.metrics
dataset = current_dataset(show_error=False)
curves = {"this run": m}  # the run viewed, plus any runs chosen for comparison
show_run_summary(run)
origin = m["dataset"].get("origin")  # a server path: never shown to other seats in a class
st.caption(
    f"Run {run.name} · {m['device']} · {m['precision']}"
    + (f" · trained on {code_span(origin)}" if origin and seat() is None else "")
)
if (pre := m.get("pretraining_dataset")) and pre["fingerprint"] != m["dataset"]["fingerprint"]:
    st.caption(
        f"Its encoder comes from {m.get('autoencoder_source')}, an autoencoder trained on {pre['name']} "
        f"({pre['train_size']:,} images, no labels); only the classifier saw this data."
    )

transfer = dataset is not None and not same_dataset(run, dataset)
if transfer:  # the first thing offered, folded to one line so the page's main chart stays in view
    with st.expander(f"**Fine-tune this run's encoder on the data in use** ({dataset.name.split(' (')[0]})"):
        st.caption(
            f"The lecture's premise in one click: this encoder learned from {m['dataset']['name']} without "
            f"labels; a new head is trained on the labels of {dataset.name}, beside the same classifier "
            "from random init."
        )
        finetune_form(run, dataset)
        if same_classes_other_images(run, dataset):
            evaluation_on_data_in_use(run, dataset)

if not m.get("classifier"):
    st.info(
        "This run trained the autoencoder only (0 classifier epochs). Pick another run, or fine-tune its encoder below."
    )
else:
    seeds = seed_spread(m)
    st.markdown(f"**{pretraining_verdict(m, seeds)}**")
    st.caption(
        f"How this is decided: {verdict_rule(m, seeds)}. {'' if seeds else one_seed_caution(m, lecture_seeds())}"
    )
    others = {str(i.path): i for i in runs() if i.error is None and i.path != run.path and i.metrics.get("classifier")}
    compare = st.multiselect(
        "Compare with other runs",
        list(others),
        key=f"compare_{run.name}",
        format_func=lambda p: compare_label(others[p], m),
    )
    curves.update({run_label(others[p]): others[p].metrics for p in compare})
    if any(not same_data(others[p].metrics, m) for p in compare):
        st.caption(
            '⚠ Runs marked "other data" were tested on other images (and often fewer of them): '
            "their accuracies do not compare directly with this run's."
        )
    show_chart(st, classifier_curves(curves), width="stretch")
    show_chart(
        st,
        per_class_bars(
            m["dataset"]["classes"],
            m.get("per_class_acc"),
            (m.get("scratch") or {}).get("per_class_acc"),
            per_class_counts(m),
        ),
        width="stretch",
    )
    if sentence := class_extremes_sentence(m, seed_spread(m)):
        st.caption(sentence)
    show_chart(
        st, confusion_heatmap(m["confusion"], m["dataset"]["classes"], "Confusion matrix (fine-tuned)"), width="stretch"
    )

show_chart(st, autoencoder_curves({k: v["autoencoder"] for k, v in curves.items()}), width="stretch")
with st.expander("The lecture's numbers beside this run's", expanded=False):
    st.caption(
        "The lecture printed losses divided by 30 batches where CIFAR-10 has 25, so its printed "
        "values are 25/30 of the true means; the true column corrects that. Test accuracy is "
        "unaffected. This run: " + m["dataset"]["name"] + "."
    )
    st.dataframe(lecture_autoencoder_rows(m), hide_index=True, width="stretch")
    st.dataframe(lecture_classifier_rows(m), hide_index=True, width="stretch")
reproduce_this_run(run)

st.header("How many labels does pretraining save?")
label_budget(run.name)

if not transfer and dataset is not None:
    st.header("Fine-tune this run's encoder again")
    finetune_form(run, dataset)
elif dataset is None:
    st.info("Choose data on the Data page to fine-tune this run's encoder.")
