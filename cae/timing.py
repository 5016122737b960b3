"""Where one training step spends its time, by kind of layer (the Overview page's measurement), and
how long a whole experiment will take here (the Train page's and lecture mode's estimates)."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from cae.config import Config, labelled_count
from cae.devices import resolve_device, resolve_precision
from cae.load import LoadMeter
from cae.model import ConvAutoencoder, seeded
from cae.plan import MFLOP, planned_work
from cae.train import reconstruction_loss, training_step
from cae.words import duration


def layer_kind(name: str, module: nn.Module) -> str:
    """The timing group of a leaf module: encoder convs, fc layers, decoder convs or upsampling."""
    if isinstance(module, nn.Upsample):
        return "upsampling"
    if name.startswith(("fc_", "head")):
        return "fc layers"
    return "encoder convs" if name.startswith("conv_encoder") else "decoder convs"


def time_blocks(
    model: ConvAutoencoder, device: torch.device, batch_size: int = 256, precision: str = "fp32", repeats: int = 3
) -> dict[str, float]:
    """Seconds of one forward + backward of a batch, split by kind of layer (median of repeats).

    Forward and backward hooks time each leaf module; activations count with their layer's group.
    """
    model = model.to(device, memory_format=torch.channels_last).train()
    # the input takes gradients too, so the first layer's backward hooks fire
    x = torch.rand(batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last).requires_grad_()
    spent: dict[str, list[float]] = {}
    starts: dict[int, float] = {}
    hooks = []

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for name, module in model.named_modules():
        if name and not list(module.children()):
            kind = layer_kind(name, module)
            for pre, post in (
                (module.register_forward_pre_hook, module.register_forward_hook),
                (module.register_full_backward_pre_hook, module.register_full_backward_hook),
            ):

                def begin(*_a, key=id(module)):
                    sync()
                    starts[key] = time.perf_counter()

                def end(*_a, key=id(module), kind=kind):
                    sync()
                    spent.setdefault(kind, []).append(time.perf_counter() - starts.pop(key, time.perf_counter()))

                hooks += [pre(begin), post(end)]
    totals = []
    optimizer = torch.optim.Adam(model.parameters())
    try:
        for _ in range(repeats + 1):  # the first pass warms up and is dropped
            spent.clear()
            training_step(model, optimizer, reconstruction_loss, x, None, precision)
            totals.append({k: sum(v) for k, v in spent.items()})
    finally:
        for h in hooks:
            h.remove()
    order = ("encoder convs", "fc layers", "decoder convs", "upsampling")
    return {k: statistics.median(t.get(k, 0.0) for t in totals[1:]) for k in order}


FLOP_PER_INTERPOLATED_VALUE = 8  # bilinear: four weighted neighbours, a multiply and an add each


@torch.no_grad()
def upsampling_arithmetic(model: ConvAutoencoder) -> dict[str, float]:
    """What the decoder's upsampling costs by arithmetic, per image: the values it interpolates,
    their MFLOP (FLOP_PER_INTERPOLATED_VALUE each), and the forward pass's MFLOP (convolutions and
    linear layers, counted by torch's FlopCounterMode) to compare them with."""
    from torch.utils.flop_counter import FlopCounterMode

    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
        for m in model.modules()
        if isinstance(m, nn.Upsample)
    ]
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model.eval()(torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    values = sum(sizes)
    return {
        "values": values,
        "upsampling_mflop": values * FLOP_PER_INTERPOLATED_VALUE / 1e6,
        "forward_mflop": counter.get_total_flops() / 1e6,
    }


# --- time estimates -------------------------------------------------------------------------


def seconds_per_mflop(cfg: Config, batch_size: int = 256) -> float:
    """Time one autoencoder training step here (after a warm-up) and return seconds per MFLOP on this
    machine idle: the time measured, divided by the `slowdown` of the load other work put on it."""
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model = ConvAutoencoder.from_config(cfg, seeded(0)).to(device, memory_format=torch.channels_last)
    x = torch.rand(batch_size, 3, 32, 32, generator=seeded(0)).to(device).contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    times, meter = [], LoadMeter()
    for _ in range(6):
        t0 = time.perf_counter()
        training_step(model, optimizer, reconstruction_loss, x, None, precision)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    load = meter.demand(threads, cores) if device.type == "cpu" else None
    busy = 1.0 if load is None else slowdown(load, threads, cores)
    return min(times[1:]) / (batch_size * MFLOP["autoencoder"]) / busy


def experiment_work(cfg: Config, n_train: int, n_test: int) -> float:
    """The MFLOP an experiment on data of these sizes will spend (`planned_work` of its subsets)."""
    n_train = min(n_train, cfg.limit or n_train)
    n_test = min(n_test, cfg.test_limit or n_test)
    return planned_work(cfg, n_train, labelled_count(cfg, n_train, 1), n_test)


# One measured step leaves out what a whole run also spends (starting, data, evaluations): Lecture
# mode's live run took 0.93 and 1.54 times the step's figure alone, and 1.72 times it beside another
# training with the step measured there too (bench/estimates.py, 2026-12-06); 3.2 and 3.5 times
# beside two trainings and a package install, the step measured quieter. So without a finished run
# to go by, the likely figure is STEP_LIKELY times the step's, scaled to the load now, and the range
# from STEP_LOW to STEP_SPREAD times it. (A step measured while the machine was far busier than its
# load says overstates it, up to 16 times once: no range from one step holds that; the runs' own
# speeds replace it as soon as one of a similar size has finished.)
STEP_LIKELY = 1.5
STEP_SPREAD = 4.0
STEP_LOW = 0.8
# A finished run says how long another takes when their work is within SIZE_SPAN times of each other:
# a run's start and its data cost the same whatever its size, so a tiny run's time per MFLOP, mostly
# those, overstates a run 26 times larger (measured: 137 s by speed alone for a 35 s run).
SIZE_SPAN = 8.0
# Runs here at other times: the likely figure is their median speed, and the range at least a factor
# RECENT_SPREAD either side of it (the load may change between runs), wider where their speeds were,
# and down to the measured step's figure (the machine with no load and no overheads).
RECENT_SPREAD = 1.5


class Pace(NamedTuple):
    """A finished training's speed (seconds per planned MFLOP, start to end), the load it met (cores
    busy with other work on average, cae.load; None where unknown) and its work (MFLOP)."""

    speed: float
    load: float | None = None
    work: float | None = None


def slowdown(load: float, threads: int, cores: int) -> float:
    """How many times longer a training of `threads` threads takes beside `load` cores of other work:
    the cores shared in proportion, once there are more threads than cores."""
    return max(1.0, (threads + load) / cores)


@dataclass(frozen=True)
class Estimate:
    """How long a run will take: a likely figure and a range that holds, and what they rest on."""

    low: float
    likely: float
    high: float
    basis: str  # "the last 3 runs here" | "one measured training step", and the load now where counted

    @classmethod
    def of(
        cls,
        work: float,
        step: float | None,
        recent: list[Pace],
        load: float | None = None,
        threads: int = 1,
        cores: int = 1,
    ) -> "Estimate | None":
        """From the speeds of the last finished runs here of a similar size (SIZE_SPAN), each scaled
        from the load it met to the load now (`load`, cores busy with other work; `slowdown`) where both
        are known; else from one step measured on the machine idle (`seconds_per_mflop`), scaled to the
        load now; None while neither is known."""
        recent = [p for p in recent if p.work is None or work / SIZE_SPAN <= p.work <= work * SIZE_SPAN]
        now = 1.0 if load is None else slowdown(load, threads, cores)
        load_words = "" if load is None else f" and the load now: {load:.1f} of {cores} cores busy with other work"
        if recent:
            counted = load is not None and any(p.load is not None for p in recent)
            speeds = [
                p.speed * now / slowdown(p.load, threads, cores) if load is not None and p.load is not None else p.speed
                for p in recent
            ]
            likely = work * statistics.median(speeds)
            low, high = min(likely / RECENT_SPREAD, work * min(speeds)), max(likely * RECENT_SPREAD, work * max(speeds))
            if step is not None:  # the machine's own speed, without a run's overheads: quieter than the last runs met
                low = min(low, work * step * STEP_LOW)
            said = "the last run here" if len(recent) == 1 else f"the last {len(recent)} runs here"
            return cls(low, likely, high, said + (load_words if counted else ""))
        if step is None:
            return None
        figure = work * step * now
        return cls(
            figure * STEP_LOW, figure * STEP_LIKELY, figure * STEP_SPREAD, "one measured training step" + load_words
        )

    def words(self) -> str:
        """ "about 1m 10s (0m 50s to 1m 40s, by the last 3 runs here)"."""
        return f"about {duration(self.likely)} ({duration(self.low)} to {duration(self.high)}, by {self.basis})"
