"""Kernels: the 64 first-layer 3x3 RGB kernels at each stage, how far they moved, the ones that
moved most, and the differences on one colour scale."""

import streamlit as st

from cae.figures import (kernel_close_ups, kernel_difference, kernel_grid_picture, kernel_update_ranking,
                         relative_change, update_norms)
from app_pages._shared import current_run, keep_defaults, show_run_summary

st.title("First-layer kernels")
run = current_run()
if run is None:
    st.stop()
show_run_summary(run)
k = run.kernels

STAGES = {"initial": "initial (random)", "autoencoder": "after the autoencoder",
          "finetuned": "after fine-tuning", "scratch": "from scratch"}
DIFFS = {"autoencoder − initial (what unsupervised training learned)": ("autoencoder", "initial"),
         "fine-tuned − autoencoder (what the labels changed)": ("finetuned", "autoencoder"),
         "scratch − initial (what labels alone learned)": ("scratch", "initial")}
available = {name: pair for name, pair in DIFFS.items() if all(key in k for key in pair)}
moved = {name: relative_change(k[before], k[after]) for name, (after, before) in available.items()}

st.markdown("Each square is one of the 64 kernels of the first convolution (3×3, RGB), drawn like the "
            "lecture's `make_grid(nrow=8, normalize=True)`. The lecture shows them before and after training "
            "as the picture of *learning features*.")
if moved:
    sizes = "; ".join(f"{name.split(' (')[0]}: **{share:.0%}**" for name, share in moved.items())
    st.markdown(f"How far they moved, as a share of their size (‖after − before‖ / ‖before‖): {sizes}. "
                + ("That is little: side by side the grids look almost the same. The kernels keep most of their "
                   "random start, and what changed is easier to see in the close-ups and the difference maps below."
                   if max(moved.values()) < 0.3 else
                   "Enough to see in the grids; the close-ups and difference maps below show where."))

keep_defaults(kernel_norm="one scale for the whole grid")
per_kernel = st.radio("Normalisation", ["one scale for the whole grid", "each kernel on its own scale"],
                      key="kernel_norm", horizontal=True) != "one scale for the whole grid"
present = [stage for stage in STAGES if stage in k]
cols = st.columns(len(present))
for col, stage in zip(cols, present):  # plain images: sharp pixels, and on screen before any chart
    col.markdown(f"**{STAGES[stage]}**")
    col.image(kernel_grid_picture(k[stage], per_kernel), width="stretch")

if available:
    first = next(iter(available))
    after, before = available[first]
    top = update_norms(k[after] - k[before]).argsort(descending=True)[:8].tolist()
    st.subheader("The kernels that changed most")
    st.caption(f"{first.split(' (')[0]}: the 8 kernels with the largest update (#{', #'.join(map(str, top))}), "
               f"{STAGES[before]} (top) and {STAGES[after]} (bottom), all on one colour scale.")
    st.image(kernel_close_ups(k[before], k[after], top), width="stretch")

    st.subheader("What changed, on one scale")
    bound = max(float((k[a] - k[b]).abs().max()) for a, b in available.values())
    st.caption(f"Red: the weight went up; blue: it went down; the same colour means the same change in every map "
               f"(±{bound:.3f} at the ends). Each kernel shows its R, G and B 3×3 slices side by side.")
    for name, (after, before) in available.items():
        st.plotly_chart(kernel_difference(k[after] - k[before], name, bound), width="stretch")

    choice = st.selectbox("Rank kernels by how much they changed", list(available), key="rank_choice")
    after, before = available[choice]
    st.plotly_chart(kernel_update_ranking(k[after] - k[before], f"Update norm per kernel: {choice}"),
                    width="stretch")
