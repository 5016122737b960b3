"""Plotly figures from tensors and metrics; every chart the app shows is built here, once."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

PRETRAINED_COLOR, SCRATCH_COLOR = "#1f77b4", "#ff7f0e"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _layout(fig: go.Figure, title: str, height: int = 360, **kwargs) -> go.Figure:
    kwargs.setdefault("margin", dict(l=40, r=20, t=50, b=40))
    fig.update_layout(title=title, height=height, **kwargs)
    return fig


# --- kernels --------------------------------------------------------------------------------

def kernel_grid_image(kernels: torch.Tensor, per_kernel: bool = False, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """(64,3,3,3) -> uint8 RGB grid like `make_grid(nrow=8, normalize=True)`: one min-max
    normalisation over the whole grid by default, or one per kernel."""
    k = kernels.detach().float().cpu()
    if per_kernel:
        lo = k.amin(dim=(1, 2, 3), keepdim=True)
        hi = k.amax(dim=(1, 2, 3), keepdim=True)
    else:
        lo, hi = k.min(), k.max()
    k = ((k - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1)
    n, _, h, w = k.shape
    rows = -(-n // nrow)
    grid = torch.ones(3, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, top:top + h, left:left + w] = k[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def kernel_grid_picture(kernels: torch.Tensor, per_kernel: bool = False, scale: int = 10) -> np.ndarray:
    """The kernel grid upscaled with sharp pixels (nearest neighbour), ready to show as an image."""
    grid = kernel_grid_image(kernels, per_kernel)
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)


def kernel_difference(diff: torch.Tensor, title: str) -> go.Figure:
    """A signed difference (64,3,3,3) as a diverging heat map: each kernel shows its R, G and B
    3x3 slices side by side, red for increases and blue for decreases."""
    d = diff.detach().float().cpu().numpy()
    n, c, h, w = d.shape
    cell_w, cell_h, nrow = c * (w + 1) + 1, h + 2, 8
    z = np.full(((n // nrow) * cell_h, nrow * cell_w), np.nan)
    text = np.full(z.shape, "", dtype=object)
    for i in range(n):
        r, col = divmod(i, nrow)
        for ch in range(c):
            top, left = r * cell_h + 1, col * cell_w + 1 + ch * (w + 1)
            z[top:top + h, left:left + w] = d[i, ch]
            text[top:top + h, left:left + w] = f"kernel {i}, {'RGB'[ch]}"
    bound = float(np.nanmax(np.abs(z))) or 1.0
    fig = go.Figure(go.Heatmap(z=z, text=text, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
                               hovertemplate="%{text}<br>change %{z:.4f}<extra></extra>",
                               colorbar=dict(title="change")))
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    return _layout(fig, title, height=380)


def update_norms(diff: torch.Tensor) -> torch.Tensor:
    """L2 norm of each kernel's change: (64,3,3,3) -> (64,)."""
    return diff.detach().float().flatten(1).norm(dim=1)


def kernel_update_ranking(diff: torch.Tensor, title: str) -> go.Figure:
    """Kernels ranked by how much they changed, largest first, with the values on hover."""
    norms = update_norms(diff)
    order = torch.argsort(norms, descending=True).tolist()
    fig = go.Figure(go.Bar(x=[f"#{i}" for i in order], y=norms[order].tolist(),
                           hovertemplate="kernel %{x}<br>update norm %{y:.4f}<extra></extra>"))
    fig.update_xaxes(title="kernel (ranked)", type="category")
    fig.update_yaxes(title="‖after − before‖₂")
    return _layout(fig, title, height=320)


# --- training curves ------------------------------------------------------------------------

def autoencoder_curves(runs: dict[str, list[dict]]) -> go.Figure:
    """Train and test MSE per epoch for one or more runs ({label: autoencoder history})."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        epochs = [r["epoch"] for r in rows]
        fig.add_scatter(x=epochs, y=[r["train_mse"] for r in rows], name=f"{label}: train",
                        line=dict(color=color), mode="lines+markers")
        fig.add_scatter(x=epochs, y=[r["test_mse"] for r in rows], name=f"{label}: test",
                        line=dict(color=color, dash="dash"), mode="lines+markers")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="MSE (true mean per pixel)")
    return _layout(fig, "Autoencoder reconstruction loss")


def classifier_curves(runs: dict[str, dict]) -> go.Figure:
    """Training loss and test accuracy per epoch, pretrained (solid) and scratch (dotted),
    for one or more runs ({label: metrics})."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (cross-entropy)", "test accuracy %"))
    for i, (label, m) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        for rows, kind, dash in ((m.get("classifier") or [], "pretrained", "solid"),
                                 ((m.get("scratch") or {}).get("classifier") or [], "scratch", "dot")):
            if not rows:
                continue
            epochs = [r["epoch"] for r in rows]
            name = f"{label}: {kind}" if len(runs) > 1 else kind
            line = dict(color=color if len(runs) > 1 else (PRETRAINED_COLOR if kind == "pretrained" else SCRATCH_COLOR),
                        dash=dash)
            fig.add_scatter(x=epochs, y=[r["train_loss"] for r in rows], name=name, line=line,
                            legendgroup=name, row=1, col=1)
            fig.add_scatter(x=epochs, y=[r["test_acc"] for r in rows], name=name, line=line,
                            legendgroup=name, showlegend=False, row=1, col=2)
    fig.update_xaxes(title="epoch")
    return _layout(fig, "Classifier: pretrained encoder vs random init", height=380)


def live_loss(points: list[tuple[str, float, float]]) -> go.Figure:
    """The running loss of a job in progress: (phase, fractional epoch, loss) points."""
    fig = go.Figure()
    for phase in dict.fromkeys(p for p, _, _ in points):
        xs = [(x, y) for p, x, y in points if p == phase]
        fig.add_scatter(x=[x for x, _ in xs], y=[y for _, y in xs], name=phase, mode="lines")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="running loss", type="log")
    return _layout(fig, "Live training loss", height=300)


# --- classifier results ---------------------------------------------------------------------

def per_class_bars(classes: list[str], pretrained: dict | None, scratch: dict | None) -> go.Figure:
    """Per-class test accuracy, pretrained vs scratch, grouped bars."""
    fig = go.Figure()
    for label, values, color in (("pretrained", pretrained, PRETRAINED_COLOR), ("scratch", scratch, SCRATCH_COLOR)):
        if values:
            fig.add_bar(x=classes, y=[values.get(c, 0) for c in classes], name=label, marker_color=color,
                        hovertemplate="%{x}: %{y:.1f}%<extra>" + label + "</extra>")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="test accuracy %", range=[0, 100])
    return _layout(fig, "Per-class test accuracy")


def confusion_heatmap(confusion: list[list[int]], classes: list[str], title: str = "Confusion matrix") -> go.Figure:
    """Rows: the true class; columns: the predicted class; counts on hover."""
    fig = go.Figure(go.Heatmap(z=confusion, x=classes, y=classes, colorscale="Blues",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class")
    return _layout(fig, title, height=450)


def probability_bars(probs: list[float], classes: list[str]) -> go.Figure:
    best = int(np.argmax(probs))
    colors = [PRETRAINED_COLOR if i == best else "#a6c8e6" for i in range(len(classes))]
    fig = go.Figure(go.Bar(x=classes, y=[100 * p for p in probs], marker_color=colors,
                           hovertemplate="%{x}: %{y:.1f}%<extra></extra>"))
    fig.update_yaxes(title="probability %", range=[0, 100])
    return _layout(fig, "What the fine-tuned classifier thinks it is", height=320)


# --- images ---------------------------------------------------------------------------------

def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(N,3,H,W) float in [0,1] or uint8 -> (N,H,W,3) uint8."""
    x = images.detach().cpu()
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_strip(rows: list[torch.Tensor], title: str, pad: int = 2) -> go.Figure:
    """Rows of equally sized images stacked into one picture (e.g. originals over reconstructions)."""
    arrays = [to_uint8_hwc(r) for r in rows]
    n, h, w = arrays[0].shape[:3]
    canvas = np.full((len(arrays) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, arr in enumerate(arrays):
        for i in range(n):
            top, left = pad + r * (h + pad), pad + i * (w + pad)
            canvas[top:top + h, left:left + w] = arr[i]
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
            picked = torch.cat([picked, torch.full((per_class - len(picked), *images.shape[1:]), 255, dtype=images.dtype)])
        rows.append(picked)
    fig = image_strip(rows, "Sample images, one row per class")
    fig.update_layout(height=60 + 62 * len(classes))
    fig.add_annotation(text=" · ".join(f"{i + 1}: {c}" for i, c in enumerate(classes)), showarrow=False,
                       xref="paper", yref="paper", x=0, y=-0.04, font=dict(size=11))
    return fig


def reconstruction_panel(original: torch.Tensor, reconstruction: torch.Tensor) -> go.Figure:
    """One image: original, reconstruction and the absolute error map (mean over channels)."""
    error = (reconstruction.float() - original.float()).abs().mean(0).cpu().numpy()
    fig = make_subplots(rows=1, cols=3, subplot_titles=("original", "reconstruction", "|error|"))
    fig.add_trace(go.Image(z=to_uint8_hwc(original[None])[0], hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Image(z=to_uint8_hwc(reconstruction[None])[0], hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Heatmap(z=error, colorscale="Inferno", colorbar=dict(title="|err|"),
                             hovertemplate="error %{z:.3f}<extra></extra>"), row=1, col=3)
    fig.update_yaxes(autorange="reversed", row=1, col=3)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "Reconstruction", height=320)


# --- architecture and timing ----------------------------------------------------------------

BLOCK_COLORS = {"conv_encoder": "#4c78a8", "fc_encoder": "#72b7b2", "fc_decoder": "#f58518",
                "conv_decoder": "#e45756", "head": "#54a24b", "(forward)": "#bab0ac"}


def architecture_diagram(table: list[dict]) -> go.Figure:
    """The layer table as a row of blocks, one per layer with parameters (and reshapes),
    each labelled with its output shape; hover gives the layer and its parameters."""
    shown = [r for r in table if r["params"] or r["block"] == "(forward)" or "Upsample" in r["layer"]]
    fig = go.Figure()
    for i, r in enumerate(shown):
        fig.add_bar(x=[i], y=[1], marker_color=BLOCK_COLORS.get(r["block"], "#999"), name=r["block"],
                    showlegend=r["block"] not in [s["block"] for s in shown[:i]],
                    text=["×".join(map(str, r["output"]))], textposition="inside",
                    hovertext=f"{r['name']}: {r['layer']}<br>output {r['output']}<br>{r['params']:,} parameters",
                    hoverinfo="text")
    fig.update_xaxes(tickvals=list(range(len(shown))), ticktext=[r["name"] for r in shown], tickangle=-45)
    fig.update_yaxes(visible=False)
    return _layout(fig, "Architecture (output shape of each step)", height=330, bargap=0.08)


def timing_bars(seconds: dict[str, float], title: str) -> go.Figure:
    """Where the time of one training step goes, per kind of layer, in milliseconds."""
    names = list(seconds)
    fig = go.Figure(go.Bar(x=names, y=[1000 * seconds[n] for n in names],
                           hovertemplate="%{x}: %{y:.1f} ms<extra></extra>"))
    fig.update_yaxes(title="milliseconds (forward + backward)")
    return _layout(fig, title, height=330)
