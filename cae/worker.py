"""The worker: a process of its own that trains and runs the pages' longer computations, so the
web server never does. The job manager (cae/jobs.py) starts it as `python -m cae worker --fd N`
and talks to it over a socket pair: commands in, progress and results out.

Inside, one thread trains (one job at a time) and one runs short tasks (an evaluation, a timing);
they take turns batch by batch through a fair lock, so a task waits at most one training batch.
The worker runs below the web server's CPU priority, and dies with its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path

from cae import protocol
from cae.load import LoadMeter

HOLD_ENV = "CAE_WORKER_HOLD"  # tests: while the file it names exists, training holds before each batch
NICENESS = 10


class TurnLock:
    """A re-entrant lock handed over in arrival order, with `yield_turn` for a long holder: a thread
    that yields queues behind the threads already waiting (a plain Lock lets a training loop take
    it back at once and starve the others)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            ticket = object()
            self._queue.append(ticket)
            while self._owner is not None or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a TurnLock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def yield_turn(self) -> None:
        """Let every thread already waiting go first, then carry on (held at any depth)."""
        if self._queue:
            with self.released():
                pass

    @contextlib.contextmanager
    def released(self):
        """Give the lock up entirely while the block runs (e.g. while waiting), then take it back."""
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a TurnLock this thread does not hold")
            depth, self._depth, self._owner = self._depth, 0, None
            self._cond.notify_all()
        try:
            yield
        finally:
            self.acquire()
            with self._cond:
                self._depth = depth

    def __enter__(self) -> "TurnLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# --- the process ----------------------------------------------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """Exit when the web server goes, however it goes: the kernel's parent-death signal (Linux),
    and a watchdog for the rest."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # it went before the signal was set up
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def serve(fd: int, runs_dir: str, parent_pid: int) -> None:
    """The worker process's entry point: `fd` is its end of the manager's socket pair."""
    die_with_parent(parent_pid)
    try:  # before torch starts its threads, which inherit it
        os.setpriority(os.PRIO_PROCESS, 0, NICENESS)
    except (AttributeError, OSError):
        pass
    import torch

    from cae.devices import worker_threads

    torch.set_num_threads(worker_threads())
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write("cae-worker")
    except OSError:
        pass
    Worker(Connection(fd), Path(runs_dir)).run()


class Worker:
    """Reads commands from the pipe; a training thread and a task thread do the work."""

    def __init__(self, conn: Connection, runs_dir: Path):
        self.conn, self.runs_dir = conn, runs_dir
        self.send_lock = threading.Lock()
        self.turns = TurnLock()
        self.cancelled: set[int] = set()
        self.training: queue.Queue = queue.Queue()
        self.tasks: queue.Queue = queue.Queue()
        self.datasets: dict[str, object] = {}
        self.hold_file = os.environ.get(HOLD_ENV)

    def send(self, message: protocol.ToServer) -> None:
        with self.send_lock:
            self.conn.send_bytes(protocol.encode(message))

    def run(self) -> None:
        for inbox in (self.training, self.tasks):
            threading.Thread(target=self.loop, args=(inbox,), daemon=True).start()
        while True:
            try:
                message = protocol.decode(self.conn.recv_bytes(), protocol.TO_WORKER)
            except (EOFError, OSError):  # the manager closed the pipe: it is gone or shutting down
                os._exit(0)
            match message:
                case protocol.Train():
                    self.training.put((self.train, message))
                case protocol.Sweep():
                    self.training.put((self.sweep, message))
                case protocol.Task():
                    self.tasks.put((self.task, message))
                case protocol.Cancel(job_id):
                    self.cancelled.add(job_id)
                case protocol.Stop():
                    os._exit(0)

    def loop(self, inbox: queue.Queue) -> None:
        """Run the jobs of one inbox in turn (training and sweeps, or tasks); a failed job is
        reported and the next one runs."""
        while True:
            self.run_one(*inbox.get())

    def run_one(self, handle, message) -> None:
        """One job: started, done, and a failure reported as a sentence (never raised)."""
        from cae.runs import USER_ERRORS

        try:
            self.send(protocol.Started(message.job_id, os.getpid()))
            handle(message)
        except USER_ERRORS as exc:
            self.send(protocol.Failed(message.job_id, str(exc)))
        except Exception as exc:  # a failed job must not stop the worker
            self.send(protocol.Failed(message.job_id, failure_sentence(exc)))

    # --- training -----------------------------------------------------------------------------

    def train(self, message: protocol.Train) -> None:
        import torch

        from cae.config import Config
        from cae.experiment import train_or_load
        from cae.explain import reconstruct

        job_id = message.job_id
        cfg, dataset = Config.from_dict(message.config), self.dataset(message.origin, message.fingerprint)
        originals = torch.from_numpy(message.originals)

        def on_epoch(phase: str, row: dict, model) -> None:
            self.send(protocol.Epoch(job_id, phase, row))
            if phase == "autoencoder" and cfg.objective != "contrastive":  # it trains no decoder
                self.send(protocol.Reconstruction(job_id, row["epoch"], reconstruct(model, originals).numpy()))

        with self.turns:
            meter = LoadMeter()
            outcome = train_or_load(
                cfg,
                dataset,
                self.runs_dir,
                on_progress=lambda p: self.send(protocol.Progress(job_id, p)),
                should_stop=lambda: self.should_stop(job_id),
                on_epoch=on_epoch,
                identity=message.identity,
            )
        if outcome.cancelled:
            self.send(protocol.Cancelled(job_id))
        else:
            load = meter.demand(torch.get_num_threads(), os.cpu_count() or 1)
            self.send(protocol.Done(job_id, str(outcome.path), outcome.cached, load))

    def sweep(self, message: protocol.Sweep) -> None:
        """The label-budget experiment, point by point; each point is reported as it finishes and
        each is kept as a run in the sweep's folder, and the whole in its results file
        (`budget.sweep_folder`, `budget.results_file`)."""
        from cae import budget
        from cae.files import write_atomically
        from cae.runs import load_run

        job_id, payload = message.job_id, message.payload
        source, dataset = load_run(payload["source"]), self.dataset(message.origin, message.fingerprint)

        folder = budget.sweep_folder(self.runs_dir, source.name, dataset.fingerprint)
        with self.turns:
            points = budget.run_sweep(
                source,
                dataset,
                payload["budgets"],
                payload["seeds"],
                payload.get("steps", budget.STEPS),
                lambda p: self.send(protocol.Progress(job_id, p)),
                lambda: self.should_stop(job_id),
                folder,
                on_point=lambda point: self.send(protocol.Point(job_id, point)),
            )
        if points is None:
            self.send(protocol.Cancelled(job_id))
            return
        text = json.dumps({"source": source.name, "dataset": dataset.summary(), "points": points}, indent=1)
        write_atomically(
            budget.results_file(self.runs_dir, source.name, dataset.fingerprint),
            lambda tmp: tmp.write_text(text),
            folder=False,
        )
        self.send(protocol.Result(job_id, points))

    def should_stop(self, job_id: int) -> bool:
        """Asked before each batch: wait at the test barrier, let a task have its turn, then say
        whether the job was cancelled."""
        self.hold(job_id)
        self.turns.yield_turn()
        return job_id in self.cancelled

    def hold(self, job_id: int) -> None:
        """The test barrier: while the hold file exists, wait here (before a batch), said once."""
        if not self.hold_file or not os.path.exists(self.hold_file):
            return
        self.send(protocol.Held(job_id))
        with self.turns.released():  # tasks may run meanwhile
            while os.path.exists(self.hold_file) and job_id not in self.cancelled:
                time.sleep(0.02)

    def dataset(self, origin: str, fingerprint: str):
        """The dataset the page saw, loaded here from its source (kept for the next job)."""
        from cae.data import DataError, load_dataset

        dataset = self.datasets.get(origin)
        if dataset is None or dataset.fingerprint != fingerprint:
            self.datasets.clear()  # one dataset at a time: the last one's tensors are released
            dataset = self.datasets[origin] = load_dataset(origin, download=False)
        if dataset.fingerprint != fingerprint:
            raise DataError(
                f"The images at {origin} changed after the page loaded them; open the Data page again and retry."
            )
        return dataset

    # --- tasks: the pages' longer computations --------------------------------------------------

    def task(self, message: protocol.Task) -> None:
        from cae.tasks import TASKS

        with self.turns:
            result = TASKS[message.kind](message.payload, self.dataset)
        self.send(protocol.Result(message.job_id, result))


OUT_OF_MEMORY = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")


def failure_sentence(exc: BaseException) -> str:
    """One sentence for an unexpected error, out-of-memory said plainly."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or any(m in text.lower() for m in OUT_OF_MEMORY):
        return (
            f"The device ran out of memory; use a smaller batch size or fewer images, and train again. ({text[:200]})"
        )
    return f"{type(exc).__name__}: {text[:300]}"
