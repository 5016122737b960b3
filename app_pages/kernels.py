"""Kernels: the 64 first-layer 3x3 RGB kernels at each stage, their differences, and which changed most."""

import streamlit as st

from cae.figures import kernel_difference, kernel_grid_picture, kernel_update_ranking
from app_pages._shared import current_run, keep_defaults

st.title("First-layer kernels")
run = current_run()
if run is None:
    st.stop()

st.markdown("Each square is one of the 64 kernels of the first convolution (3×3, RGB), drawn like the "
            "lecture's `make_grid(nrow=8, normalize=True)`. Training from random numbers to edge- and "
            "colour-detectors is what *learning features* looks like.")
keep_defaults(kernel_norm="one scale for the whole grid")
per_kernel = st.radio("Normalisation", ["one scale for the whole grid", "each kernel on its own scale"],
                      key="kernel_norm", horizontal=True) != "one scale for the whole grid"

STAGES = {"initial": "initial (random)", "autoencoder": "after the autoencoder",
          "finetuned": "after fine-tuning", "scratch": "classifier trained from scratch"}
present = [k for k in STAGES if k in run.kernels]
cols = st.columns(len(present))
for col, stage in zip(cols, present):  # plain images: sharp pixels, and on screen before any chart
    col.markdown(f"**{STAGES[stage]}**")
    col.image(kernel_grid_picture(run.kernels[stage], per_kernel), width="stretch")

st.subheader("What changed")
st.caption("Red: the weight went up; blue: it went down. Each kernel shows its R, G and B 3×3 slices side by side.")
DIFFS = {"autoencoder − initial (what unsupervised training learned)": ("autoencoder", "initial"),
         "fine-tuned − autoencoder (what the labels changed)": ("finetuned", "autoencoder"),
         "scratch − initial (what labels alone learned)": ("scratch", "initial")}
available = {name: pair for name, pair in DIFFS.items() if all(k in run.kernels for k in pair)}
names = list(available)
for row_start in range(0, len(names), 2):
    cols = st.columns(2)
    for col, name in zip(cols, names[row_start:row_start + 2]):
        after, before = available[name]
        col.plotly_chart(kernel_difference(run.kernels[after] - run.kernels[before], name), width="stretch")

choice = st.selectbox("Rank kernels by how much they changed", names, key="rank_choice")
after, before = available[choice]
st.plotly_chart(kernel_update_ranking(run.kernels[after] - run.kernels[before], f"Update norm per kernel: {choice}"),
                width="stretch")
