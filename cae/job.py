"""One job of the queue (cae/jobs.py) as pages read it: its kind, its state and what it reported."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cae.config import Config
from cae.experiment import Identity
from cae.train import Progress

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
TRAIN = "train"
SWEEP = "sweep"  # the label-budget experiment: one queue entry, its points in turn (cae/budget.py)
TRAINING_KINDS = (TRAIN, SWEEP)  # the jobs that take a member's training slot
KEEP_FINISHED = 50  # finished jobs kept in memory; the rest are runs on disk


@dataclass
class Job:
    """One training or task in the queue; the manager updates it, pages only read it."""

    id: int
    kind: str  # "train", or a task's name (cae/tasks.py)
    key: str  # the request: a run key, or the task and its payload
    config: Config | None = None
    identity: Identity | None = None  # a training's device, precision and keys, decided at submission
    device: str = "cpu"  # the device kind a training or sweep was placed on
    origin: str = ""  # where the worker loads the dataset from
    fingerprint: str = ""
    payload: dict | None = None
    state: str = QUEUED
    progress: Progress | None = None
    losses: list[tuple[str, float, float]] = field(default_factory=list)  # (phase, epoch, loss)
    epochs: list[tuple[str, dict]] = field(default_factory=list)  # finished epochs
    reconstructions: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    originals: torch.Tensor | None = None
    error: str | None = None
    run_path: Path | None = None
    cached: bool = False
    load: float | None = None  # cores busy with other work while it trained (cae.load), where measured
    result: object = None
    cancel_requested: bool = False
    held: bool = False  # at the test barrier (cae.worker.HOLD_ENV)
    worker: int | None = None  # the index of the backend's member (process) that runs it
    pid: int | None = None  # the process that runs it (on a Ray node, the actor's)
    watchers: set[str] = field(default_factory=set)  # sessions that submitted or opened it
    owner: str | None = None  # the classroom seat that submitted it (cae/classroom.py); None otherwise
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    @property
    def trains(self) -> bool:
        """A training or a sweep: it takes a member's training slot (a task takes the other)."""
        return self.kind in TRAINING_KINDS

    @property
    def status(self) -> str:
        return "cancelling" if self.state == RUNNING and self.cancel_requested else self.state

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started


class Refused(ValueError):
    """A submission the caps refuse; the message says why in one sentence."""
