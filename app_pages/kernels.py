"""Kernels: the 64 first-layer 3x3 RGB kernels at each stage, how far they moved, the ones that
moved most, and the differences on one colour scale."""

import streamlit as st
import torch

from app_pages import state
from app_pages._shared import (
    click_chart_key,
    clicked_point,
    current_run,
    show_chart,
    show_run_summary,
    typed_instead_of_clicked,
)
from cae.figures import (
    kernel_close_ups,
    kernel_difference,
    kernel_distance_chart,
    kernel_grid_picture,
    kernel_sheet,
    kernel_sheet_figure,
    kernel_slices,
    kernel_update_ranking,
)
from cae.kernels import distance_from_start, kernel_timeline, relative_change, update_norms


def timeline(k: dict) -> None:
    """The kernels after every epoch on one colour scale, a slider (or Play) through them, one
    kernel's slices, and the distance from the random start per epoch."""
    steps = kernel_timeline(k)
    every = torch.stack([t for _, t in steps])
    bounds = (float(every.min()), float(every.max()))
    last = len(steps) - 1
    at = min(state.widget("kernel_step", last), last)
    if state.widget("kernel_playing"):
        if state.kept("kernel_timer_on"):  # a tick of the timer: one snapshot on
            at += 1
        elif at == last:  # Play pressed at the end: from the start
            at = 0
        if at >= last:  # the end: stop
            at = last
            state.set_widget("kernel_playing", False)
    state.set_widget("kernel_step", at)
    sheet_key = click_chart_key("kernel_sheet")
    if (number := clicked_point(sheet_key)) is not None:
        state.set_widget("kernel_pick", number)
    state.widget_defaults(kernel_pick=0)
    step = st.slider(
        "Snapshot",
        0,
        len(steps) - 1,
        key="kernel_step",
        help="0 is the random start; then every epoch of autoencoder training, then of fine-tuning.",
    )
    play, pick = st.columns([1, 3])
    playing = play.toggle("Play", key="kernel_playing", help="Step through the snapshots, about one per second.")
    if playing != bool(state.kept("kernel_timer_on")):
        # the fragment's timer is decided by a run of the whole page: start or stop it now
        st.rerun(scope="app")
    chosen = pick.number_input(
        "Kernel (or click one)", 0, 63, key="kernel_pick", on_change=typed_instead_of_clicked, args=("kernel_sheet",)
    )
    name, kernels = steps[step]
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{name}** ({step} of {len(steps) - 1}), all snapshots on one colour scale")
        show_chart(
            st,
            kernel_sheet_figure(kernel_sheet(kernels, bounds), chosen=chosen),
            width="stretch",
            alt=f"The 64 first-layer kernels at snapshot {step} ({name}); click one, or type its number, "
            "to see its weights",
            on_select="rerun",
            selection_mode="points",
            key=sheet_key,
        )
    with right:
        show_chart(st, kernel_slices(kernels[chosen], f"Kernel {chosen}: its R, G and B weights"), width="stretch")
        lines = distance_from_start(k)
        if lines:
            show_chart(st, kernel_distance_chart(lines, chosen, k), width="stretch")
        else:
            st.caption(
                "This run was saved before runs kept the kernels of every epoch, so the timeline has its "
                "three moments only; a run trained now keeps them all."
            )


st.title("First-layer kernels")
run = current_run()
if run is None:
    st.stop()
show_run_summary(run)
k = run.kernels

STAGES = {
    "initial": "initial (random)",
    "autoencoder": "after the autoencoder",
    "finetuned": "after fine-tuning",
    "scratch": "from scratch",
}
DIFFS = {
    "autoencoder − initial (what unsupervised training learned)": ("autoencoder", "initial"),
    "fine-tuned − autoencoder (what the labels changed)": ("finetuned", "autoencoder"),
    "scratch − initial (what labels alone learned)": ("scratch", "initial"),
}
available = {name: pair for name, pair in DIFFS.items() if all(key in k for key in pair)}
moved = {name: relative_change(k[before], k[after]) for name, (after, before) in available.items()}

st.markdown(
    "Each square is one of the 64 kernels of the first convolution (3×3, RGB), drawn like the "
    "lecture's `make_grid(nrow=8, normalize=True)`. The lecture shows them before and after training "
    "as the picture of *learning features*."
)
if moved:
    sizes = "; ".join(f"{name.split(' (')[0]}: **{share:.0%}**" for name, share in moved.items())
    st.markdown(
        f"How far they moved, as a share of their size (‖after − before‖ / ‖before‖): {sizes}. "
        + (
            "That is little: side by side the grids look almost the same. The kernels keep most of their "
            "random start, and what changed is easier to see in the close-ups and the difference maps below."
            if max(moved.values()) < 0.3
            else "Enough to see in the grids; the close-ups and difference maps below show where."
        )
    )

state.widget_defaults(kernel_norm="one scale for the whole grid")
per_kernel = (
    st.radio(
        "Normalisation",
        ["one scale for the whole grid", "each kernel on its own scale"],
        key="kernel_norm",
        horizontal=True,
        persist_state="session",
    )
    != "one scale for the whole grid"
)
present = [stage for stage in STAGES if stage in k]
cols = st.columns(len(present))
for col, stage in zip(cols, present):  # plain images: sharp pixels, and on screen before any chart
    col.markdown(f"**{STAGES[stage]}**")
    col.image(
        kernel_grid_picture(k[stage], per_kernel),
        width="stretch",
        alt=f"The 64 first-layer kernels {STAGES[stage]}, as an 8 by 8 grid of 3x3 colour squares",
    )

st.header("Kernels through time")
state.keep("kernel_timer_on", bool(state.widget("kernel_playing")))
st.fragment(timeline, run_every=1.0 if state.kept("kernel_timer_on") else None)(k)

if available:
    first = next(iter(available))
    after, before = available[first]
    top = update_norms(k[after] - k[before]).argsort(descending=True)[:8].tolist()
    st.header("The kernels that changed most")
    st.caption(
        f"{first.split(' (')[0]}: the 8 kernels with the largest update (#{', #'.join(map(str, top))}), "
        f"{STAGES[before]} (top) and {STAGES[after]} (bottom), all on one colour scale."
    )
    st.image(
        kernel_close_ups(k[before], k[after], top),
        width="stretch",
        alt=f"Kernels {', '.join(map(str, top))} enlarged: {STAGES[before]} above, {STAGES[after]} below",
    )

    st.header("What changed, on one scale")
    bound = max(float((k[a] - k[b]).abs().max()) for a, b in available.values())
    st.caption(
        f"Red: the weight went up; blue: it went down; the same colour means the same change in every map "
        f"(±{bound:.3f} at the ends). Each kernel shows its R, G and B 3×3 slices side by side."
    )
    for name, (after, before) in available.items():
        lecture, heat = st.columns([1, 2])
        lecture.image(
            kernel_grid_picture(k[after] - k[before], scale=8),
            width="stretch",
            alt=f"{name}: the difference of every kernel, normalised like make_grid",
            caption="As the lecture drew it: make_grid(after − before, normalize=True); grey is no change "
            "only if the changes are symmetric, so read the signs on the right.",
        )
        show_chart(heat, kernel_difference(k[after] - k[before], name, bound), width="stretch")

    choice = st.selectbox("Rank kernels by how much they changed", list(available), key="rank_choice")
    after, before = available[choice]
    show_chart(st, kernel_update_ranking(k[after] - k[before], f"Update norm per kernel: {choice}"), width="stretch")
