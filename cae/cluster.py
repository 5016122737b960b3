"""Training on a Ray cluster instead of local workers, when CAE_RAY_ADDRESS is set.

Three places, three roles:
- In the web server, `RayCluster` is the queue's backend (cae/pool.py's interface): one member is
  the Ray *driver*, a process of its own (`python -m cae ray-driver`), so nothing of Ray ever runs
  in the web server and a cluster that fails (head lost, client disconnected, object store full)
  fails its jobs with a sentence while the app lives on; the other member is a local worker for
  the pages' shorter tasks.
- The driver connects to the cluster, starts one actor per training or sweep (`num_gpus=1` where
  the server placed the job on CUDA, one CPU otherwise), relays the actors' messages, brings each
  finished run home into the runs folder, and reports the cluster's CPUs and GPUs. When it cannot
  reach the cluster it says why and exits; the queue starts it again for the next job.
- On a node, `Runner` runs the worker's own training code (cae/worker.py) in a folder of its own,
  removed when the job ends, whatever the end.

No shared filesystem is needed: the data travels through Ray's object store, and the runs a job
starts from travel with it. The server decides a job's device, precision and keys (cae.experiment.
Identity) before it is sent, so a node saves the run under the key the server looks for.
`ray` is optional (requirements-cluster.txt). `local` or `local:N` starts a one-machine cluster
inside the driver (N CPUs).
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
from cae.pool import TRAINING, LocalWorker, Member

RAY_ENV = "CAE_RAY_ADDRESS"
POLL_SECONDS = 0.25
RESOURCES_SECONDS = 5.0
LOCAL_OBJECT_STORE = 2 * 1024**3  # a `local` cluster's object store: CIFAR-10's 180 MB and room to spare


class ClusterError(RuntimeError):
    """The cluster cannot be used; the message says why and what to do."""


def ray_address() -> str | None:
    return os.environ.get(RAY_ENV, "").strip() or None


def connect(address: str):
    """The `ray` module, connected to the cluster at `address` (once per process)."""
    try:
        import ray
    except ImportError:
        raise ClusterError(
            f"{RAY_ENV} is set, but Ray is not installed here: `pip install -r requirements-cluster.txt`, "
            f"or unset {RAY_ENV} to train on this machine."
        ) from None
    with _connecting:
        if not ray.is_initialized():
            # this package travels to the nodes with the job (they need not have it installed)
            options = {"log_to_driver": False, "runtime_env": {"py_modules": [str(Path(__file__).resolve().parent)]}}
            if address == "local" or address.startswith("local:"):
                cpus = int(address.split(":")[1]) if ":" in address else None
                options.update(num_cpus=cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE)
            else:
                options.update(address=address)
            try:
                _init_from_a_lasting_thread(ray, options)
            except Exception as exc:  # ConnectionError, a bad address, a refused token...
                raise ClusterError(unreachable_sentence(address, exc)) from None
    return ray


TOKEN_WORDS = ("token", "auth", "unauthenticated", "permission denied")


def unreachable_sentence(address: str, exc: BaseException) -> str:
    """Why the cluster could not be used, naming a token problem when that is the cause."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if any(word in str(exc).lower() for word in TOKEN_WORDS):
        return (
            f"The Ray cluster at {address} refused this server's token ({why}): on the head run `ray get-auth-token`, "
            "then start the app with RAY_AUTH_MODE=token and that token in RAY_AUTH_TOKEN (README: Running it "
            "for a course)."
        )
    token = (
        ""
        if os.environ.get("RAY_AUTH_MODE") == "token"
        else " If its head uses a token (`ray get-auth-token` on the head prints it), start the app with "
        "RAY_AUTH_MODE=token and that token in RAY_AUTH_TOKEN."
    )
    return (
        f"The Ray cluster at {address} cannot be reached ({why}); nothing was started. Check that its head is "
        f"running and its ports are open, then train again.{token}"
    )


_connecting = threading.Lock()


def _init_from_a_lasting_thread(ray, options: dict) -> None:
    """`ray.init` from a thread that lives as long as the process. The services of a local cluster
    die with the thread that started them (their parent-death signal follows the thread), and a
    Streamlit page runs in a thread that ends with the page's run."""
    done, failure = threading.Event(), []

    def keep() -> None:
        try:
            ray.init(**options)
        except Exception as exc:
            failure.append(exc)
        done.set()
        if not failure:
            threading.Event().wait()  # never set: the thread stays, and with it Ray's services

    threading.Thread(target=keep, name="cae-ray", daemon=True).start()
    done.wait()
    if failure:
        raise failure[0]


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
        except Exception as exc:  # RayActorError, WorkerCrashedError, a node that left
            self.send(protocol.Cancelled(job_id) if job.cancelled else protocol.Failed(job_id, died_sentence(exc)))
            return
        finally:
            self.ray.kill(job.actor, no_restart=True)
        if job.cancelled:  # a Stop that came after the last batch: nothing is kept
            self.send(protocol.Cancelled(job_id))
            return
        unpack(packed, self.runs_dir, replace=SWEEP_PREFIX)
        for message in job.held_back:
            self.send(message)

    def relay(self, data: list[bytes], job: RayJob) -> None:
        """The actor's messages, passed on as they are; its last word (done, a result, failed or
        cancelled) is held back until the run is written here, its path made this server's."""

        held = job.held_back
        for raw in data:
            message = protocol.decode(raw, protocol.TO_SERVER)
            if isinstance(message, protocol.Done):
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


RECONNECT_SECONDS = 10


def _sentence(address: str, exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ClusterError) else unreachable_sentence(address, exc)


def lost_sentence(address: str, exc: BaseException | None = None) -> str:
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return (
        f"The Ray cluster at {address} stopped answering{why}, so this job ended; nothing was saved. "
        "Start it again once the cluster is back (the next job connects again)."
    )


def died_sentence(exc: BaseException) -> str:
    kind = type(exc).__name__
    return (
        f"The Ray worker training this job stopped unexpectedly ({kind}); nothing was saved and nothing "
        "was retried. Start the job again."
    )


# --- in the web server: the queue's backend -------------------------------------------------------


class DriverMember(Member):
    """The queue's member that is the driver process: it trains as many jobs at once as the cluster
    has CPUs and GPUs, as it last reported; `reason` is why it last could not reach the cluster."""

    verb = "ray-driver"

    def __init__(self, address: str):
        super().__init__()
        self.address = address
        self.cpus = self.gpus = 0
        self.reported = threading.Event()  # set by its first report, or by its reason for leaving
        self.reason: str | None = None
        self.connected = False  # it reported the cluster's capacity since it last started

    def arguments(self) -> list[str]:
        return ["--address", self.address]

    def room(self, slot: str) -> int:
        return max(1, self.cpus + self.gpus) if slot == TRAINING and self.reason is None else 0

    def absorb(self, message: protocol.ToServer) -> bool:
        if isinstance(message, protocol.Capacity):
            self.cpus, self.gpus, self.reason, self.connected = message.cpus, message.gpus, None, True
        elif isinstance(message, protocol.Unavailable):
            self.reason = message.reason
        else:
            return False
        self.reported.set()
        return True

    def start(self, runs_dir: Path) -> None:
        self.reported.clear()
        self.connected = False
        super().start(runs_dir)

    def lost_sentence(self, exitcode: int | None) -> str:
        """Why its jobs ended; a driver that died before it ever connected leaves its reason too
        (Ray ends a process that cannot reach the head, before any sentence can be sent)."""
        if not self.connected and self.reason is None:
            self.reason = unreachable_sentence(
                self.address, ConnectionError(f"no answer from its head within {RECONNECT_SECONDS} s")
            )
            self.reported.set()
        return self.reason or lost_sentence(self.address)

    def label(self) -> str:
        return f"Ray cluster at {self.address}"


CONNECT_SECONDS = 60.0  # how long a submission waits for a driver that is still connecting


class RayCluster:
    """The queue's backend for a Ray cluster: the driver trains, a local worker runs the pages' tasks."""

    def __init__(self, address: str):
        self.address = address
        self.driver = DriverMember(address)
        self.members: list[Member] = [self.driver, LocalWorker(None, trains=False)]

    def place(self, cfg) -> tuple[str, str | None]:
        """(device kind, precision) on the cluster: CUDA where it has GPUs and the request allows
        them (auto precision there is bf16, which every GPU from Ampere on does natively); else the
        CPU. Raises ClusterError with a sentence while the cluster cannot be reached."""
        self.driver.eager = True  # from the first request on, the driver is kept running
        if self.driver.reason is not None and not self.driver.alive:  # try again now: the head may be back
            self.driver.reported.clear()
            self.driver.retry_at = 0.0
        if not self.driver.reported.wait(CONNECT_SECONDS) or self.driver.reason is not None:
            raise ClusterError(
                self.driver.reason
                or f"The Ray cluster at {self.address} did not answer within "
                f"{CONNECT_SECONDS:.0f} s; nothing was started. Train again in a moment."
            )
        if cfg.device in ("auto", "cuda") and self.driver.gpus > 0:
            return "cuda", "bf16" if cfg.precision == "auto" else cfg.precision
        return ("cpu" if cfg.device == "auto" else cfg.device), None

    def unservable(self, device: str) -> str | None:
        if device == "cpu" or (device == "cuda" and self.driver.gpus > 0):
            return None
        return (
            f"The Ray cluster at {self.address} has no {device.upper()} for this job; "
            "choose the device auto and train again."
        )

    def problem(self) -> str | None:
        return self.driver.reason

    def describe(self) -> str:
        d = self.driver
        return f"Ray cluster at {self.address} ({d.cpus} CPUs, {d.gpus} GPUs)"

    def shutdown(self) -> None:
        pass
