"""The queue: trainings, label-budget sweeps and the pages' longer computations, run by a backend's
processes (cae/pool.py: this machine's workers; cae/cluster.py: a Ray cluster), never by the web server.

One manager per runs folder for the whole server (kept in this module, so Streamlit's "Clear
cache" cannot start a second one). Its rules: a request's identity (device, precision, keys) is
decided once, at submission, by the backend that will run it; the same request from two sessions
is one job; a saved run is found (once, outside the lock) instead of trained; other requests queue
and each free slot of a running member takes the oldest job that fits it; a Stop at any moment
ends the job cancelled (sending and cancelling happen under one lock, in order); a member that dies
fails only its own jobs with its sentence, and a new one takes its place.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
from collections import OrderedDict
from multiprocessing.connection import wait as wait_for
from pathlib import Path

import torch

from cae import protocol
from cae.config import Config
from cae.data import UPLOADS, Dataset, cache_dir
from cae.experiment import Identity, identify
from cae.explain import fixed_test_images
from cae.files import remove_temporaries
from cae.job import (
    CANCELLED,
    DONE,
    FAILED,
    KEEP_FINISHED,
    QUEUED,
    RUNNING,
    SWEEP,
    TRAIN,
    Job,
    Refused,
)
from cae.pool import TASK, TRAINING, LocalPool, Member
from cae.runs import find_run, runs_dir
from cae.timing import Pace

LOG = logging.getLogger("cae.jobs")


def choose_backend():
    """A Ray cluster when CAE_RAY_ADDRESS names one, else this machine's workers (CAE_DEVICES)."""
    from cae.cluster import RayCluster, ray_address

    address = ray_address()
    return RayCluster(address) if address else LocalPool()


class JobQueue:
    """The queue's state and the questions pages ask of it: the jobs (oldest first, the last
    KEEP_FINISHED finished ones kept), the sessions watching each, counts and places. Changed only
    under its lock, by the JobManager that holds it."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = False

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

    def active_training_count(self) -> int:
        """Trainings and sweeps queued or running, every seat's."""
        with self._lock:
            return sum(j.trains and j.active for j in self._jobs.values())

    def recent_paces(self, last: int = 5) -> list[Pace]:
        """Seconds per planned MFLOP of the last finished trainings here, oldest first: each one's
        whole time (start to end, over its planned work), with the load it met."""
        with self._lock:
            done = [
                j
                for j in self._jobs.values()
                if j.kind == TRAIN and j.state == DONE and not j.cached and j.progress and j.progress.work > 0
            ]
        return [Pace(j.elapsed() / j.progress.work, j.load, j.progress.work) for j in done if j.started][-last:]

    def queue_length(self) -> int:
        """Trainings and sweeps waiting for a training slot."""
        with self._lock:
            return sum(j.trains and j.state == QUEUED for j in self._jobs.values())

    def place_in_queue(self, job_id: int) -> int | None:
        """1 for the training job that runs next, 2 after it...; None when it is not queued."""
        with self._lock:
            queued = [j.id for j in self._jobs.values() if j.trains and j.state == QUEUED]
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
        self._forget_old()

    def _forget_old(self) -> None:
        """Keep the last KEEP_FINISHED finished jobs (their runs are on disk); never an active one."""
        finished = [j for j in self._jobs.values() if not j.active]
        for old in finished[: max(len(finished) - KEEP_FINISHED, 0)]:
            del self._jobs[old.id]


class JobManager(JobQueue):
    """The queue's actions: submissions, cancel, and one monitor thread that starts the backend's
    members, hands them jobs and applies what they report."""

    def __init__(self, directory: Path | None = None, devices: list[str | None] | None = None, backend=None):
        self.runs_dir = runs_dir(directory)
        for folder in (self.runs_dir, cache_dir(), cache_dir() / UPLOADS):  # left by processes that died
            remove_temporaries(folder)
        self.backend = backend or (LocalPool(devices) if devices else choose_backend())
        self.members: list[Member] = self.backend.members
        super().__init__()
        self._want_worker = False
        self._monitor = threading.Thread(target=self._watch, name="cae-jobs", daemon=True)
        self._monitor.start()
        atexit.register(self.shutdown)

    # --- what pages call -------------------------------------------------------------------

    def identity(self, cfg: Config, fingerprint: str, wait: float | None = None) -> Identity:
        """Where this request would train and its keys, as the backend places it (a ClusterError
        with a sentence while a cluster cannot be reached; a page that only looks passes wait=0)."""
        device, precision = self.backend.place(cfg) if wait is None else self.backend.place(cfg, wait)
        return identify(cfg, fingerprint, device, precision)

    def submit(
        self, cfg: Config, dataset: Dataset, watcher: str | None = None, owner: str | None = None, admit=None
    ) -> Job:
        """Attach to the job for this request if one is queued or running (and not being
        cancelled), reuse a saved run, or queue a new job. A new job belongs to `owner` (a
        classroom seat); an attached job keeps its owner, and a saved run found belongs to nobody new.
        `admit(jobs)` (classroom caps) decides under the queue's lock whether a new job may join
        the jobs as they are then: a sentence refuses it (Refused), so two seats submitting at the
        same instant cannot both pass a cap."""
        identity = self.identity(cfg, dataset.fingerprint)
        with self._lock:
            self._check_open()
            job = self._attachable(identity.key)
        found = None if job is not None else find_run(identity.key, self.runs_dir)  # once, never under the lock
        with self._lock:
            job = self._attachable(identity.key)
            if job is None:
                self._admit(admit, found)
                job = Job(next(self._ids), TRAIN, identity.key, cfg, identity, identity.device, dataset.origin)
                job.fingerprint, job.originals, job.owner = dataset.fingerprint, fixed_test_images(dataset), owner
                if found is not None:
                    job.state, job.run_path, job.cached, job.owner = DONE, found, True, None
                    job.started = job.finished = time.time()
                elif reason := self.backend.unservable(identity.device):
                    self._end(job, FAILED, reason)
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
        admit=None,
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
        device, _ = self.backend.place(Config())
        with self._lock:
            self._check_open()
            job = self._attachable(key)
            if job is None:
                self._admit(admit)
                job = self._add(Job(next(self._ids), SWEEP, key, device=device, origin=dataset.origin))
                job.fingerprint, job.payload, job.result, job.owner = dataset.fingerprint, payload, [], owner
            if watcher:
                job.watchers.add(watcher)
            return job

    def _admit(self, admit, found: Path | None = None) -> None:
        """Under the lock: Refused when `admit` refuses a new job (a saved run found costs nothing)."""
        if admit is not None and found is None and (reason := admit(list(self._jobs.values()))):
            raise Refused(reason)

    def compute(self, kind: str, payload: dict) -> Job:
        """A page's longer computation (cae/tasks.py), run by a worker beside any training. A
        finished one with the same key is handed back (a page that polls briefly may miss the
        moment it ended; asking again must not start it again, or a short task runs for ever)."""
        key = f"{kind}:{sorted(payload.items())}"
        with self._lock:
            self._check_open()
            done = next((j for j in reversed(self._jobs.values()) if j.key == key and j.state == DONE), None)
            return self._attachable(key) or done or self._add(Job(next(self._ids), kind, key, payload=payload))

    def cancel(self, job_id: int) -> None:
        """A queued job ends at once; a running one stops within one batch (it says "cancelling").
        Under the lock that dispatch holds while it sends: the member always hears of the job first."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return
            if job.state == QUEUED:
                self._end(job, CANCELLED)
            elif not job.cancel_requested:
                job.cancel_requested = True
                self.members[job.worker].send(protocol.Cancel(job.id))

    def training_counts(self) -> tuple[int, int]:
        """(trainings and sweeps running now, how many can run at once), from the queue's own state."""
        with self._lock:
            running = sum(j.trains and j.state == RUNNING for j in self._jobs.values())
        return running, sum(m.room(TRAINING) for m in self.members)

    def start_worker(self) -> None:
        """Start the workers now (in the background) so the first job does not wait for them."""
        self._want_worker = True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every job and stop every member; no process is left behind."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            for job in list(self._jobs.values()):
                if job.active:
                    self._end(job, CANCELLED)
        self._monitor.join(timeout)
        for member in self.members:
            remove_temporaries(self.runs_dir, member.stop())
        self.backend.shutdown()

    def _fits(self, member: Member, slot: str, job: Job) -> bool:
        if job.trains != (slot == TRAINING):
            return False
        return slot == TASK or member.takes(job.device)

    def _dispatch(self) -> None:
        """Each free slot of a running member takes the oldest queued job that fits it; sent under
        the lock, so a Stop pressed meanwhile reaches the member after the job it stops."""
        with self._lock:
            for index, member in enumerate(self.members):
                if not member.alive:
                    continue
                for slot in (TRAINING, TASK):
                    running = sum(
                        j.state == RUNNING and j.worker == index and j.trains == (slot == TRAINING)
                        for j in self._jobs.values()
                    )
                    free = member.room(slot) - running
                    for job in [j for j in self._jobs.values() if j.state == QUEUED and self._fits(member, slot, j)]:
                        if free <= 0:
                            break
                        job.state, job.started, job.worker, free = RUNNING, time.time(), index, free - 1
                        member.send(self._command(job))

    @staticmethod
    def _command(job: Job) -> protocol.ToWorker:
        if job.kind == TRAIN:
            originals = job.originals.numpy()
            return protocol.Train(job.id, job.config.to_dict(), job.origin, job.fingerprint, originals, job.identity)
        if job.kind == SWEEP:
            return protocol.Sweep(job.id, job.payload, job.origin, job.fingerprint, job.device)
        return protocol.Task(job.id, job.kind, job.payload)

    # --- the monitor thread --------------------------------------------------------------------

    def _watch(self) -> None:
        """Start the members when there is work (a Ray driver at once), hand them jobs, apply what
        they report, and notice when one dies. Never dies itself: a member that cannot start fails
        the jobs no other member can take with a sentence, and is tried again later (1 s, doubling
        up to 30 s)."""
        while not self._closing:
            try:
                with self._lock:
                    wanted = self._want_worker or any(j.state == QUEUED for j in self._jobs.values())
                for member in self.members:
                    if not member.alive and (wanted or member.eager) and time.monotonic() >= member.retry_at:
                        self._try_to_start(member)
                alive = [m for m in self.members if m.alive]
                if not alive:
                    time.sleep(0.05)
                    continue
                self._dispatch()
                ready = wait_for([m.conn for m in alive], timeout=0.1)
                for member in alive:
                    if member.conn in ready:
                        self._receive(member)
                    elif member.process is not None and member.process.poll() is not None:
                        self._member_died(member)
            except Exception:  # a bug here must not leave every job queued for good
                LOG.exception("the job monitor recovered from an error")
                time.sleep(0.5)

    def _try_to_start(self, member: Member) -> None:
        try:
            member.start(self.runs_dir)
        except Exception as exc:  # OSError (no interpreter, no memory, no process slot) or any other
            why = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or 'see the server log'}"
            LOG.warning("the %s could not start: %r", member.label(), exc)
            self._fail_stranded(
                f"The training worker{self._for(member)} could not start ({why}); nothing ran. "
                f"The server tries again in {member.backoff:.0f} s: press Train again then."
            )
            self._back_off(member)

    def _for(self, member: Member) -> str:
        return f" for {member.label()}" if len(self.members) > 1 else ""

    @staticmethod
    def _back_off(member: Member) -> None:
        member.retry_at, member.backoff = time.monotonic() + member.backoff, min(member.backoff * 2, 30.0)

    def _fail_stranded(self, reason: str) -> None:
        """Every queued job that no running member can take fails with the reason; the next job
        starts a new attempt."""
        with self._lock:
            for job in list(self._jobs.values()):
                slot = TRAINING if job.trains else TASK
                if job.state == QUEUED and not any(
                    m.alive and m.room(slot) and self._fits(m, slot, job) for m in self.members
                ):
                    self._end(job, FAILED, reason)
            self._want_worker = False

    def _receive(self, member: Member) -> None:
        message = member.receive()
        if message is None:  # its end closed: it died
            self._member_died(member)
        elif member.absorb(message):
            if isinstance(message, protocol.Capacity):
                member.backoff = 1.0
        else:
            with self._lock:
                self._apply(message)

    def _apply(self, message: protocol.ToServer) -> None:
        """What a member reports, applied to its job (a job already forgotten is ignored)."""
        job = self._jobs.get(message.job_id)
        if job is None:
            return
        match message:
            case protocol.Started(_, pid):
                job.started, job.pid = time.time(), pid  # it may have waited in the worker's own queue
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
            case protocol.Done(_, path, cached, load):
                from cae.classroom import record_owner

                job.run_path, job.cached, job.load = Path(path), cached, load
                self._end(job, DONE, record_owner(self.runs_dir, job) if job.owner and not cached else None)
            case protocol.Result(_, value):
                job.result = value
                self._end(job, DONE)
            case protocol.Cancelled():
                self._end(job, CANCELLED)
            case protocol.Failed(_, error):
                self._end(job, FAILED, error)

    def _member_died(self, member: Member) -> None:
        """Its running jobs fail with its sentence (or end as cancelled, if asked); others go on."""
        pid = member.process.pid if member.process is not None else None
        exitcode = member.reap()
        index = self.members.index(member)
        sentence = member.lost_sentence(exitcode)
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state == RUNNING and job.worker == index:
                    self._end(
                        job, CANCELLED if job.cancel_requested else FAILED, None if job.cancel_requested else sentence
                    )
        if getattr(member, "reason", None):  # a driver that cannot reach its cluster
            self._fail_stranded(member.reason)
            self._back_off(member)
        remove_temporaries(self.runs_dir, pid)


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
    """Stop every manager of this process and its members (tests call this between tests)."""
    with _managers_lock:
        managers = list(_managers.values())
        _managers.clear()
    for manager in managers:
        manager.shutdown()
