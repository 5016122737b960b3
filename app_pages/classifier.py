"""Classifier: pretrained vs scratch per epoch, per class and as a confusion matrix; the lecture's
table side by side; and new fine-tuning variants from the same autoencoder."""

import streamlit as st

from cae.figures import autoencoder_curves, classifier_curves, confusion_heatmap, per_class_bars
from cae.report import best_and_worst, lecture_autoencoder_rows, lecture_classifier_rows, pretraining_verdict
from cae.runs import pretrained_dir
from app_pages._shared import (current_dataset, current_run, jobs, keep_defaults, run_label, runs, same_dataset,
                               view_run)

st.title("Classifier: does unsupervised pretraining help?")
run = current_run()
if run is None:
    st.stop()
m = run.metrics
curves = {"this run": m}  # the run viewed, plus any runs chosen for comparison
st.caption(f"Run {run.name} · data: {m['dataset']['name']} · {m['device']} · {m['precision']}")

if not m.get("classifier"):
    st.info("This run trained the autoencoder only (0 classifier epochs). Pick another run, or train a "
            "variant below.")
else:
    st.markdown(f"**{pretraining_verdict(m)}**")
    others = {i.title if i.pretrained else i.name: i for i in runs()
              if i.error is None and str(i.path) != str(run.path) and i.metrics.get("classifier")}
    shipped = [k for k, i in others.items() if i.pretrained] if str(run.path.parent) == str(pretrained_dir()) else []
    compare = st.multiselect("Compare with other runs", list(others), default=shipped, key=f"compare_{run.name}",
                             format_func=lambda k: run_label(others[k]))
    curves.update({k: others[k].metrics for k in compare})
    st.plotly_chart(classifier_curves(curves), width="stretch")
    st.plotly_chart(per_class_bars(m["dataset"]["classes"], m.get("per_class_acc"),
                                   (m.get("scratch") or {}).get("per_class_acc")), width="stretch")
    if extremes := best_and_worst(m.get("per_class_acc") or {}):
        (best, b), (worst, w) = extremes
        st.caption(f"Best class: {best} ({b:.1f}%); worst: {worst} ({w:.1f}%). The lecture found deer worst, "
                   "cat next, frog best.")
    st.plotly_chart(confusion_heatmap(m["confusion"], m["dataset"]["classes"], "Confusion matrix (fine-tuned)"),
                    width="stretch")

st.plotly_chart(autoencoder_curves({k: v["autoencoder"] for k, v in curves.items()}), width="stretch")
with st.expander("The lecture's numbers beside this run's", expanded=False):
    st.caption("The lecture printed losses divided by 30 batches where CIFAR-10 has 25, so its printed "
               "values are 25/30 of the true means; the true column corrects that. Test accuracy is "
               "unaffected. This run: " + m["dataset"]["name"] + ".")
    st.dataframe(lecture_autoencoder_rows(m), hide_index=True, width="stretch")
    st.dataframe(lecture_classifier_rows(m), hide_index=True, width="stretch")

st.subheader("Try a fine-tuning variant")
st.caption("The lecture's premise is few labels and many images. Variants reuse this run's autoencoder "
           "(no retraining) and each becomes a run you can compare above.")
dataset = current_dataset(show_error=False)
keep_defaults(variant_epochs=max(run.config.clf_epochs, 1), variant_lr=1e-3, variant_labels="100%",
              variant_mode="fine-tune all")
c1, c2, c3, c4 = st.columns(4)
epochs = c1.number_input("Classifier epochs", 1, 100, key="variant_epochs")
lr = c2.select_slider("Learning rate", [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3], format_func=lambda v: f"{v:g}",
                      key="variant_lr")
labels = c3.radio("Labels used", ["1%", "10%", "100%"], key="variant_labels", horizontal=True)
mode = c4.radio("Encoder", ["fine-tune all", "frozen (linear probe)"], key="variant_mode")
if not same_dataset(run, dataset):
    st.warning(f"This run was trained on {m['dataset']['name']}; choose that data on the Data page to "
               "run variants from its autoencoder.")
elif st.button("Train this variant", key="variant_button", type="primary"):
    cfg = run.config.replace(clf_epochs=int(epochs), clf_lr=float(lr), label_fraction=int(labels[:-1]) / 100,
                             freeze_encoder=mode != "fine-tune all")
    job = jobs().submit(cfg, dataset)
    st.session_state.job_key = job.key
    if job.cached:
        view_run(str(job.run_path))
        st.rerun()
    st.switch_page("app_pages/train.py")
