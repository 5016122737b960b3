"""What runs where Ray runs: the driver process (`python -m cae ray-driver`, started by the queue's
Ray backend, cae/cluster.py) and, on each node, one `Runner` actor per job.

The driver connects to the cluster, starts one actor per training or sweep (`num_gpus=1` where the
server placed the job on CUDA, one CPU otherwise), relays the actors' messages as they come, brings
each finished run home into the runs folder (each entry by one atomic rename), and reports the
cluster's CPUs and GPUs every few seconds. When it cannot reach the cluster, or loses it, it says
why (to the server and to each running job) and exits: the web server is never the process that
Ray ends. On a node, `Runner` runs the worker's own training code (cae/worker.py) in a folder of its
own, removed when the job ends, whatever the end.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cae import protocol
from cae.cluster import (
    POLL_SECONDS,
    RECONNECT_SECONDS,
    RESOURCES_SECONDS,
    ClusterError,
    connect,
    lost_sentence,
    unreachable_sentence,
)

# --- runs as bytes ----------------------------------------------------------------------------


def pack(paths: list[Path]) -> bytes:
    """Run folders and sweep folders, each under its own name, as an uncompressed tar in memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path, replace: str | None = None) -> list[str]:
    """Each top entry of a `pack` into `folder`, each by one atomic rename (a half-unpacked entry
    never shows). An entry already there is kept, unless its name starts with `replace` (a sweep's
    folder comes back with more points). Returns the entries' names."""
    from cae.files import write_atomically

    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = tar.getmembers()
        names = sorted({Path(m.name).parts[0] for m in members})
        for name in names:
            if (folder / name).exists() and not (replace and name.startswith(replace)):
                continue
            mine = [m for m in members if Path(m.name).parts[0] == name]

            def fill(tmp: Path, mine=mine, name=name) -> None:
                for member in mine:
                    member.name = str(Path(tmp.name, *Path(member.name).parts[1:]))
                tar.extractall(tmp.parent, members=mine, filter="data")

            write_atomically(folder / name, fill)
    return names


# --- on the node ------------------------------------------------------------------------------


class _Outbox:
    """The worker's connection, held in memory: what it sends waits for the manager to collect."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        with self._lock:
            self._messages.append(data)

    def take(self) -> list[bytes]:
        with self._lock:
            taken, self._messages = self._messages, []
        return taken


class Runner:
    """One job on a Ray node: the worker's training code in a folder of its own (removed when the job
    ends, whatever the end), fed the data and the runs the job needs, its messages held for `drain`,
    the finished run handed back packed."""

    def __init__(self, threads: int, hold_file: str | None = None):
        import torch

        from cae.worker import Worker

        torch.set_num_threads(threads)
        remove_orphan_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        self.outbox = _Outbox()
        self.worker = Worker(self.outbox, self.folder)
        self.worker.hold_file = hold_file

    def pid(self) -> int:
        return os.getpid()

    def drain(self) -> list[bytes]:
        return self.outbox.take()

    def cancel(self, job_id: int) -> None:
        self.worker.cancelled.add(job_id)

    def run(self, command: bytes, dataset, runs: bytes) -> bytes:
        """Train (or sweep) as a local worker would; the new entries of the folder, packed."""
        import shutil

        from cae.runs import SWEEP_PREFIX

        try:
            brought = unpack(runs, self.folder) if runs else []
            message = protocol.decode(command, protocol.TO_WORKER)
            self.worker.datasets = {message.origin: dataset}
            if isinstance(message, protocol.Sweep):
                message.payload["source"] = str(self.folder / Path(message.payload["source"]).name)
            handle = self.worker.sweep if isinstance(message, protocol.Sweep) else self.worker.train
            self.worker.run_one(handle, message)
            made = [p for p in self.folder.iterdir() if not p.name.startswith(".tmp-")]
            return pack([p for p in made if p.name not in brought or p.name.startswith(SWEEP_PREFIX)])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


FOLDER_PREFIX = "cae-ray-"


def remove_orphan_folders(parent: Path | None = None) -> list[str]:
    """Remove the job folders of Ray workers that died before they could (a killed actor cannot
    clean up after itself): `cae-ray-<pid>-*` whose process is gone. Their names."""
    import shutil

    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in parent.glob(f"{FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


# --- the driver: a process of its own beside the web server --------------------------------------


@dataclass
class RayJob:
    actor: object
    result: object  # the ObjectRef of Runner.run
    drain: object = None  # the ObjectRef of a Runner.drain not collected yet
    cancelled: bool = False
    held_back: list = field(default_factory=list)  # its last word, sent once its run is written here


class Driver:
    """Starts one actor per job, relays its messages, brings its run home, reports capacity."""

    def __init__(self, conn, address: str, runs_dir: Path):
        self.conn, self.address, self.runs_dir = conn, address, runs_dir
        self.ray = connect(address)
        self.running: dict[int, RayJob] = {}
        self._datasets: dict[str, object] = {}  # fingerprint -> ObjectRef of the Dataset
        self._actor_class = self.ray.remote(Runner)
        self._reported = 0.0

    def send(self, message) -> None:

        self.conn.send_bytes(protocol.encode(message))

    def report(self, every: float = RESOURCES_SECONDS) -> None:
        """The cluster's CPUs and GPUs, at most every `every` seconds."""

        if time.monotonic() - self._reported >= every:
            resources = self.ray.cluster_resources()
            self.send(protocol.Capacity(int(resources.get("CPU", 0)), int(resources.get("GPU", 0)), self.address))
            self._reported = time.monotonic()

    def handle(self, message) -> None:

        match message:
            case protocol.Train() | protocol.Sweep():
                try:
                    self.start(message)
                except Exception as exc:  # the data could not be loaded or put, the actor not made
                    text = f"The job could not be sent to the Ray cluster ({type(exc).__name__}: {str(exc)[:200]})."
                    self.send(protocol.Failed(message.job_id, text))
            case protocol.Cancel(job_id):
                if (job := self.running.get(job_id)) is not None:
                    job.cancelled = True
                    job.actor.cancel.remote(job_id)
            case protocol.Stop():
                self.shutdown()
                os._exit(0)

    def start(self, message) -> None:
        """The job's actor, given the data's reference and the runs it starts from."""
        from cae.budget import sweep_folder
        from cae.experiment import autoencoder_runs
        from cae.worker import HOLD_ENV

        if isinstance(message, protocol.Train):
            key = message.config.get("encoder_from") or message.identity.autoencoder_key
            brought, gpu = autoencoder_runs(key, self.runs_dir)[:1], message.identity.device == "cuda"
        else:
            source = Path(message.payload["source"])
            points = sweep_folder(self.runs_dir, source.name, message.fingerprint)
            brought, gpu = [source, *([points] if points.is_dir() else [])], message.device == "cuda"
        actor = self._actor_class.options(
            num_cpus=1,
            num_gpus=1 if gpu else 0,
            max_concurrency=3,  # run, drain and cancel at once
            max_restarts=0,
            max_task_retries=0,
        ).remote(1, os.environ.get(HOLD_ENV))
        data = self.dataset_ref(message.origin, message.fingerprint)
        result = actor.run.remote(protocol.encode(message), data, pack(brought) if brought else b"")
        self.running[message.job_id] = RayJob(actor, result)

    def dataset_ref(self, origin: str, fingerprint: str):
        """The data in the object store, put once per fingerprint (loaded here from its source)."""
        if fingerprint not in self._datasets:
            from cae.data import DataError, load_dataset

            dataset = load_dataset(origin, download=False)
            if dataset.fingerprint != fingerprint:
                raise DataError(f"The images at {origin} changed after the page loaded them; open the Data page again.")
            self._datasets = {fingerprint: self.ray.put(dataset)}  # one dataset at a time
        return self._datasets[fingerprint]

    def collect(self) -> None:
        """What each actor sent, passed on; a finished run written here; a dead actor's job failed.
        Never waits for an actor still starting or busy: a drain asked for is collected later."""
        for job_id, job in list(self.running.items()):
            finished = bool(self.ray.wait([job.result], timeout=0)[0])
            if job.drain is not None and (finished or self.ray.wait([job.drain], timeout=0)[0]):
                self.relay(self._messages(job.drain), job)
                job.drain = None
            if not finished:
                if job.drain is None:
                    job.drain = job.actor.drain.remote()
                continue
            self.relay(self._messages(job.actor.drain.remote()), job)  # what it sent after the last drain
            del self.running[job_id]
            self.finish(job_id, job)

    def finish(self, job_id: int, job: RayJob) -> None:
        from cae.runs import SWEEP_PREFIX

        try:
            packed = self.ray.get(job.result)
        except Exception as exc:  # RayActorError, WorkerCrashedError, a node that left, a lost head
            self.send(protocol.Cancelled(job_id) if job.cancelled else protocol.Failed(job_id, self.why_lost(exc)))
            return
        finally:
            self.ray.kill(job.actor, no_restart=True)
        if job.cancelled:  # a Stop that came after the last batch: nothing is kept
            self.send(protocol.Cancelled(job_id))
            return
        unpack(packed, self.runs_dir, replace=SWEEP_PREFIX)
        for message in job.held_back:
            self.send(message)

    def why_lost(self, exc: BaseException, settle: float = 2.0) -> str:
        """The sentence for a job whose actor failed: the cluster's, when its head stops answering
        within `settle` seconds (an actor on the head's node fails before the head is seen gone), else
        the actor's own. The cluster's is sent as this driver's reason first, so the server says it
        from the moment the job fails (a head that does not come back ends this process later: through
        Ray Client, after its reconnect attempts, over 10 s on a busy machine); a report of the
        cluster's resources clears it again."""
        deadline = time.monotonic() + settle
        while True:
            try:
                self.ray.nodes()
            except Exception as lost:
                sentence = lost_sentence(self.address, lost)
                self.send(protocol.Unavailable(sentence))
                return sentence
            if time.monotonic() >= deadline:
                return died_sentence(exc)
            time.sleep(0.5)

    def relay(self, data: list[bytes], job: RayJob) -> None:
        """The actor's messages, passed on as they are; its last word (done, a result, failed or
        cancelled) is held back until the run is written here, its path made this server's."""

        held = job.held_back
        for raw in data:
            message = protocol.decode(raw, protocol.TO_SERVER)
            if isinstance(message, protocol.Done):
                # the load it met on a node says nothing of this machine: left out
                held.append(protocol.Done(message.job_id, str(self.runs_dir / Path(message.path).name), message.cached))
            elif isinstance(message, (protocol.Result, protocol.Failed, protocol.Cancelled)):
                held.append(message)
            else:
                self.conn.send_bytes(raw)

    def _messages(self, ref) -> list[bytes]:
        try:
            return self.ray.get(ref, timeout=30)
        except Exception:  # the actor is gone: what it sent last is lost with it
            return []

    def shutdown(self) -> None:
        for job in self.running.values():
            try:
                self.ray.kill(job.actor, no_restart=True)
            except Exception:
                pass
        self.running.clear()


def drive(fd: int, runs_dir: str, parent_pid: int, address: str) -> None:
    """The driver process's entry point (`python -m cae ray-driver`). A cluster it cannot reach,
    or loses, is said in one sentence to the server (and to each running job), then it exits."""
    import queue

    from cae import protocol
    from cae.worker import die_with_parent

    die_with_parent(parent_pid)
    # a lost head ends this process within seconds rather than the minute Ray waits by default
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(RECONNECT_SECONDS))
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    try:
        driver = Driver(conn, address, Path(runs_dir))
        driver.report(every=0)
    except Exception as exc:
        conn.send_bytes(protocol.encode(protocol.Unavailable(_sentence(address, exc))))
        os._exit(3)
    inbox: queue.Queue = queue.Queue()

    def read() -> None:
        while True:
            try:
                inbox.put(protocol.decode(conn.recv_bytes(), protocol.TO_WORKER))
            except (EOFError, OSError):  # the server closed its end: it is gone or shutting down
                inbox.put(protocol.Stop())
                return

    threading.Thread(target=read, name="cae-driver-inbox", daemon=True).start()
    while True:
        try:
            try:
                driver.handle(inbox.get(timeout=POLL_SECONDS))
                while not inbox.empty():
                    driver.handle(inbox.get_nowait())
            except queue.Empty:
                pass
            driver.collect()
            driver.report()
        except Exception as exc:  # the cluster went away under us: say so to each job, then go
            reason = lost_sentence(address, exc)
            for job_id in driver.running:
                conn.send_bytes(protocol.encode(protocol.Failed(job_id, reason)))
            conn.send_bytes(protocol.encode(protocol.Unavailable(reason)))
            os._exit(3)


def _sentence(address: str, exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ClusterError) else unreachable_sentence(address, exc)


def died_sentence(exc: BaseException) -> str:
    kind = type(exc).__name__
    return (
        f"The Ray worker training this job stopped unexpectedly ({kind}); nothing was saved and nothing "
        "was retried. Start the job again."
    )
