"""The messages between the web server's job manager (cae.jobs) and the training worker
(cae.worker), one small dataclass per kind. Both sides build and read only these; they travel
pickled through a socket pair (tensors by value, as numpy arrays), and a message of a kind the
receiving side does not expect is an error, never silently dropped."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Union

# --- the server asks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Train:
    """Train the run for `config` on the dataset at `origin` with this fingerprint, on the device,
    precision and keys the server decided (`identity`: cae.experiment.Identity); `originals` are
    the test images whose reconstructions are sent after each epoch."""

    job_id: int
    config: dict
    origin: str
    fingerprint: str
    originals: Any  # numpy uint8 (N,3,32,32)
    identity: Any  # cae.experiment.Identity


@dataclass(frozen=True)
class Sweep:
    """The label-budget sweep: payload {source, budgets, seeds[, steps]}, on the device kind the
    server placed it on."""

    job_id: int
    payload: dict
    origin: str
    fingerprint: str
    device: str = "cpu"


@dataclass(frozen=True)
class Task:
    """One of the pages' longer computations (cae.tasks.TASKS[kind])."""

    job_id: int
    kind: str
    payload: dict


@dataclass(frozen=True)
class Cancel:
    job_id: int


@dataclass(frozen=True)
class Stop:
    """Exit now (the server is shutting down)."""


# --- the worker reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """The worker began the job (it may have waited in the worker's own queue until now), in the
    process `pid` (on a Ray node, the actor's)."""

    job_id: int
    pid: int = 0


@dataclass(frozen=True)
class Progress:
    job_id: int
    progress: Any  # cae.train.Progress


@dataclass(frozen=True)
class Epoch:
    job_id: int
    phase: str
    row: dict


@dataclass(frozen=True)
class Reconstruction:
    job_id: int
    epoch: int
    images: Any  # numpy float (N,3,32,32)


@dataclass(frozen=True)
class Held:
    """The job waits at the test barrier (CAE_WORKER_HOLD)."""

    job_id: int


@dataclass(frozen=True)
class Point:
    """One finished label-budget point of a sweep."""

    job_id: int
    point: dict


@dataclass(frozen=True)
class Done:
    """The run is written (or was found: `cached`); `load`, the cores other work kept busy while it
    trained (cae.load), None where unmeasured."""

    job_id: int
    path: str
    cached: bool
    load: float | None = None


@dataclass(frozen=True)
class Result:
    """A task's or a sweep's result."""

    job_id: int
    value: Any


@dataclass(frozen=True)
class Cancelled:
    job_id: int


@dataclass(frozen=True)
class Failed:
    job_id: int
    error: str


@dataclass(frozen=True)
class Capacity:
    """The Ray driver's view of its cluster (sent when it connects, then every few seconds): how many
    CPU and GPU jobs it runs at once, and where."""

    cpus: int
    gpus: int
    address: str


@dataclass(frozen=True)
class Unavailable:
    """The Ray driver cannot reach its cluster: why, in a sentence (it exits after, unless a job
    found the head gone: then a later report of the cluster's resources takes it back)."""

    reason: str


ToWorker = Union[Train, Sweep, Task, Cancel, Stop]
ToServer = Union[
    Started, Progress, Epoch, Reconstruction, Held, Point, Done, Result, Cancelled, Failed, Capacity, Unavailable
]
TO_WORKER = (Train, Sweep, Task, Cancel, Stop)
TO_SERVER = (
    Started,
    Progress,
    Epoch,
    Reconstruction,
    Held,
    Point,
    Done,
    Result,
    Cancelled,
    Failed,
    Capacity,
    Unavailable,
)


class ProtocolError(Exception):
    """A message of a kind this side does not read."""


def encode(message: ToWorker | ToServer) -> bytes:
    return pickle.dumps(message)


def decode(data: bytes, kinds: tuple[type, ...]) -> Any:
    """The message in `data`, which must be one of `kinds` (TO_WORKER or TO_SERVER)."""
    message = pickle.loads(data)
    if not isinstance(message, kinds):
        raise ProtocolError(f"unexpected message {type(message).__name__}")
    return message
