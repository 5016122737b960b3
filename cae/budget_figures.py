"""The label-budget figures: accuracy against labelled images for the three starts, and the
pretraining objectives compared on that protocol (the Classifier and Latent space pages, Lecture
mode's steps 8 and 9). The theme is cae/figures.py's."""

from __future__ import annotations

import statistics

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cae.figures import PALETTE, PRETRAINED_COLOR, SCRATCH_COLOR, _layout, chance_line, series_style

BUDGET_STYLE = {
    "finetuned": ("fine-tuned from the autoencoder", PRETRAINED_COLOR, "solid"),
    "frozen": ("frozen encoder + linear head", PALETTE[2], "dash"),
    "scratch": ("from scratch (random init)", SCRATCH_COLOR, "dot"),
}


def label_budget_chart(lines: dict[str, dict[int, dict]], n_classes: int, title: str) -> go.Figure:
    """Test accuracy against labelled training images (log axis), one line per start, bars spanning
    the seeds."""
    fig = go.Figure()
    for line, points in lines.items():
        name, color, dash = BUDGET_STYLE[line]
        xs = sorted(points)
        means = [points[b]["mean"] for b in xs]
        fig.add_scatter(
            x=xs,
            y=means,
            name=name,
            mode="lines+markers",
            line=dict(color=color, dash=dash, width=2.5),
            error_y=dict(
                type="data",
                symmetric=False,
                array=[points[b]["high"] - m for b, m in zip(xs, means)],
                arrayminus=[m - points[b]["low"] for b, m in zip(xs, means)],
            ),
            hovertemplate="%{x:,} labels: %{y:.1f}%<extra>" + name + "</extra>",
        )
    chance_line(fig, n_classes)
    budgets = sorted({b for points in lines.values() for b in points})
    fig.update_xaxes(
        title="labelled training images", type="log", tickvals=budgets, ticktext=[f"{b:,}" for b in budgets]
    )
    fig.update_yaxes(title="test accuracy %")
    return _layout(fig, title, height=420)


def objectives_chart(options: dict[str, dict], names: dict[str, str]) -> go.Figure:
    """Per pretraining objective, against labelled images (log axis): fine-tuned minus scratch
    (mean over seeds; the bar spans the seeds' lowest and highest difference), and the frozen
    encoder's accuracy (mean; the bar spans the seeds' range)."""
    from cae.sweeps import budget_lines

    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("fine-tuned − scratch (points)", "frozen encoder, linear head (%)")
    )
    budgets: set[int] = set()
    for i, (name, entry) in enumerate(options.items()):
        lines = budget_lines(entry["points"])
        xs = sorted(b for b in lines["finetuned"] if b in lines["scratch"])
        budgets |= set(xs)
        style = series_style(i)
        gaps = {b: [p["finetuned"] - p["scratch"] for p in entry["points"] if p["budget"] == b] for b in xs}
        frozen = [lines["frozen"][b] for b in xs if b in lines["frozen"]]
        for col, ys, lows, highs in (
            (1, [statistics.fmean(gaps[b]) for b in xs], [min(gaps[b]) for b in xs], [max(gaps[b]) for b in xs]),
            (2, [f["mean"] for f in frozen], [f["low"] for f in frozen], [f["high"] for f in frozen]),
        ):
            fig.add_scatter(
                x=xs,
                y=ys,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[h - y for h, y in zip(highs, ys)],
                    arrayminus=[y - lo for lo, y in zip(lows, ys)],
                    thickness=1.2,
                    width=3,
                ),
                name=names.get(name, name),
                legendgroup=name,
                showlegend=col == 1,
                mode="lines+markers",
                **style,
                row=1,
                col=col,
            )
    fig.add_hline(y=0, line=dict(color="#444", dash="dash", width=1.5), row=1, col=1)
    ticks = sorted(budgets)
    fig.update_xaxes(title="labelled training images", type="log", tickvals=ticks, ticktext=[f"{b:,}" for b in ticks])
    return _layout(fig, "What pretraining asks for, and what the code is worth", height=420)
