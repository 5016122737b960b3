"""The first-layer kernels as numbers: their snapshots in training order, how far they moved from
the random start, and each kernel's update (the figures that draw them are in cae/figures.py)."""

from __future__ import annotations

import torch


def kernel_timeline(kernels: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """The first-layer kernels in the order training made them: the random start, after every
    autoencoder epoch, then after every fine-tuning epoch (runs without per-epoch snapshots: the
    start, after the autoencoder, after fine-tuning)."""
    steps = [("initial (random)", kernels["initial"])]
    for key, each, single, name in (
        ("autoencoder_epochs", "autoencoder epoch", "autoencoder", "after the autoencoder"),
        ("finetuned_epochs", "fine-tuning epoch", "finetuned", "after fine-tuning"),
    ):
        if key in kernels:
            steps += [(f"{each} {i + 1}", k) for i, k in enumerate(kernels[key])]
        elif single in kernels:
            steps.append((name, kernels[single]))
    return steps


def distance_from_start(kernels: dict[str, torch.Tensor]) -> dict[str, list[tuple[int, float]]]:
    """Per phase, the mean distance of the 64 kernels from their random start after each epoch,
    ‖k_t − k_0‖₂ averaged over kernels; epoch 0 is where the phase began (fine-tuning begins where
    the autoencoder ended; scratch begins at the same random start)."""
    start = kernels["initial"].float()

    def mean_distance(k: torch.Tensor) -> float:
        return float((k.float() - start).flatten(1).norm(dim=1).mean())

    lines = {}
    for key, name, begins in (
        ("autoencoder_epochs", "autoencoder", start),
        ("finetuned_epochs", "fine-tuned classifier", kernels.get("autoencoder", start)),
        ("scratch_epochs", "scratch classifier", start),
    ):
        if key in kernels:
            lines[name] = [(0, mean_distance(begins))] + [(i + 1, mean_distance(k)) for i, k in enumerate(kernels[key])]
    return lines


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """How far the kernels moved, as a share of their size: ‖after − before‖ / ‖before‖."""
    return float((after.float() - before.float()).norm() / before.float().norm().clamp(min=1e-12))


def update_norms(diff: torch.Tensor) -> torch.Tensor:
    """L2 norm of each kernel's change: (64,3,3,3) -> (64,)."""
    return diff.detach().float().flatten(1).norm(dim=1)
