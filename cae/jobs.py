"""Jobs the app attaches to: trainings and the pages' longer computations, queued here and run by
worker processes (cae/worker.py), never by the web server: one worker, or one per device when
CAE_DEVICES names several (cae/devices.py).

One manager per runs folder for the whole server (kept in this module, so Streamlit's "Clear
cache" cannot start a second one); the same training request from two sessions is one job; other
requests queue; a training goes to a free worker of its device's kind, a task to any worker; a
worker that dies fails only its own jobs with one sentence and a new worker takes its place.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from pathlib import Path

import torch

from cae import protocol
from cae.cluster import POLL_SECONDS, ray_address
from cae.config import Config
from cae.data import UPLOADS, Dataset, balanced_subset, cache_dir
from cae.devices import kind_of, pinning, worker_devices
from cae.experiment import request_keys
from cae.files import remove_temporaries
from cae.runs import find_run, runs_dir
from cae.train import Progress, resolve_device

LOG = logging.getLogger("cae.jobs")
QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
TRAIN = "train"
SWEEP = "sweep"  # the label-budget experiment: one queue entry, its points in turn (cae/budget.py)
TRAINING_KINDS = (TRAIN, SWEEP)  # the jobs the worker's training slot runs
RECON_IMAGES = 16
KEEP_FINISHED = 50  # finished jobs kept in memory; the rest are runs on disk
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where `python -m cae` finds this package


@dataclass
class Job:
    """One training or task in the queue; the manager updates it, pages only read it."""

    id: int
    kind: str  # "train", or a task's name (cae/tasks.py)
    key: str  # the request: a run key, or the task and its payload
    config: Config | None = None
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
    result: object = None
    cancel_requested: bool = False
    held: bool = False  # at the test barrier (cae.worker.HOLD_ENV)
    worker: int | None = None  # the index of the worker that runs it
    watchers: set[str] = field(default_factory=set)  # sessions that submitted or opened it
    owner: str | None = None  # the classroom seat that submitted it (cae/classroom.py); None otherwise
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    @property
    def status(self) -> str:
        return "cancelling" if self.state == RUNNING and self.cancel_requested else self.state

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started


def fixed_test_images(dataset: Dataset, n: int = RECON_IMAGES) -> torch.Tensor:
    """The same n test images (class-balanced) every time: uint8 (n,3,32,32)."""
    return dataset.test.images[balanced_subset(dataset.test.labels, n, seed=0)]


def death_sentence(exitcode: int | None) -> str:
    """Why the worker stopped, in words, for the job it was running."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = f"killed by {name}" + (", often the system running out of memory" if name == "SIGKILL" else "")
    else:
        why = f"exit status {exitcode}"
    return f"The training process stopped unexpectedly ({why}); nothing was saved. Start the job again."


@dataclass
class WorkerSlot:
    """One worker process, the device it is pinned to, and the job in each of its two slots."""

    device: str | None  # "cpu", "cuda:N", or None for the single unpinned worker (cae/devices.py)
    process: subprocess.Popen | None = None
    conn: Connection | None = None
    busy: dict[str, int | None] = field(default_factory=lambda: {"train": None, "task": None})
    retry_at: float = 0.0  # when a worker that failed to start is tried again
    backoff: float = 1.0
    trains: bool = True  # False beside a Ray cluster: the local worker runs the pages' tasks only

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.poll() is None else None

    def takes(self, kind: str | None) -> bool:
        """Whether this worker may train for a request whose device resolves to `kind`."""
        return self.trains and kind_of(self.device) in (None, kind)


class JobManager:
    """A queue of jobs served by worker processes (one per device), watched by one monitor thread."""

    def __init__(self, directory: Path | None = None, devices: list[str | None] | None = None):
        self.runs_dir = runs_dir(directory)
        for folder in (self.runs_dir, cache_dir(), cache_dir() / UPLOADS):  # left by processes that died
            remove_temporaries(folder)
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = False
        self._want_worker = False
        self.cluster = None
        if address := ray_address():  # trainings go to the Ray cluster, tasks to one local worker
            from cae.cluster import Cluster

            self.cluster = Cluster(address)
            devices = [None]
        self.workers = [WorkerSlot(d, trains=self.cluster is None) for d in (devices or worker_devices())]
        self._polled = 0.0
        self._auto_kind: str | None = None  # what `auto` means on this server, asked once
        self._monitor = threading.Thread(target=self._watch, name="cae-jobs", daemon=True)
        self._monitor.start()
        atexit.register(self.shutdown)

    # --- what pages call -------------------------------------------------------------------

    def submit(self, cfg: Config, dataset: Dataset, watcher: str | None = None, owner: str | None = None) -> Job:
        """Attach to the job for this request if one is queued or running (and not being
        cancelled), reuse a saved run, or queue a new job. A new job belongs to `owner` (a
        classroom seat); an attached job keeps its owner, and a saved run found belongs to nobody new."""
        key, _ = request_keys(cfg, dataset)
        with self._lock:
            self._check_open()
            job = self._attachable(key)
            if job is None:
                job = Job(
                    next(self._ids),
                    TRAIN,
                    key,
                    cfg,
                    dataset.origin,
                    dataset.fingerprint,
                    originals=fixed_test_images(dataset),
                    owner=owner,
                )
                if (found := find_run(key, self.runs_dir)) is not None:
                    job.state, job.run_path, job.cached, job.owner = DONE, found, True, None
                    job.started = job.finished = time.time()
                self._add(job)
            if watcher:
                job.watchers.add(watcher)
            return job

    def submit_sweep(
        self,
        source: Path,
        dataset: Dataset,
        budgets: tuple[int, ...],
        seeds: int,
        watcher: str | None = None,
        steps: int | None = None,
        owner: str | None = None,
    ) -> Job:
        """Queue the label-budget experiment for a run's encoder on `dataset` (one entry; its points
        arrive in `job.result` as they finish), or attach to the same one already queued or running."""
        payload = {
            "source": str(source),
            "budgets": list(budgets),
            "seeds": seeds,
            **({"steps": steps} if steps else {}),
        }
        key = f"{SWEEP}:{dataset.fingerprint}:{sorted(payload.items())}"
        with self._lock:
            self._check_open()
            job = self._attachable(key) or self._add(
                Job(
                    next(self._ids),
                    SWEEP,
                    key,
                    origin=dataset.origin,
                    fingerprint=dataset.fingerprint,
                    payload=payload,
                    result=[],
                    owner=owner,
                )
            )
            if watcher:
                job.watchers.add(watcher)
            return job

    def compute(self, kind: str, payload: dict) -> Job:
        """A page's longer computation (cae/tasks.py), run by the worker beside any training. A
        finished one with the same key is handed back (a page that polls briefly may miss the
        moment it ended; asking again must not start it again, or a short task runs for ever)."""
        key = f"{kind}:{sorted(payload.items())}"
        with self._lock:
            self._check_open()
            done = next((j for j in reversed(self._jobs.values()) if j.key == key and j.state == DONE), None)
            return self._attachable(key) or done or self._add(Job(next(self._ids), kind, key, payload=payload))

    def cancel(self, job_id: int) -> None:
        """A queued job ends at once; a running one stops within one batch (it says "cancelling")."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return
            if job.state == QUEUED:
                self._end(job, CANCELLED)
            elif not job.cancel_requested:
                job.cancel_requested = True
                if self.cluster is not None and job.kind in TRAINING_KINDS:
                    self.cluster.cancel(job.id)
                elif job.worker is not None:
                    self._send(self.workers[job.worker], protocol.Cancel(job.id))

    def watch(self, job_id: int, watcher: str) -> None:
        with self._lock:
            if (job := self._jobs.get(job_id)) is not None:
                job.watchers.add(watcher)

    def detach(self, job_id: int, watcher: str) -> None:
        """This session stops watching; the job goes on for the others."""
        with self._lock:
            if (job := self._jobs.get(job_id)) is not None:
                job.watchers.discard(watcher)

    def jobs(self) -> list[Job]:
        """Jobs of this server, oldest first (finished ones only the last KEEP_FINISHED)."""
        with self._lock:
            return list(self._jobs.values())

    def get(self, job_id: int | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def active_jobs_of(self, owner: str) -> list[Job]:
        """The trainings and sweeps a seat submitted that are queued or running."""
        with self._lock:
            return [j for j in self._jobs.values() if j.owner == owner and j.active and j.kind in TRAINING_KINDS]

    def active_training_count(self) -> int:
        """Trainings and sweeps queued or running, every seat's."""
        with self._lock:
            return sum(j.kind in TRAINING_KINDS and j.active for j in self._jobs.values())

    def busy_workers(self) -> tuple[int, int]:
        """(workers training now, workers in all); on a Ray cluster, (jobs training, CPUs and GPUs)."""
        if self.cluster is not None:
            return len(self.cluster.running), self.cluster.capacity(False) + self.cluster.capacity(True)
        with self._lock:
            return sum(w.busy["train"] is not None for w in self.workers), len(self.workers)

    def queue_length(self) -> int:
        """Trainings and sweeps waiting for the training slot."""
        with self._lock:
            return sum(j.kind in TRAINING_KINDS and j.state == QUEUED for j in self._jobs.values())

    def place_in_queue(self, job_id: int) -> int | None:
        """1 for the training job that runs next, 2 after it...; None when it is not queued."""
        with self._lock:
            queued = [j.id for j in self._jobs.values() if j.kind in TRAINING_KINDS and j.state == QUEUED]
        return queued.index(job_id) + 1 if job_id in queued else None

    def settle(self, job_id: int, timeout: float) -> Job | None:
        """The job once it has ended, or as it is after `timeout` seconds (pages poll with this)."""
        deadline = time.time() + timeout
        job = self.get(job_id)
        while job is not None and job.active and time.time() < deadline:
            time.sleep(0.05)
            job = self.get(job_id)
        return job

    def wait(self, job_id: int, timeout: float = 600.0) -> Job:
        """Block until a job has ended (for tests and scripts); TimeoutError if it has not."""
        job = self.settle(job_id, timeout)
        if job is None or job.active:
            raise TimeoutError(f"job {job_id} still {job.status if job else 'unknown'} after {timeout:.0f} s")
        return job

    def start_worker(self) -> None:
        """Start the worker now (in the background) so the first job does not wait for it."""
        self._want_worker = True

    @property
    def worker_pid(self) -> int | None:
        """The first worker's process id (the only one, unless CAE_DEVICES names several)."""
        return self.workers[0].pid

    def worker_of(self, job_id: int) -> int | None:
        """The process id of the worker that runs a job, while it runs."""
        job = self.get(job_id)
        if job is not None and self.cluster is not None and job.id in self.cluster.running:
            return self.cluster.pid_of(job.id)
        return None if job is None or job.worker is None or not job.active else self.workers[job.worker].pid

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every job and stop the worker; no process is left behind."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            for job in list(self._jobs.values()):
                if job.active:
                    self._end(job, CANCELLED)
        self._monitor.join(timeout)
        for worker in self.workers:
            self._stop_worker(worker)
        if self.cluster is not None:
            self.cluster.shutdown()

    # --- bookkeeping (under the lock) ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise RuntimeError("The job manager is shutting down; no new jobs.")

    def _attachable(self, key: str) -> Job | None:
        return next(
            (j for j in reversed(self._jobs.values()) if j.key == key and j.active and not j.cancel_requested), None
        )

    def _add(self, job: Job) -> Job:
        self._jobs[job.id] = job
        self._forget_old()
        return job

    def _end(self, job: Job, state: str, error: str | None = None) -> None:
        job.state, job.error, job.finished = state, error, time.time()
        job.reconstructions = job.reconstructions[-1:]  # what the page still shows; release the rest
        if job.worker is not None:
            busy = self.workers[job.worker].busy
            for slot, held_job in busy.items():
                if held_job == job.id:
                    busy[slot] = None
        self._forget_old()

    def _forget_old(self) -> None:
        """Keep the last KEEP_FINISHED finished jobs (their runs are on disk); never an active one."""
        finished = [j for j in self._jobs.values() if not j.active]
        for old in finished[: max(len(finished) - KEEP_FINISHED, 0)]:
            del self._jobs[old.id]

    def _send(self, worker: WorkerSlot, message: protocol.ToWorker) -> None:
        try:
            if worker.conn is not None:
                worker.conn.send_bytes(protocol.encode(message))
        except (OSError, ValueError):  # the worker is gone; the monitor notices and says so
            pass

    # --- the monitor thread --------------------------------------------------------------------

    def _watch(self) -> None:
        """Start the workers when there is work, hand them jobs one per slot, apply what they
        report, and notice when one dies. Never dies itself: a worker that cannot start fails the
        jobs no other worker can take with a sentence, and is tried again later (1 s, doubling up
        to 30 s)."""
        while not self._closing:
            try:
                with self._lock:
                    pending = any(j.state == QUEUED for j in self._jobs.values())
                wanted = pending or self._want_worker
                for worker in self.workers:
                    if worker.process is None and wanted and time.monotonic() >= worker.retry_at:
                        self._try_to_start(worker)
                if self.cluster is not None and time.monotonic() >= self._polled + POLL_SECONDS:
                    self._dispatch_to_cluster()
                    self._poll_cluster()
                    self._polled = time.monotonic()
                running = [w for w in self.workers if w.process is not None]
                if not running:
                    time.sleep(0.05)
                    continue
                self._dispatch()
                ready = wait_for([w.conn for w in running], timeout=0.1)
                for worker in running:
                    if worker.conn in ready:
                        self._receive(worker)
                    elif worker.process is not None and worker.process.poll() is not None:
                        self._worker_died(worker)
            except Exception:  # a bug here must not leave every job queued for good
                LOG.exception("the job monitor recovered from an error")
                time.sleep(0.5)

    def _try_to_start(self, worker: WorkerSlot) -> None:
        try:
            self._start_worker(worker)
            worker.backoff = 1.0
        except Exception as exc:  # OSError (no interpreter, no memory, no process slot) or any other
            self._worker_failed_to_start(worker, exc)
            worker.retry_at, worker.backoff = time.monotonic() + worker.backoff, min(worker.backoff * 2, 30.0)

    def _worker_failed_to_start(self, worker: WorkerSlot, exc: BaseException) -> None:
        """Every queued job that no running worker can take fails with the reason; the next job
        starts a new attempt."""
        where = f" for {worker.device}" if len(self.workers) > 1 else ""
        reason = (
            f"The training worker{where} could not start ({type(exc).__name__}: {str(exc)[:160]}); nothing ran. "
            f"The server tries again in {worker.backoff:.0f} s: press Train again then."
        )
        LOG.warning(reason)
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state == QUEUED and not any(w.process is not None and self._fits(w, job) for w in self.workers):
                    self._end(job, FAILED, reason)
            self._want_worker = False

    def _start_worker(self, worker: WorkerSlot) -> None:
        """`python -m cae worker`, talking over a socket pair in plainly pickled messages (tensors by
        value: multiprocessing's own pickler would send them as shared-memory handles that a process
        it did not start cannot open). Started from this long-lived thread:
        the worker's parent-death signal follows the thread that started it. A pinned worker sees
        only its own device."""
        ours, theirs = socket.socketpair()
        command = [
            sys.executable,
            "-m",
            "cae",
            "worker",
            "--fd",
            str(theirs.fileno()),
            "--runs",
            str(self.runs_dir),
            "--parent",
            str(os.getpid()),
        ]
        path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
        try:
            worker.process = subprocess.Popen(
                command, pass_fds=[theirs.fileno()], env={**os.environ, "PYTHONPATH": path, **pinning(worker.device)}
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        worker.conn = Connection(ours.detach())

    def _fits(self, worker: WorkerSlot, job: Job) -> bool:
        """A task runs on any worker; a training or sweep on one of its device's kind."""
        return job.kind not in TRAINING_KINDS or worker.takes(self._kind_wanted(job))

    def _kind_wanted(self, job: Job) -> str:
        """The device kind a training asks for: its config's, with `auto` as this server resolves
        it (the server's run key assumed the same)."""
        device = job.config.device if job.config is not None else "auto"
        if device != "auto":
            return device
        if self._auto_kind is None:
            self._auto_kind = resolve_device("auto").type
        return self._auto_kind

    def _fail_unservable(self) -> None:
        """A training whose device no worker has fails at once with a sentence (not queued for good)."""
        for job in list(self._jobs.values()):
            if job.state == QUEUED and not any(self._fits(w, job) for w in self.workers):
                devices = ", ".join(str(w.device) for w in self.workers)
                self._end(
                    job,
                    FAILED,
                    f"This server's workers train on {devices} (CAE_DEVICES), none on {self._kind_wanted(job)}; "
                    "choose the device auto and train again.",
                )

    def _dispatch(self) -> None:
        """Each free slot of a running worker takes the oldest queued job that fits it."""
        with self._lock:
            if self.cluster is None:
                self._fail_unservable()
            for index, worker in enumerate(self.workers):
                if worker.process is None:
                    continue
                for slot in ("train", "task"):
                    if worker.busy[slot] is not None:
                        continue
                    job = next(
                        (
                            j
                            for j in self._jobs.values()
                            if j.state == QUEUED
                            and (j.kind in TRAINING_KINDS) == (slot == "train")
                            and self._fits(worker, j)
                        ),
                        None,
                    )
                    if job is not None:
                        job.state, job.started, job.worker, worker.busy[slot] = RUNNING, time.time(), index, job.id
                        self._send(worker, self._command(job))

    @staticmethod
    def _command(job: Job) -> protocol.ToWorker:
        if job.kind == TRAIN:
            return protocol.Train(job.id, job.config.to_dict(), job.origin, job.fingerprint, job.originals.numpy())
        if job.kind == SWEEP:
            return protocol.Sweep(job.id, job.payload, job.origin, job.fingerprint)
        return protocol.Task(job.id, job.kind, job.payload)

    # --- a Ray cluster (cae/cluster.py) ----------------------------------------------------------

    def _dispatch_to_cluster(self) -> None:
        """Each queued training or sweep goes to the cluster while it has room for one more."""
        while True:
            with self._lock:
                job = next(
                    (
                        j
                        for j in self._jobs.values()
                        if j.state == QUEUED and j.kind in TRAINING_KINDS and self.cluster.has_room(self._wants_gpu(j))
                    ),
                    None,
                )
                if job is None:
                    return
                job.state, job.started = RUNNING, time.time()
            try:
                self._send_to_cluster(job)
            except Exception as exc:  # the data could not be loaded or put, the actor not made
                with self._lock:
                    why = f"{type(exc).__name__}: {exc}"
                    self._end(job, FAILED, f"The job could not be sent to the Ray cluster ({why}).")

    def _wants_gpu(self, job: Job) -> bool:
        """A GPU for a job that asks for CUDA, or for `auto` when the cluster has GPUs."""
        device = job.config.device if job.config is not None else "auto"
        return device == "cuda" or (device == "auto" and self.cluster.gpus() > 0)

    def _send_to_cluster(self, job: Job) -> None:
        from cae.cluster import pack
        from cae.experiment import autoencoder_runs
        from cae.worker import HOLD_ENV

        command, gpu = self._command(job), self._wants_gpu(job)
        if isinstance(command, protocol.Train):
            cfg = job.config.replace(device="cpu") if not gpu and job.config.device == "auto" else job.config
            command = protocol.Train(job.id, cfg.to_dict(), job.origin, job.fingerprint, command.originals)
            key = cfg.encoder_from or request_keys(cfg, _Fingerprint(job.fingerprint))[1]
            brought = autoencoder_runs(key, self.runs_dir)[:1]
        else:
            from cae.budget import sweep_folder

            source = Path(job.payload["source"])
            points = sweep_folder(self.runs_dir, source.name, job.fingerprint)
            brought = [source, *([points] if points.is_dir() else [])]
        self.cluster.start(
            job.id,
            protocol.encode(command),
            self.cluster.dataset_ref(job.origin, job.fingerprint),
            pack(brought) if brought else b"",
            gpu,
            os.environ.get(HOLD_ENV),
        )

    def _poll_cluster(self) -> None:
        """What each job's actor sent, applied; a finished run written here; a dead actor's job failed."""
        from cae.cluster import unpack
        from cae.runs import SWEEP_PREFIX

        for job_id in list(self.cluster.running):
            messages, packed, death = self.cluster.collect(job_id)
            if packed:
                unpack(packed, self.runs_dir, replace=SWEEP_PREFIX)
            with self._lock:
                for data in messages:
                    message = protocol.decode(data, protocol.TO_SERVER)
                    if isinstance(message, protocol.Done):  # the node's folder name, in this server's runs folder
                        here = self.runs_dir / Path(message.path).name
                        message = protocol.Done(message.job_id, str(here), message.cached)
                    self._apply(message)
                job = self._jobs.get(job_id)
                if job is None or not job.active or (packed is None and death is None):
                    continue
                if job.cancel_requested:
                    self._end(job, CANCELLED)
                else:
                    self._end(job, FAILED, death or "The Ray worker ended the job without a result; start it again.")

    def _receive(self, worker: WorkerSlot) -> None:
        try:
            message = protocol.decode(worker.conn.recv_bytes(), protocol.TO_SERVER)
        except (EOFError, OSError):  # the worker's end closed: it died
            worker.process.wait(10)
            self._worker_died(worker)
            return
        with self._lock:
            self._apply(message)

    def _apply(self, message: protocol.ToServer) -> None:
        """What the worker reports, applied to its job (a job already forgotten is ignored)."""
        job = self._jobs.get(message.job_id)
        if job is None:
            return
        match message:
            case protocol.Started():
                job.started = time.time()  # it may have waited in the worker's own queue until now
            case protocol.Progress(_, p):
                job.progress = p
                if p.loss == p.loss:  # not NaN
                    job.losses.append((p.phase, p.epoch - 1 + p.batch / p.batches, p.loss))
            case protocol.Epoch(_, phase, row):
                job.epochs.append((phase, row))
            case protocol.Reconstruction(_, epoch, images):
                job.reconstructions.append((epoch, torch.from_numpy(images)))
            case protocol.Held():
                job.held = True
            case protocol.Point(_, point):
                job.result.append(point)
            case protocol.Done(_, path, cached):
                job.run_path, job.cached = Path(path), cached
                self._end(job, DONE, self._claim(job) if job.owner and not job.cached else None)
            case protocol.Result(_, value):
                job.result = value
                self._end(job, DONE)
            case protocol.Cancelled():
                self._end(job, CANCELLED)
            case protocol.Failed(_, error):
                self._end(job, FAILED, error)

    def _claim(self, job: Job) -> str | None:
        """Record the seat that trained this run (classroom mode); a record that fails is said."""
        from cae.classroom import ClassroomError, Ledger

        try:
            Ledger(self.runs_dir).claim_run(job.run_path.name, job.owner)
        except ClassroomError as exc:
            return str(exc)
        return None

    def _worker_died(self, worker: WorkerSlot) -> None:
        """Its running jobs fail with the sentence (or end as cancelled, if asked); others go on."""
        process, conn, worker.process, worker.conn = worker.process, worker.conn, None, None
        exitcode = process.poll()
        conn.close()
        index = self.workers.index(worker)
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state == RUNNING and job.worker == index:
                    self._end(
                        job,
                        CANCELLED if job.cancel_requested else FAILED,
                        None if job.cancel_requested else death_sentence(exitcode),
                    )
            worker.busy = {"train": None, "task": None}
        remove_temporaries(self.runs_dir, process.pid)

    def _stop_worker(self, worker: WorkerSlot) -> None:
        process, conn = worker.process, worker.conn
        if process is None:
            return
        self._send(worker, protocol.Stop())
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if conn is not None:
            conn.close()
        worker.process = worker.conn = None
        remove_temporaries(self.runs_dir, process.pid)


# --- one manager per runs folder, for the whole process ---------------------------------------

_managers: dict[Path, JobManager] = {}
_managers_lock = threading.Lock()


def manager_for(directory: Path | None = None) -> JobManager:
    """The job manager of a runs folder, created once per process. Kept here rather than in a
    Streamlit cache, so "Clear cache" never starts a second one or loses sight of running jobs."""
    folder = runs_dir(directory)
    with _managers_lock:
        if folder not in _managers:
            _managers[folder] = JobManager(folder)
        return _managers[folder]


def shutdown_all() -> None:
    """Stop every manager of this process and its worker (tests call this between tests)."""
    with _managers_lock:
        managers = list(_managers.values())
        _managers.clear()
    for manager in managers:
        manager.shutdown()


@dataclass
class _Fingerprint:
    """What `request_keys` reads of a dataset, where only its fingerprint is at hand."""

    fingerprint: str
