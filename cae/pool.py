"""The processes that run the queue's jobs (cae/jobs.py), and the backend that trains on this
machine's own worker processes (the Ray backend is cae/cluster.py's).

A backend is a few processes (`Member`s) and two rules: where a request trains (`place`) and which
requests it can never serve (`unservable`). Every member is a process of its own that speaks
cae/protocol.py over a socket pair, so a member that dies (a killed worker, a Ray driver that lost
its cluster) fails only its own jobs and never the web server. The queue sees only this interface.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from cae import protocol
from cae.devices import kind_of, pinning, worker_devices

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where `python -m cae` finds this package
TRAINING, TASK = "training", "task"  # the two kinds of slot a member may have


class Member:
    """One process of a backend: how it starts, how many jobs of each kind it runs at once, which
    trainings it takes, and its end of the socket pair. Subclasses say the first three."""

    verb = "worker"  # the `python -m cae` command that runs it
    eager = False  # kept running (started again after it dies) even with nothing queued: a Ray driver

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self.retry_at = 0.0  # when a member that failed to start is tried again
        self.backoff = 1.0

    # --- what a kind of member says -------------------------------------------------------------

    def arguments(self) -> list[str]:
        return []

    def environment(self) -> dict[str, str]:
        return {}

    def room(self, slot: str) -> int:
        """How many jobs of this slot kind (TRAINING or TASK) it runs at once."""
        raise NotImplementedError

    def takes(self, device: str) -> bool:
        """Whether it trains for a request placed on this device kind ("cpu", "cuda", "mps")."""
        return True

    def absorb(self, message: protocol.ToServer) -> bool:
        """A message about the member itself rather than a job; True when it was one."""
        return False

    def lost_sentence(self, exitcode: int | None) -> str:
        return death_sentence(exitcode)

    def label(self) -> str:
        return "worker"

    # --- the process ------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.poll() is None else None

    def start(self, runs_dir: Path) -> None:
        """`python -m cae VERB --fd N ...`, talking over a socket pair in plainly pickled messages
        (tensors by value). Started from the queue's long-lived monitor thread: a child's
        parent-death signal follows the thread that started it."""
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "cae", self.verb, "--fd", str(theirs.fileno()), "--runs", str(runs_dir)]
        command += ["--parent", str(os.getpid()), *self.arguments()]
        path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                command, pass_fds=[theirs.fileno()], env={**os.environ, "PYTHONPATH": path, **self.environment()}
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())

    def send(self, message: protocol.ToWorker) -> None:
        try:
            if self.conn is not None:
                self.conn.send_bytes(protocol.encode(message))
        except (OSError, ValueError):  # it is gone; the monitor notices and says so
            pass

    def receive(self) -> protocol.ToServer | None:
        """The next message, or None when its end closed (it died)."""
        try:
            return protocol.decode(self.conn.recv_bytes(), protocol.TO_SERVER)
        except (EOFError, OSError):
            return None

    def reap(self) -> int | None:
        """Forget the dead process; its exit code."""
        process, conn, self.process, self.conn = self.process, self.conn, None, None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        try:
            return process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(5)

    def stop(self) -> int | None:
        """Ask it to exit, kill it if it does not; its pid (for the temporaries it may leave)."""
        if self.process is None:
            return None
        pid = self.process.pid
        self.send(protocol.Stop())
        self.reap()
        return pid


def death_sentence(exitcode: int | None) -> str:
    """Why a worker stopped, in words, for the job it was running."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = f"killed by the signal {name}"
        if name == "SIGKILL":
            why += ": by an administrator or a process manager, or by the system when it ran out of memory"
        elif name == "SIGTERM":
            why += ": asked to stop by an administrator or a process manager"
    else:
        why = f"exit status {exitcode}"
    return f"The training process stopped unexpectedly ({why}); nothing was saved. Start the job again."


class LocalWorker(Member):
    """`python -m cae worker`: one training and one task at a time (cae/worker.py), pinned to its
    device when CAE_DEVICES names one; `trains=False` keeps it to the pages' tasks."""

    def __init__(self, device: str | None, trains: bool = True):
        super().__init__()
        self.device, self.trains = device, trains

    def environment(self) -> dict[str, str]:
        return pinning(self.device)

    def room(self, slot: str) -> int:
        return int(self.trains) if slot == TRAINING else 1

    def takes(self, device: str) -> bool:
        return self.trains and kind_of(self.device) in (None, device)

    def label(self) -> str:
        return self.device or "worker"


class LocalPool:
    """Trainings and tasks on this machine: one worker, or one per device (CAE_DEVICES)."""

    def __init__(self, devices: list[str | None] | None = None):
        self.members: list[Member] = [LocalWorker(d) for d in (devices or worker_devices())]
        self._auto: str | None = None  # what `auto` means here, asked once

    def place(self, cfg, wait: float = 0.0) -> tuple[str, str | None]:
        """(device kind, precision) a request trains with; None: resolved for that device here (this
        backend answers at once: `wait` is for a cluster's)."""
        if cfg.device != "auto":
            return cfg.device, None
        if self._auto is None:
            from cae.devices import resolve_device

            self._auto = resolve_device("auto").type
        return self._auto, None

    def unservable(self, device: str) -> str | None:
        """A sentence when no member trains on this device kind, else None."""
        if any(m.takes(device) for m in self.members):
            return None
        devices = ", ".join(str(m.device) for m in self.members)
        return (
            f"This server's workers train on {devices} (CAE_DEVICES), none on {device}; "
            "choose the device auto and train again."
        )

    def describe(self) -> str | None:
        """What trains here, for the sidebar; None for the single unpinned worker."""
        devices = [m.device for m in self.members]
        if devices == [None]:
            return None
        return f"{len(devices)} worker{'s' if len(devices) != 1 else ''} on {', '.join(map(str, devices))}"

    def problem(self) -> str | None:
        """Why this backend cannot train now, for every page; None when it can."""
        return None

    def load_now(self) -> float | None:
        """Cores busy with other work on this machine now, the workers' own left out (cae.load)."""
        from cae.load import load_now

        return load_now(tuple(pid for m in self.members if (pid := m.pid)))

    def shutdown(self) -> None:
        pass
