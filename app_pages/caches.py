"""What a server computes once and every session shares: the job manager, datasets, the run list,
loaded runs and the worker's results (the last KEPT_RESULTS). Streamlit glue only; the work is in `cae`."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path

import streamlit as st

from cae import classroom
from cae.data import Dataset, load_dataset
from cae.devices import (
    DEVICES_ENV,
    THREADS_ENV,
    DevicesError,
    describe_device,
    resolve_device,
    worker_devices,
    worker_threads,
)
from cae.jobs import DONE, FAILED, JobManager, manager_for
from cae.runs import SWEEP_PREFIX, Run, RunInfo, list_runs, load_run, pretrained_dir, runs_dir


def jobs() -> JobManager:
    """The server's job manager for the runs folder (one per process, outside Streamlit's caches)."""
    return manager_for(runs_dir())


class TaskError(Exception):
    """A computation in the worker failed; the message says why."""


KEPT_RESULTS = 64  # worker results kept in memory (maps and probes hold tensors); the oldest go first


@st.cache_resource(show_spinner=False)
def _task_results() -> OrderedDict:
    return OrderedDict()


def computed(kind: str, payload: dict, wait: float) -> object | None:
    """The result of a longer computation run by the worker (cae/tasks.py), waiting at most `wait`
    seconds; None while it still runs. The last KEPT_RESULTS results are kept in memory (the
    worker keeps the large ones, maps and probes, on disk too, so a forgotten one comes back quickly)."""
    key = (kind, tuple(sorted(payload.items())))
    results = _task_results()
    if key not in results:
        job = jobs().settle(jobs().compute(kind, payload).id, wait)
        if job.state == FAILED:
            raise TaskError(job.error)
        if job.state != DONE:
            return None
        results[key] = job.result
        while len(results) > KEPT_RESULTS:
            results.popitem(last=False)
    results.move_to_end(key)
    return results[key]


@st.cache_resource(show_spinner="Loading images…", max_entries=4)
def cached_dataset(source: str) -> Dataset:
    """A dataset by its source; never downloads (the Data page's button does, with progress)."""
    return load_dataset(source, download=False)


@st.cache_resource(show_spinner=False, max_entries=8)
def _listing(directory: str, stamp: int, pretrained: str, pretrained_stamp: int) -> list[RunInfo]:
    return list_runs(directory, pretrained)


def _stamp(folder: Path) -> int:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner="Loading run…", max_entries=8)
def cached_run(path: str, stamp: float) -> Run:
    """A loaded run; `stamp` (the metrics file's mtime) makes a rewritten run load afresh."""
    return load_run(path)


def device_label() -> str:
    """Where training runs, as the backend says it (the workers and their devices, or the Ray
    cluster), with how many jobs train now out of how many can at once, counted from the queue;
    a single unpinned worker says its device and threads. Worked out on every run of a page."""
    busy, at_once = jobs().training_counts()
    where = jobs().backend.describe()
    if where is None:
        return _single_worker_label()
    threads = worker_threads()
    on_cpu = any(getattr(m, "device", None) == "cpu" for m in jobs().members)
    return f"{where}, {busy} of {at_once} training" + (
        f" ({threads} thread{'s' if threads != 1 else ''} each on CPU)" if on_cpu else ""
    )


def devices_problem() -> str | None:
    """Why CAE_DEVICES cannot be served here; None when it can (asked once per setting)."""
    return _devices_problem(os.environ.get(DEVICES_ENV, ""), os.environ.get(THREADS_ENV, ""))


@st.cache_resource(show_spinner=False)
def _devices_problem(spec: str, threads: str) -> str | None:
    """`threads` keys the cache only: worker_devices reads CAE_WORKER_THREADS itself."""
    try:
        worker_devices(spec)
    except DevicesError as exc:
        return str(exc)
    return None


@st.cache_resource(show_spinner=False)
def _single_worker_label() -> str:
    device = resolve_device("auto")
    if device.type != "cpu":
        return describe_device(device)
    return f"CPU, training on {worker_threads()} of {os.cpu_count()} cores"


@st.cache_resource(show_spinner=False)
def log_once(sentence: str) -> None:
    """A sentence in the server's log, once per server (not once per session)."""
    logging.getLogger("cae").warning(sentence)


@st.cache_resource(show_spinner=False)
def lecturer_gate() -> classroom.LecturerGate:
    """The lecturer's password check, shared by every session of this server."""
    return classroom.LecturerGate()


@st.cache_resource(show_spinner=False)
def code_attempts() -> classroom.Attempts:
    """Wrong seat codes of every session of this server."""
    return classroom.Attempts()


def runs() -> list[RunInfo]:
    """Shipped runs and the runs folder's (label-budget points too), read again only when a folder
    changed (a run is written by a rename into it, or deleted)."""
    folder, shipped = runs_dir(), pretrained_dir()
    sweeps = [p for p in folder.glob(f"{SWEEP_PREFIX}*") if p.is_dir()] if folder.is_dir() else []
    stamp = max([_stamp(folder), *map(_stamp, sweeps)])
    return _listing(str(folder), stamp, str(shipped), _stamp(shipped))


def run_estimate(cfg, dataset, wait: float = 0.05):
    """How long `cfg` will take here (cae.timing.Estimate): by the last finished runs' speeds, each
    scaled from the load it met to the load now, else by one measured step; None while the step is
    being measured."""
    from cae.timing import Estimate, experiment_work

    work = experiment_work(cfg, len(dataset.train), len(dataset.test))
    step, paces = measured_speed(cfg, wait=wait), jobs().recent_paces()
    load = jobs().backend.load_now() if paces or step is not None else None
    return Estimate.of(work, step, paces, load, threads=worker_threads(), cores=os.cpu_count() or 1)


def measured_speed(cfg, wait: float = 5) -> float | None:
    """A training step measured on this machine by the worker (for time estimates), or None while
    it is being measured (waiting at most `wait` seconds) or when it failed."""
    try:
        return computed(
            "step_time", {"latent_dim": cfg.latent_dim, "upsample": cfg.upsample, "precision": cfg.precision}, wait=wait
        )
    except TaskError:
        return None
