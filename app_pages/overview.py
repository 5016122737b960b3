"""Overview: the lecture's idea, the architecture from the current config, an output-size
calculator, where a training step's time goes on this machine, and the model's source."""

import streamlit as st
import torch

from app_pages import state
from app_pages._shared import current_run, show_chart, show_run_summary
from app_pages.caches import TaskError, computed
from cae.config import Config
from cae.explain import conv_output_size, model_source
from cae.figures import architecture_diagram, timing_bars
from cae.model import Classifier, ConvAutoencoder, layer_table, seeded
from cae.report import seeds_paragraph
from cae.runs import RunError, default_pretrained_run, read_metrics
from cae.sweeps import seed_spread
from cae.timing import upsampling_arithmetic


def claim_and_measurement() -> str:
    """The lecture's claim beside what the shipped seeds of the Lecture preset measured (read from
    pretrained/seeds.json, never typed here)."""
    text = (
        "**What the lecture claims, and what was measured here.** The lecture expects the unsupervised start "
        "to give a better classifier than random weights, most of all early on."
    )
    try:
        metrics = read_metrics(default_pretrained_run())
        seeds = seed_spread(metrics)
    except (OSError, KeyError, ValueError, TypeError, RunError):  # TypeError: no shipped run at all
        seeds = None
    if seeds:
        text += (
            f" On {metrics['dataset']['name'].split(' (')[0]} with all {metrics['dataset']['train_size']:,} "
            f"labels (the Lecture preset): {seeds_paragraph(seeds)}"
        )
    return text + (
        " The real test of the premise is **few labels**: the Classifier page's label-budget chart "
        "and Lecture mode's last step show where, if anywhere, the autoencoder's start helps."
    )


st.title("Overview: learning features without labels")
st.markdown(
    """
Labels are scarce; images are plenty. A **convolutional autoencoder** squeezes each 32×32 CIFAR-10
image through a small *code* and learns to rebuild it, judged only by the mean squared error
between input and output — no labels at all. Its **encoder** is then reused, with a new linear
head, as a 10-class classifier and fine-tuned with labels (cross-entropy). Along the way we look at
the 64 first-layer kernels before and after training, and at how much each one changed.
"""
)
st.markdown(claim_and_measurement())

run = current_run(show_message=False)
cfg = run.config if run else Config()
if run is not None:
    show_run_summary(run)
st.header("The architecture")
st.caption(
    f"Computed from {'the run being viewed' if run else 'the default config'}: latent size "
    f"{cfg.latent_dim}, LeakyReLU slope {cfg.leak}, {cfg.upsample} upsampling. Bilinear upsampling "
    "uses today's `align_corners=False`; the lecture's PyTorch 0.3 behaved like `align_corners=True`."
)
ae_table = layer_table(ConvAutoencoder.from_config(cfg, seeded(0)))
show_chart(st, architecture_diagram(ae_table), width="stretch")
left, right = st.columns(2)
with left:
    st.markdown("**Autoencoder**")
    st.dataframe(
        [
            {
                "layer": "upsample ×2" if "Upsample" in r["layer"] else r["name"],
                "output": "×".join(map(str, r["output"])),
                "parameters": f"{r['params']:,}",
            }
            for r in ae_table
        ],
        hide_index=True,
        width="stretch",
    )
    st.metric("Autoencoder parameters", f"{sum(r['params'] for r in ae_table):,}")
with right:
    clf_table = layer_table(Classifier.from_config(cfg, generator=seeded(0)))
    st.markdown("**Classifier** (the encoder + a new linear head)")
    st.dataframe(
        [
            {"layer": r["name"], "output": "×".join(map(str, r["output"])), "parameters": f"{r['params']:,}"}
            for r in clf_table
        ],
        hide_index=True,
        width="stretch",
    )
    st.metric("Classifier parameters", f"{sum(r['params'] for r in clf_table):,}")

st.header("Output size of a conv layer")
st.latex(r"\text{out} = \left\lfloor \frac{W - K + 2P}{S} \right\rfloor + 1")
c1, c2, c3, c4 = st.columns(4)
w = c1.number_input("input width W", 1, 4096, 32, key="calc_w")
k = c2.number_input("kernel K", 1, 64, 3, key="calc_k")
p = c3.number_input("padding P", 0, 64, 1, key="calc_p")
s = c4.number_input("stride S", 1, 64, 2, key="calc_s")
try:
    st.success(f"Output: **{conv_output_size(w, k, p, s)} × {conv_output_size(w, k, p, s)}**")
except ValueError as exc:
    st.warning(str(exc))
st.caption(
    "The lecture works the first layer (W=32, K=3, P=1, S=2) through aloud and says 14×14. "
    "The formula gives floor((32 − 3 + 2)/2) + 1 = floor(15.5) + 1 = 16: the code really makes "
    "16×16, as the table above shows."
)

st.header("Where does the time go?")
cost = upsampling_arithmetic(ConvAutoencoder.from_config(cfg.replace(upsample="bilinear"), seeded(0)))
st.markdown(
    f"The lecture says bilinear upsampling is the costly part of the decoder. By arithmetic it interpolates "
    f"{cost['values']:,} values per image, about {cost['upsampling_mflop']:.1f} MFLOP, "
    f"{cost['upsampling_mflop'] / cost['forward_mflop']:.0%} of the forward pass's "
    f"{cost['forward_mflop']:.1f} MFLOP. Measure one forward + backward pass of a 256-image batch on this "
    "machine, for each upsampling mode:"
)
if st.button("Measure on this machine", key="measure_time"):
    with st.spinner("Timing three decoders (in the training worker, between its batches)…"):
        try:
            state.keep(
                "block_times", computed("layer_times", {"latent_dim": cfg.latent_dim, "leak": cfg.leak}, wait=300)
            )
        except TaskError as exc:
            st.error(f"The timing failed: {exc}")
if (block_times := state.kept("block_times")) is not None:
    cols = st.columns(3)
    top_ms = 1100 * max(max(t.values()) for t in block_times.values())  # one scale for all three
    for col, (mode, times) in zip(cols, block_times.items()):
        total = sum(times.values())
        title = (
            f"{mode}: upsampling {times['upsampling'] / max(total, 1e-9):.0%} of the step"
            if times["upsampling"]
            else f"{mode}: upsamples inside its convolutions"
        )
        show_chart(col, timing_bars(times, title, top_ms), width="stretch")

with st.expander("The model's real source (cae/model.py)"):
    st.code(model_source(), language="python")
st.caption(f"PyTorch {torch.__version__}")
