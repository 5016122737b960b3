"""Plotly figures from tensors and metrics; every chart the app shows is built here, once."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from cae.config import ceil_div
from cae.evidence import wilson
from cae.kernels import distance_from_start, update_norms

# --- one theme for every chart ------------------------------------------------------------------
# Okabe & Ito's colour-blind-safe set; where series could still look alike they differ by dash or
# marker too (DASHES, SYMBOLS). Ten classes take Paul Tol's colour-blind-safe "muted" set plus grey,
# each with its own marker.
# Okabe–Ito, with its yellow (1.3:1 on white, unreadable on a projector) replaced by a dark wine
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255"]
PRETRAINED_COLOR, SCRATCH_COLOR = PALETTE[0], PALETTE[1]
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down", "pentagon", "hexagon"]
CLASS_COLORS = [
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#777777",
]
TEXT_COLOR = "#222"  # 15.9:1 on white (WCAG AA asks 4.5:1)
FONT = {"text": 14, "title": 16}  # every chart text at 1280x720 (ticks, axis titles, legends)
PRESENTER_FONT = {"text": 17, "title": 20}  # Lecture mode's presenter view, read from the back row
TICK_FONT = dict(size=FONT["text"], color=TEXT_COLOR)


def series_style(i: int) -> dict:
    """The i-th series of a chart: a colour, and from the second round of colours a dash and a marker."""
    return {
        "line": dict(color=PALETTE[i % len(PALETTE)], dash=DASHES[(i // len(PALETTE)) % len(DASHES)]),
        "marker": dict(symbol=SYMBOLS[i % len(SYMBOLS)]),
    }


def _layout(fig: go.Figure, title: str, height: int = 360, **kwargs) -> go.Figure:
    """One look for every chart: text sizes from FONT in near-black; the title at the top, its margin
    made to fit; the legend at the bottom of the figure, below the axis titles (its margin made to fit,
    so it never covers them); integer epochs where the x axis is epochs."""
    kwargs.setdefault("margin", dict(l=50, r=20, t=40, b=30))
    kwargs.setdefault("legend", dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0))
    fig.update_layout(
        title=dict(
            text=title,
            font=dict(size=FONT["title"]),
            x=0,
            xanchor="left",
            yref="container",
            y=1,
            yanchor="top",
            pad=dict(t=8, b=_title_gap(fig, FONT["text"])),
            automargin=bool(title),
        ),
        height=height,
        font=dict(size=FONT["text"], color=TEXT_COLOR),
        **kwargs,
    )
    fig.update_layout(legend_font_size=FONT["text"])
    fig.update_xaxes(tickfont=TICK_FONT, title_font=dict(size=FONT["text"]), automargin=True)
    fig.update_yaxes(tickfont=TICK_FONT, title_font=dict(size=FONT["text"]), automargin=True)
    fig.update_annotations(font_size=FONT["text"])  # subplot titles, line labels
    return fig


def _title_gap(fig: go.Figure, size: int) -> int:
    """Room under the chart title: subplot titles sit just above the plot, so leave them a line."""
    return size + 10 if any(a.yref == "paper" and (a.y or 0) >= 1 for a in fig.layout.annotations) else 6


def projector_fonts(fig: go.Figure) -> go.Figure:
    """The same chart for a projector: every text at PRESENTER_FONT sizes (Lecture mode)."""
    size = PRESENTER_FONT["text"]
    fig.update_layout(
        font=dict(size=size),
        title_font=dict(size=PRESENTER_FONT["title"]),
        legend_font=dict(size=size),
        title_pad_b=_title_gap(fig, size),
    )
    fig.update_xaxes(tickfont=dict(size=size), title_font=dict(size=size))
    fig.update_yaxes(tickfont=dict(size=size), title_font=dict(size=size))
    fig.update_annotations(font_size=size)
    fig.update_traces(textfont_size=size, selector=dict(type="bar"))
    return fig


def chart_alt(fig: go.Figure) -> str:
    """A chart in words for a screen reader: its title, what its axes measure and its series."""
    title = fig.layout.title.text or "A chart"
    axes = [a.title.text for a in (fig.layout.xaxis, fig.layout.yaxis) if a.title.text]
    names = list(dict.fromkeys(t.name for t in fig.data if t.name and t.showlegend is not False))
    return (
        f"{title}."
        + (f" Axes: {' against '.join(reversed(axes))}." if axes else "")
        + (f" Series: {', '.join(names)}." if names else "")
        + " The numbers are in the sentences beside it."
    )


def chance_line(fig: go.Figure, n_classes: int, **where) -> None:
    """A dotted line at the accuracy of guessing (100 / classes), labelled."""
    if n_classes:
        fig.add_hline(
            y=100 / n_classes,
            line=dict(color="#777", dash="dot", width=1.5),
            annotation_text=f"chance ({100 / n_classes:.0f}%)",
            annotation_position="bottom right",
            **where,
        )


# --- kernels --------------------------------------------------------------------------------


def normalised_kernels(
    kernels: torch.Tensor, per_kernel: bool = False, bounds: tuple[float, float] | None = None
) -> torch.Tensor:
    """Kernels mapped to [0,1] for display: by the grid's own min and max (the lecture's
    `normalize=True`), by each kernel's, or by fixed `bounds` (one scale for several grids)."""
    k = kernels.detach().float().cpu()
    if bounds is not None:
        lo, hi = torch.tensor(bounds[0]), torch.tensor(bounds[1])
    elif per_kernel:
        lo, hi = k.amin(dim=(1, 2, 3), keepdim=True), k.amax(dim=(1, 2, 3), keepdim=True)
    else:
        lo, hi = k.min(), k.max()
    return ((k - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1)


def kernel_grid_image(kernels: torch.Tensor, per_kernel: bool = False, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """(64,3,3,3) -> uint8 RGB grid like `make_grid(nrow=8, normalize=True)`: one min-max
    normalisation over the whole grid by default, or one per kernel."""
    k = normalised_kernels(kernels, per_kernel)
    n, _, h, w = k.shape
    rows = ceil_div(n, nrow)
    grid = torch.ones(3, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, top : top + h, left : left + w] = k[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def kernel_grid_picture(kernels: torch.Tensor, per_kernel: bool = False, scale: int = 10) -> np.ndarray:
    """The kernel grid upscaled with sharp pixels (nearest neighbour), ready to show as an image."""
    grid = kernel_grid_image(kernels, per_kernel)
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)


def kernel_sheet(
    kernels: torch.Tensor, bounds: tuple[float, float] | None = None, scale: int = 16, gap: int = 2, nrow: int = 8
) -> np.ndarray:
    """The kernels for a projector: each 3x3 kernel enlarged `scale` times with crisp pixels, thin
    white separators of `gap` pixels, on one colour scale (`bounds`) when given."""
    k = (normalised_kernels(kernels, bounds=bounds).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    n, h, w, _ = k.shape
    side_h, side_w, rows = h * scale, w * scale, ceil_div(n, nrow)
    sheet = np.full((rows * (side_h + gap) + gap, nrow * (side_w + gap) + gap, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = gap + r * (side_h + gap), gap + c * (side_w + gap)
        sheet[top : top + side_h, left : left + side_w] = k[i].repeat(scale, axis=0).repeat(scale, axis=1)
    return sheet


def kernel_distance_chart(
    lines: dict[str, list[tuple[int, float]]], chosen: int | None = None, kernels: dict[str, torch.Tensor] | None = None
) -> go.Figure:
    """Mean distance from the random start per epoch, the three phases on one axis; with `chosen`,
    that one kernel's distance as dotted lines beside the means."""
    fig = go.Figure()
    colors = {"autoencoder": PALETTE[2], "fine-tuned classifier": PRETRAINED_COLOR, "scratch classifier": SCRATCH_COLOR}
    for name, points in lines.items():
        fig.add_scatter(
            x=[e for e, _ in points],
            y=[d for _, d in points],
            name=f"{name}: mean of 64",
            mode="lines+markers",
            line=dict(color=colors.get(name)),
        )
    if chosen is not None and kernels is not None:
        one = {k: v[:, chosen : chosen + 1] if v.dim() == 5 else v[chosen : chosen + 1] for k, v in kernels.items()}
        for name, points in distance_from_start(one).items():
            fig.add_scatter(
                x=[e for e, _ in points],
                y=[d for _, d in points],
                name=f"{name}: kernel {chosen}",
                mode="lines",
                line=dict(color=colors.get(name), dash="dot"),
            )
    fig.update_xaxes(
        title="epoch of the phase", dtick=1 if max((len(p) for p in lines.values()), default=0) <= 13 else None
    )
    fig.update_yaxes(title="‖k − k₀‖₂", rangemode="tozero")
    return _layout(fig, "Distance from the random start", height=360)


def kernel_slices(kernel: torch.Tensor, title: str) -> go.Figure:
    """One 3x3 RGB kernel as its R, G and B slices with the weights written in, on one diverging scale."""
    k = kernel.detach().float().cpu()
    bound = float(k.abs().max()) or 1.0
    fig = make_subplots(rows=1, cols=3, subplot_titles=("R", "G", "B"), horizontal_spacing=0.04)
    for ch in range(3):
        fig.add_trace(
            go.Heatmap(
                z=k[ch].tolist(),
                zmin=-bound,
                zmax=bound,
                colorscale="RdBu_r",
                zmid=0,
                text=[[f"{v:+.2f}" for v in row] for row in k[ch].tolist()],
                texttemplate="%{text}",
                textfont=dict(size=FONT["text"]),
                showscale=ch == 2,
                hovertemplate="%{z:.4f}<extra></extra>",
            ),
            row=1,
            col=ch + 1,
        )
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False)
    return _layout(fig, title, height=260, margin=dict(l=5, r=5, t=70, b=5))


def kernel_difference(diff: torch.Tensor, title: str, bound: float | None = None) -> go.Figure:
    """A signed difference (64,3,3,3) as a diverging heat map: each kernel shows its R, G and B
    3x3 slices side by side, red for increases and blue for decreases. Pass one `bound` to
    several maps so their colours compare."""
    d = diff.detach().float().cpu().numpy()
    n, c, h, w = d.shape
    cell_w, cell_h, nrow = c * (w + 1) + 1, h + 2, 8
    z = np.full(((n // nrow) * cell_h, nrow * cell_w), np.nan)
    text = np.full(z.shape, "", dtype=object)
    for i in range(n):
        r, col = divmod(i, nrow)
        for ch in range(c):
            top, left = r * cell_h + 1, col * cell_w + 1 + ch * (w + 1)
            z[top : top + h, left : left + w] = d[i, ch]
            text[top : top + h, left : left + w] = f"kernel {i}, {'RGB'[ch]}"
    bound = bound or float(np.nanmax(np.abs(z))) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            text=text,
            colorscale="RdBu_r",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            hovertemplate="%{text}<br>change %{z:.4f}<extra></extra>",
            colorbar=dict(title="change"),
        )
    )
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    return _layout(fig, title, height=460, margin=dict(l=5, r=5, t=50, b=5))


def kernel_close_ups(before: torch.Tensor, after: torch.Tensor, indices: list[int], scale: int = 40) -> np.ndarray:
    """The chosen kernels large, before (top row) and after (bottom row), on ONE colour scale (the
    min and max of both together), so what changed is what you see."""
    b, a = before[indices].float(), after[indices].float()
    lo, hi = torch.minimum(b.min(), a.min()), torch.maximum(b.max(), a.max())
    both = ((torch.cat([b, a]) - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1)
    n, _, h, w = b.shape
    pad = 1
    grid = torch.ones(3, 2 * (h + pad) + pad, n * (w + pad) + pad)
    for i in range(2 * n):
        r, c = divmod(i, n)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = both[i]
    picture = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return picture.repeat(scale, axis=0).repeat(scale, axis=1)


def kernel_update_ranking(diff: torch.Tensor, title: str) -> go.Figure:
    """Kernels ranked by how much they changed, largest first, with the values on hover."""
    norms = update_norms(diff)
    order = torch.argsort(norms, descending=True).tolist()
    fig = go.Figure(
        go.Bar(
            x=[f"#{i}" for i in order],
            y=norms[order].tolist(),
            hovertemplate="kernel %{x}<br>update norm %{y:.4f}<extra></extra>",
        )
    )
    fig.update_xaxes(title="kernel (ranked)", type="category")
    fig.update_yaxes(title="‖after − before‖₂")
    return _layout(fig, title, height=320)


# --- training curves ------------------------------------------------------------------------


def autoencoder_curves(runs: dict[str, list[dict]]) -> go.Figure:
    """Train and test MSE per epoch for one or more runs ({label: autoencoder history}); runs
    pretrained contrastively (no MSE) draw their NT-Xent loss when no run has an MSE, else are left out."""
    rebuilt = {label: rows for label, rows in runs.items() if rows and "train_mse" in rows[0]}
    if not rebuilt and any(runs.values()):
        return contrastive_curves(runs)
    fig = go.Figure()
    for i, (label, rows) in enumerate(rebuilt.items()):
        color = PALETTE[i % len(PALETTE)]
        epochs = [r["epoch"] for r in rows]
        fig.add_scatter(
            x=epochs,
            y=[r["train_mse"] for r in rows],
            name=f"{label}: train",
            line=dict(color=color),
            mode="lines+markers",
        )
        fig.add_scatter(
            x=epochs,
            y=[r["test_mse"] for r in rows],
            name=f"{label}: test",
            line=dict(color=color, dash="dash"),
            mode="lines+markers",
        )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="MSE (true mean per pixel)")
    return _layout(fig, "Autoencoder reconstruction loss")


def contrastive_curves(runs: dict[str, list[dict]]) -> go.Figure:
    """The contrastive objective's training loss (NT-Xent) per epoch ({label: pretraining history})."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(runs.items()):
        fig.add_scatter(
            x=[r["epoch"] for r in rows],
            y=[r["train_loss"] for r in rows],
            name=f"{label}: train",
            line=dict(color=PALETTE[i % len(PALETTE)]),
            mode="lines+markers",
        )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="NT-Xent loss (train)")
    return _layout(fig, "Contrastive pretraining loss (no decoder, no reconstruction)")


def classifier_curves(runs: dict[str, dict]) -> go.Figure:
    """Training loss and test accuracy per epoch, pretrained (solid) and scratch (dotted),
    for one or more runs ({label: metrics})."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (cross-entropy)", "test accuracy %"))
    for i, (label, m) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        for rows, kind, dash in (
            (m.get("classifier") or [], "pretrained", "solid"),
            ((m.get("scratch") or {}).get("classifier") or [], "scratch", "dot"),
        ):
            if not rows:
                continue
            epochs = [r["epoch"] for r in rows]
            name = (
                f"{label}: {kind}"
                if len(runs) > 1
                else ("fine-tuned from the autoencoder" if kind == "pretrained" else "from scratch (random init)")
            )
            line = dict(
                color=color if len(runs) > 1 else (PRETRAINED_COLOR if kind == "pretrained" else SCRATCH_COLOR),
                dash=dash,
            )
            fig.add_scatter(
                x=epochs, y=[r["train_loss"] for r in rows], name=name, line=line, legendgroup=name, row=1, col=1
            )
            fig.add_scatter(
                x=epochs,
                y=[r["test_acc"] for r in rows],
                name=name,
                line=line,
                legendgroup=name,
                showlegend=False,
                row=1,
                col=2,
            )
    fig.update_xaxes(title="epoch", dtick=1 if max_epochs(runs) <= 12 else None)
    first = next(iter(runs.values()), {})
    chance_line(fig, len((first.get("dataset") or {}).get("classes") or []), row=1, col=2)
    return _layout(fig, "Classifier: pretrained encoder vs random init", height=400)


def max_epochs(runs: dict[str, dict]) -> int:
    return max((len(m.get("classifier") or []) for m in runs.values()), default=0)


LIVE_STYLE = {
    "autoencoder": (PALETTE[2], "solid"),
    "classifier": (PRETRAINED_COLOR, "solid"),
    "scratch": (SCRATCH_COLOR, "dash"),
}


def live_loss(points: list[tuple[str, float, float]]) -> go.Figure:
    """A job's running loss, (phase, fractional epoch, loss) points, in two panels: the
    autoencoder's MSE, and the classifiers' cross-entropy (fine-tuned solid, scratch dashed)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("autoencoder: reconstruction MSE", "classifier: cross-entropy"))
    names = {"autoencoder": "autoencoder", "classifier": "fine-tuned", "scratch": "scratch"}
    for phase in dict.fromkeys(p for p, _, _ in points):
        xs = [(x, y) for p, x, y in points if p == phase]
        color, dash = LIVE_STYLE.get(phase, (PALETTE[4], "dot"))
        fig.add_scatter(
            x=[x for x, _ in xs],
            y=[y for _, y in xs],
            name=names.get(phase, phase),
            mode="lines",
            line=dict(color=color, dash=dash, width=2.5),
            row=1,
            col=1 if phase == "autoencoder" else 2,
        )
    last = max((x for _, x, _ in points), default=1)
    fig.update_xaxes(title="epoch", dtick=1 if last <= 12 else None, rangemode="tozero")
    return _layout(fig, "Live training loss", height=320)


# --- classifier results ---------------------------------------------------------------------


def per_class_bars(
    classes: list[str], pretrained: dict | None, scratch: dict | None, counts: dict[str, int] | None = None
) -> go.Figure:
    """Per-class test accuracy, pretrained vs scratch, grouped bars; with the test images per class
    (`counts`), each bar carries its 95% Wilson interval."""
    fig = go.Figure()
    for label, values, color in (("pretrained", pretrained, PRETRAINED_COLOR), ("scratch", scratch, SCRATCH_COLOR)):
        if values:
            ys = [values.get(c, 0) for c in classes]
            bounds = [wilson(y, counts.get(c, 0)) for c, y in zip(classes, ys)] if counts else None
            error = (
                dict(
                    type="data",
                    symmetric=False,
                    array=[hi - y for (_, hi), y in zip(bounds, ys)],
                    arrayminus=[y - lo for (lo, _), y in zip(bounds, ys)],
                    color="#444",
                )
                if bounds
                else None
            )
            fig.add_bar(
                x=classes,
                y=ys,
                name=label,
                marker_color=color,
                error_y=error,
                customdata=[counts.get(c, 0) for c in classes] if counts else None,
                hovertemplate="%{x}: %{y:.1f}%"
                + (" of %{customdata} images" if counts else "")
                + "<extra>"
                + label
                + "</extra>",
            )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="test accuracy %", range=[0, 100])
    chance_line(fig, len(classes))
    return _layout(fig, "Per-class test accuracy")


def confusion_heatmap(confusion: list[list[int]], classes: list[str], title: str = "Confusion matrix") -> go.Figure:
    """Rows: the true class; columns: the predicted class; counts on hover."""
    fig = go.Figure(
        go.Heatmap(
            z=confusion,
            x=classes,
            y=classes,
            colorscale="Blues",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class")
    return _layout(fig, title, height=450)


def probability_bars(probs: list[float], classes: list[str], truth: int | None = None) -> go.Figure:
    """Class probabilities as horizontal bars, the prediction dark; the true class (when known)
    marked in words ("✓ true class" or "✗ true class") and in colour (bluish green or vermillion)."""
    best = int(np.argmax(probs))
    colors = [PRETRAINED_COLOR if i == best else "#a6c8e6" for i in range(len(classes))]
    labels = list(classes)
    if truth is not None:
        colors[truth] = PALETTE[2] if truth == best else PALETTE[1]
        labels[truth] = f"{'✓' if truth == best else '✗'} {classes[truth]} (true)"
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=[100 * p for p in probs],
            marker_color=colors,
            orientation="h",
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
        )
    )
    fig.update_xaxes(title="probability %", range=[0, 100])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "What the classifier thinks it is", height=300, margin=dict(l=90, r=20, t=40, b=40))


# --- images ---------------------------------------------------------------------------------


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(N,3,H,W) float in [0,1] or uint8 -> (N,H,W,3) uint8."""
    x = images.detach().cpu()
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def picture(image: torch.Tensor, scale: int = 3) -> np.ndarray:
    """One (3,H,W) image, uint8 or float in [0,1], enlarged with sharp pixels for `st.image`."""
    return to_uint8_hwc(image[None])[0].repeat(scale, axis=0).repeat(scale, axis=1)


def image_strip(rows: list[torch.Tensor], title: str, pad: int = 2) -> go.Figure:
    """Rows of equally sized images stacked into one picture (e.g. originals over reconstructions)."""
    arrays = [to_uint8_hwc(r) for r in rows]
    n, h, w = arrays[0].shape[:3]
    canvas = np.full((len(arrays) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, arr in enumerate(arrays):
        for i in range(n):
            top, left = pad + r * (h + pad), pad + i * (w + pad)
            canvas[top : top + h, left : left + w] = arr[i]
    fig = go.Figure(go.Image(z=canvas, hoverinfo="skip"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=90 + 75 * len(rows), margin=dict(l=5, r=5, t=40, b=5))


def sample_grid(images: torch.Tensor, labels: torch.Tensor, classes: list[str], per_class: int = 8) -> go.Figure:
    """A few images of every class, one row per class."""
    rows = []
    for c in range(len(classes)):
        idx = (labels == c).nonzero().flatten()[:per_class]
        picked = images[idx]
        if len(picked) < per_class:
            picked = torch.cat(
                [picked, torch.full((per_class - len(picked), *images.shape[1:]), 255, dtype=images.dtype)]
            )
        rows.append(picked)
    fig = image_strip(rows, "Sample images, one row per class")
    h, pad = images.shape[2], 2
    fig.update_yaxes(
        visible=True,
        showgrid=False,
        zeroline=False,
        ticks="",
        tickvals=[pad + r * (h + pad) + h / 2 for r in range(len(classes))],
        ticktext=list(classes),
    )
    fig.update_layout(height=60 + 62 * len(classes), margin=dict(l=90, r=5, t=40, b=5))
    return fig


def reconstruction_panel(original: torch.Tensor, reconstruction: torch.Tensor) -> go.Figure:
    """One image: original, reconstruction and the absolute error map (mean over channels)."""
    error = (reconstruction.float() - original.float()).abs().mean(0).cpu().numpy()
    fig = make_subplots(rows=1, cols=3, subplot_titles=("original", "reconstruction", "|error|"))
    fig.add_trace(go.Image(z=to_uint8_hwc(original[None])[0], hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Image(z=to_uint8_hwc(reconstruction[None])[0], hoverinfo="skip"), row=1, col=2)
    fig.add_trace(
        go.Heatmap(
            z=error,
            colorscale="Viridis",
            zmin=0,
            zmax=max(float(error.max()), 1e-6),
            colorbar=dict(title="|err|"),
            hovertemplate="error %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=3,
    )  # sequential: dark = small error, bright = large
    fig.update_yaxes(autorange="reversed", scaleanchor="x3", constrain="domain", row=1, col=3)  # square pixels
    fig.update_xaxes(constrain="domain", row=1, col=3)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "Reconstruction", height=300, margin=dict(l=5, r=5, t=60, b=5))


# --- architecture and timing ----------------------------------------------------------------

BLOCK_COLORS = {
    "conv_encoder": "#4c78a8",
    "fc_encoder": "#72b7b2",
    "fc_decoder": "#f58518",
    "conv_decoder": "#e45756",
    "head": "#54a24b",
    "(forward)": "#bab0ac",
}


def architecture_diagram(table: list[dict]) -> go.Figure:
    """The layer table as an hourglass: one bar per step, its height the size of the tensor it
    outputs (log scale), labelled with the shape; upsampling steps are named as such."""
    shown = [r for r in table if r["params"] or r["block"] == "(forward)" or "Upsample" in r["layer"]]
    fig = go.Figure()
    for i, r in enumerate(shown):
        size = int(np.prod(r["output"]))
        step = "upsample ×2" if "Upsample" in r["layer"] else r["name"]
        fig.add_bar(
            x=[i],
            y=[size],
            marker_color=BLOCK_COLORS.get(r["block"], "#999"),
            name=r["block"],
            showlegend=r["block"] not in [s["block"] for s in shown[:i]],
            text=["×".join(map(str, r["output"]))],
            textposition="outside",
            textfont=dict(size=FONT["text"]),
            hovertext=f"{step}: {r['layer']}<br>output {r['output']} = {size:,} numbers<br>{r['params']:,} parameters",
            hoverinfo="text",
        )
    labels = ["upsample ×2" if "Upsample" in r["layer"] else r["name"] for r in shown]
    fig.update_xaxes(tickvals=list(range(len(shown))), ticktext=labels, tickangle=-45)
    fig.update_yaxes(type="log", title="numbers per image (log)", range=[2.5, 5], dtick=1)  # no small minor labels
    return _layout(fig, "Architecture: the size of each step's output (the hourglass)", height=420, bargap=0.15)


def timing_bars(seconds: dict[str, float], title: str, top_ms: float | None = None) -> go.Figure:
    """Where the time of one training step goes, per kind of layer, in milliseconds; pass one
    `top_ms` to several charts so they share a scale. A step that does not exist (no separate
    upsampling in a transposed-conv decoder) is left out."""
    names = [n for n in seconds if not (n == "upsampling" and seconds[n] == 0)]
    fig = go.Figure(
        go.Bar(x=names, y=[1000 * seconds[n] for n in names], hovertemplate="%{x}: %{y:.1f} ms<extra></extra>")
    )
    fig.update_yaxes(title="ms (forward + backward)", range=[0, top_ms] if top_ms else None)
    return _layout(fig, title, height=330)


# --- latent space ---------------------------------------------------------------------------


def latent_map(
    xy: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    classes: list[str],
    chosen: int | None = None,
    extra: tuple[float, float, str] | None = None,
) -> go.Figure:
    """Test images' codes in 2-D (PCA), one colour per class; each point carries its test image
    number (customdata) for hover and click. `chosen`: a map position to ring; `extra`: (x, y,
    label) of a new image placed with the same projection."""
    fig = go.Figure()
    for c, name in enumerate(classes):
        where = (labels == c).nonzero().flatten()
        if len(where):
            fig.add_scatter(
                x=xy[where, 0].tolist(),
                y=xy[where, 1].tolist(),
                mode="markers",
                name=name,
                customdata=index[where].tolist(),
                marker=dict(size=7, color=CLASS_COLORS[c % len(CLASS_COLORS)], symbol=SYMBOLS[c % len(SYMBOLS)]),
                hovertemplate=f"{name}, test image %{{customdata}}<extra></extra>",
            )
    if chosen is not None:
        fig.add_scatter(
            x=[float(xy[chosen, 0])],
            y=[float(xy[chosen, 1])],
            mode="markers",
            name="chosen",
            marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color="black", width=3)),
            hoverinfo="skip",
        )
    if extra is not None:
        fig.add_scatter(
            x=[extra[0]],
            y=[extra[1]],
            mode="markers+text",
            name=extra[2],
            text=[extra[2]],
            textposition="top center",
            marker=dict(size=16, symbol="x", color="black"),
            hoverinfo="skip",
        )
    fig.update_xaxes(title="first principal axis of the codes")
    fig.update_yaxes(title="second principal axis")
    return _layout(fig, "The code of each test image, in 2-D", height=520, clickmode="event+select", dragmode="pan")


def representation_curves(
    knn: dict[str, list[tuple[int, float]]],
    mse: dict[str, list[tuple[int, float]]],
    pixels_knn: float | None,
    n_classes: int,
) -> go.Figure:
    """The code's k-NN accuracy per autoencoder epoch (epoch 0: the initial encoder) beside the test
    MSE, for one or more runs; the raw pixels' k-NN accuracy as a dashed line."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("k-NN accuracy of the code (%)", "test MSE"))
    for i, label in enumerate(dict.fromkeys([*knn, *mse])):
        color = PALETTE[i % len(PALETTE)]
        for col, points in ((1, knn.get(label)), (2, mse.get(label))):
            if points:
                fig.add_scatter(
                    x=[e for e, _ in points],
                    y=[v for _, v in points],
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1 or not knn.get(label),
                    mode="lines+markers",
                    line=dict(color=color),
                    row=1,
                    col=col,
                )
    if pixels_knn is not None:
        fig.add_hline(
            y=pixels_knn,
            line=dict(color="#444", dash="dash", width=1.5),
            row=1,
            col=1,
            annotation_text=f"raw pixels ({pixels_knn:.1f}%)",
            annotation_position="top left",
        )
    chance_line(fig, n_classes, row=1, col=1)
    fig.update_xaxes(title="autoencoder epoch", rangemode="tozero")
    return _layout(fig, "Is the code getting better as the reconstruction does?", height=380)


def _spread_trace(
    fig: go.Figure,
    groups: dict,
    measure: str,
    name: str,
    color: str,
    symbol: str = "circle",
    dash: str = "solid",
    **where,
) -> None:
    xs = [x for x, g in groups.items() if measure in g]
    if not xs:
        return
    mean = [groups[x][measure]["mean"] for x in xs]
    fig.add_scatter(
        x=xs,
        y=mean,
        name=name,
        mode="lines+markers",
        line=dict(color=color, dash=dash),
        marker=dict(symbol=symbol, size=8),
        error_y=dict(
            type="data",
            symmetric=False,
            array=[groups[x][measure]["high"] - m for x, m in zip(xs, mean)],
            arrayminus=[m - groups[x][measure]["low"] for x, m in zip(xs, mean)],
        ),
        **where,
    )


def latent_size_chart(groups: dict, users: list[dict], marked: dict | None) -> go.Figure:
    """Test MSE and accuracy (the code's k-NN, fine-tuned) against latent size: the shipped sweep
    (bars: the seeds' range where there are several), the user's fitting runs (hollow), and the run
    viewed (a ring)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test MSE (lower is better)", "test accuracy %"))
    _spread_trace(fig, groups, "test_mse", "sweep: test MSE", PALETTE[2], row=1, col=1)
    _spread_trace(fig, groups, "knn", "sweep: k-NN of the code", SCRATCH_COLOR, "square", "dash", row=1, col=2)
    _spread_trace(fig, groups, "test_acc", "sweep: fine-tuned classifier", PRETRAINED_COLOR, row=1, col=2)
    for points, name, marker in (
        (users, "your runs", dict(size=10, symbol="circle-open", color="#333")),
        (
            [marked] if marked else [],
            "the run viewed",
            dict(size=18, symbol="circle-open", color="black", line=dict(width=3)),
        ),
    ):
        if not points:
            continue
        xs = [p["latent_dim"] for p in points]
        fig.add_scatter(
            x=xs,
            y=[p["test_mse"] for p in points],
            mode="markers",
            name=name,
            legendgroup=name,
            marker=marker,
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=xs,
            y=[p["test_acc"] for p in points],
            mode="markers",
            name=name,
            legendgroup=name,
            showlegend=False,
            marker=marker,
            row=1,
            col=2,
        )
    fig.update_xaxes(title="latent size (code length)", type="log", dtick=np.log10(4), tickformat="d")
    return _layout(fig, "Latent size: reconstruction against representation (5 + 5 epochs)", height=380)


def leak_chart(groups: dict, layers: dict[str, str]) -> go.Figure:
    """Per leak value (the LeakyReLU slope; 0 is ReLU): accuracies with the seeds' range, and the
    share of dead units per encoder layer."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy %", "dead units (% of the layer)"))
    _spread_trace(fig, groups, "test_acc", "fine-tuned classifier", PRETRAINED_COLOR, row=1, col=1)
    _spread_trace(fig, groups, "knn", "k-NN of the code", SCRATCH_COLOR, "square", "dash", row=1, col=1)
    for i, (layer, label) in enumerate(layers.items()):  # the layers take the colours the accuracies do not
        scaled = {
            x: {
                "dead": {
                    k: ([100 * u for u in v] if k == "values" else 100 * v) if k != "n" else v
                    for k, v in g[f"dead {layer}"].items()
                }
            }
            for x, g in groups.items()
            if f"dead {layer}" in g
        }
        _spread_trace(
            fig,
            scaled,
            "dead",
            label,
            PALETTE[2 + i % (len(PALETTE) - 2)],
            SYMBOLS[(i + 2) % len(SYMBOLS)],
            DASHES[i % len(DASHES)],
            row=1,
            col=2,
        )
    fig.update_xaxes(title="leak (negative slope)", tickvals=list(groups))
    return _layout(fig, "Leak: accuracy and dead units (3 seeds each; bars span the seeds)", height=380)


def activity_chart(activity: dict[str, dict], layers: dict[str, str], value_range: tuple[float, float]) -> go.Figure:
    """Histograms of every encoder layer's activation values (after the LeakyReLU), as the share of
    values per bin; the legend gives each layer's dead units."""
    fig = go.Figure()
    for i, (layer, a) in enumerate(activity.items()):
        counts = np.asarray(a["counts"], dtype=float)
        edges = np.linspace(*value_range, len(counts) + 1)
        fig.add_scatter(
            x=(edges[:-1] + edges[1:]) / 2,
            y=100 * counts / max(counts.sum(), 1),
            mode="lines",
            line=dict(color=PALETTE[i % len(PALETTE)], shape="hvh"),
            name=f"{layers.get(layer, layer)}: {a['dead']:.0%} dead",
        )
    fig.add_vline(x=0, line=dict(color="#777", dash="dot"))
    fig.update_xaxes(
        title=f"activation value (values beyond {value_range[0]:g} and {value_range[1]:g} are counted at the ends)"
    )
    fig.update_yaxes(title="% of values", type="log", dtick=1)
    return _layout(fig, "What the encoder's units output on the test images", height=380)


def kernel_sheet_figure(
    sheet: np.ndarray, scale: int = 16, gap: int = 2, chosen: int | None = None, nrow: int = 8
) -> go.Figure:
    """A `kernel_sheet` picture as a chart whose kernels can be clicked: an invisible square marker
    over each kernel carries its number (customdata); the chosen kernel is outlined."""
    side = 3 * scale
    n = ((sheet.shape[0] - gap) // (side + gap)) * nrow
    centres = [
        (gap + (i % nrow) * (side + gap) + side / 2, gap + (i // nrow) * (side + gap) + side / 2) for i in range(n)
    ]
    fig = go.Figure(go.Image(z=sheet, hoverinfo="skip"))
    fig.add_scatter(
        x=[x for x, _ in centres],
        y=[y for _, y in centres],
        customdata=list(range(n)),
        mode="markers",
        marker=dict(symbol="square", size=side * 0.8, color="rgba(0,0,0,0)"),
        showlegend=False,
        hovertemplate="kernel %{customdata}<extra></extra>",
    )
    if chosen is not None:
        x, y = centres[chosen]
        fig.add_shape(
            type="rect",
            x0=x - side / 2 - 1,
            x1=x + side / 2 + 1,
            y0=y - side / 2 - 1,
            y1=y + side / 2 + 1,
            line=dict(color="black", width=3),
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(
        fig, "", height=sheet.shape[0] + 20, margin=dict(l=0, r=0, t=10, b=10), clickmode="event+select", dragmode=False
    )
