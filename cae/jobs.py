"""Background training jobs the app attaches to: one worker thread per process trains one job at
a time; the same request from two sessions is one job; other requests queue behind it."""

from __future__ import annotations

import atexit
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cae.config import Config
from cae.data import Dataset, balanced_subset
from cae.explain import reconstruct
from cae.runs import find_run, request_keys, runs_dir, train_or_load
from cae.train import Progress

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
RECON_IMAGES = 16


@dataclass
class Job:
    """One experiment in the queue; the worker updates it, pages only read it."""

    key: str
    config: Config
    dataset: Dataset
    state: str = QUEUED
    progress: Progress | None = None
    losses: list[tuple[str, float, float]] = field(default_factory=list)  # (phase, epoch, loss)
    epochs: list[tuple[str, dict]] = field(default_factory=list)           # finished epochs
    reconstructions: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    originals: torch.Tensor | None = None
    error: str | None = None
    run_path: Path | None = None
    cached: bool = False
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started


def fixed_test_images(dataset: Dataset, n: int = RECON_IMAGES) -> torch.Tensor:
    """The same n test images (class-balanced) every time: uint8 (n,3,32,32)."""
    return dataset.test.images[balanced_subset(dataset.test.labels, n, seed=0)]


def lower_priority(niceness: int = 10) -> None:
    """Run this thread (and the OpenMP threads it starts, which inherit it) below the web server's
    threads, so pages and health checks stay responsive on a small CPU while a job trains."""
    import os
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):  # not Linux, or not allowed: train at normal priority
        pass


class JobManager:
    """A queue of training jobs served by one daemon worker thread."""

    def __init__(self, directory: Path | None = None):
        self.runs_dir = runs_dir(directory)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._worker = threading.Thread(target=self._serve, name="cae-training", daemon=True)
        self._worker.start()
        # torch aborts the process if a thread is mid-computation at interpreter exit
        atexit.register(self.shutdown)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Cancel every job (training stops within one batch) and stop the worker."""
        with self._lock:
            self._closing = True
            for job in self._jobs.values():
                if job.active:
                    job.cancel_event.set()
                    if job.state == QUEUED:
                        job.state, job.finished = CANCELLED, time.time()
            self._wake.notify_all()
        self._worker.join(timeout)

    def submit(self, cfg: Config, dataset: Dataset) -> Job:
        """Attach to the job for this request if one is queued or running, reuse a saved run,
        or queue a new job."""
        key, _ = request_keys(cfg, dataset)
        with self._lock:
            if self._closing:
                raise RuntimeError("The job manager is shutting down; no new jobs.")
            existing = self._jobs.get(key)
            if existing is not None and existing.active:
                return existing
            job = Job(key, cfg, dataset)
            found = find_run(key, self.runs_dir)
            if found is not None:
                job.state, job.run_path, job.cached = DONE, found, True
                job.started = job.finished = time.time()
            self._jobs[key] = job
            self._jobs.move_to_end(key)
            self._wake.notify_all()
            return job

    def cancel(self, key: str) -> None:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.active:
                job.cancel_event.set()
                if job.state == QUEUED:
                    job.state, job.finished = CANCELLED, time.time()

    def jobs(self) -> list[Job]:
        """All jobs of this process, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def wait(self, key: str, timeout: float = 600.0) -> Job:
        """Block until a job has ended (for tests and scripts)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.get(key)
            if job is not None and not job.active:
                return job
            time.sleep(0.05)
        raise TimeoutError(f"job {key[:12]} still {self.get(key).state} after {timeout:.0f} s")

    # --- the worker ---------------------------------------------------------------------------

    def _next(self) -> Job | None:
        with self._lock:
            while not self._closing:
                for job in self._jobs.values():
                    if job.state == QUEUED:
                        job.state, job.started = RUNNING, time.time()
                        return job
                self._wake.wait()
            return None

    def _serve(self) -> None:
        lower_priority()
        while (job := self._next()) is not None:
            try:
                self._train(job)
            except Exception as exc:  # a failed job must not stop the queue
                job.error = f"{type(exc).__name__}: {exc}"
                job.state = FAILED
                traceback.print_exc()
            finally:
                job.finished = time.time()

    def _train(self, job: Job) -> None:
        job.originals = fixed_test_images(job.dataset)

        def on_progress(p: Progress) -> None:
            job.progress = p
            if p.loss == p.loss:  # not NaN
                job.losses.append((p.phase, p.epoch - 1 + p.batch / p.batches, p.loss))

        def on_epoch(phase: str, row: dict, model) -> None:
            job.epochs.append((phase, row))
            if phase == "autoencoder":
                job.reconstructions.append((row["epoch"], reconstruct(model, job.originals)))

        outcome = train_or_load(job.config, job.dataset, self.runs_dir, on_progress=on_progress,
                                should_stop=job.cancel_event.is_set, on_epoch=on_epoch)
        job.cached = outcome.cached
        job.run_path = outcome.path
        job.state = CANCELLED if outcome.cancelled else DONE
