"""Training on a Ray cluster instead of local workers, when CAE_RAY_ADDRESS is set.

The job manager (cae/jobs.py) hands each training and label-budget sweep to a Ray actor, one per
job (`num_gpus=1` when the job asks for CUDA, or for `auto` on a cluster with GPUs; one CPU
otherwise), and keeps the pages' shorter tasks on its local worker. The actor runs the worker's own
training code (cae/worker.py) on the node, so progress, epochs, reconstructions, cancel (between
batches) and failures reach the page as from a local worker: the manager collects the actor's
messages a few times a second.

No shared filesystem is needed: the data travels through Ray's object store, the runs a job starts
from (a reused autoencoder, a transfer's source, a sweep's source and finished points) travel with
the job, and the node trains into a temporary folder of its own. The finished run comes back as
bytes and the web server writes it into its runs folder with the usual atomic rename. The node
decides the device and the precision, so the run is saved under the node's key.

A Ray worker or node that dies fails its job with one sentence; nothing is retried and nothing of
it is written here. `ray` is optional (requirements-cluster.txt), imported only when the variable
is set. `local` or `local:N` starts a one-machine cluster inside the web server (N CPUs).
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
                why = f"{type(exc).__name__}: {exc}"
                raise ClusterError(f"The Ray cluster at {address} could not be reached ({why}).") from None
    return ray


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
    """One job on a Ray node: the worker's training code in a folder of its own, fed the data and
    the runs the job needs, its messages held for `drain`, the finished run handed back packed."""

    def __init__(self, threads: int, hold_file: str | None = None):
        import torch

        from cae.worker import Worker

        torch.set_num_threads(threads)
        self.folder = Path(tempfile.mkdtemp(prefix="cae-ray-"))
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
        from cae import protocol

        brought = unpack(runs, self.folder) if runs else []
        message = protocol.decode(command, protocol.TO_WORKER)
        self.worker.datasets = {message.origin: dataset}
        if isinstance(message, protocol.Sweep):
            message.payload["source"] = str(self.folder / Path(message.payload["source"]).name)
        handle = self.worker.sweep if isinstance(message, protocol.Sweep) else self.worker.train
        self.worker.run_one(handle, message)
        from cae.runs import SWEEP_PREFIX

        made = [p for p in self.folder.iterdir() if not p.name.startswith(".tmp-")]
        return pack([p for p in made if p.name not in brought or p.name.startswith(SWEEP_PREFIX)])


# --- in the web server ------------------------------------------------------------------------


@dataclass
class RayJob:
    actor: object
    result: object  # the ObjectRef of Runner.run
    gpu: bool
    drain: object = None  # the ObjectRef of a Runner.drain not collected yet


class Cluster:
    """The web server's side: starts one actor per job, collects its messages, brings its run home."""

    def __init__(self, address: str):
        self.ray = connect(address)
        self.address = address
        self.running: dict[int, RayJob] = {}
        self._datasets: dict[str, object] = {}  # fingerprint -> ObjectRef of the Dataset
        self._actor_class = None
        self._asked: tuple[float, dict] | None = None  # (when, cluster_resources())

    def _resources(self) -> dict:
        """The cluster's CPUs and GPUs, asked at most every RESOURCES_SECONDS (pages and the
        monitor's polls read them often; nodes come and go rarely)."""
        now = time.monotonic()
        if self._asked is None or now - self._asked[0] > RESOURCES_SECONDS:
            self._asked = (now, self.ray.cluster_resources())
        return self._asked[1]

    def gpus(self) -> int:
        return int(self._resources().get("GPU", 0))

    def capacity(self, gpu: bool) -> int:
        """How many jobs of this kind the cluster runs at once (one CPU or one GPU each)."""
        return int(self._resources().get("GPU" if gpu else "CPU", 0))

    def has_room(self, gpu: bool) -> bool:
        return sum(j.gpu == gpu for j in self.running.values()) < max(1, self.capacity(gpu))

    def dataset_ref(self, origin: str, fingerprint: str):
        """The data in the object store, put once per fingerprint (loaded here from its source)."""
        if fingerprint not in self._datasets:
            from cae.data import DataError, load_dataset

            dataset = load_dataset(origin, download=False)
            if dataset.fingerprint != fingerprint:
                raise DataError(f"The images at {origin} changed after the page loaded them; open the Data page again.")
            self._datasets = {fingerprint: self.ray.put(dataset)}  # one dataset at a time
        return self._datasets[fingerprint]

    def start(self, job_id: int, command: bytes, dataset_ref, runs: bytes, gpu: bool, hold_file: str | None) -> None:
        if self._actor_class is None:
            self._actor_class = self.ray.remote(Runner)
        actor = self._actor_class.options(
            num_cpus=1,
            num_gpus=1 if gpu else 0,
            max_concurrency=3,  # run, drain and cancel at once
            max_restarts=0,
            max_task_retries=0,
        ).remote(1, hold_file)
        self.running[job_id] = RayJob(actor, actor.run.remote(command, dataset_ref, runs), gpu)

    def cancel(self, job_id: int) -> None:
        if (job := self.running.get(job_id)) is not None:
            job.actor.cancel.remote(job_id)

    def pid_of(self, job_id: int) -> int | None:
        """The process id of the Ray worker that trains a job (tests kill it)."""
        job = self.running.get(job_id)
        return None if job is None else self.ray.get(job.actor.pid.remote(), timeout=30)

    def collect(self, job_id: int) -> tuple[list[bytes], bytes | None, str | None]:
        """(messages so far, the packed result once finished, why it died if it did). Never waits
        for an actor still starting or busy: a drain asked for is collected on a later call."""
        job = self.running[job_id]
        finished = bool(self.ray.wait([job.result], timeout=0)[0])
        messages: list[bytes] = []
        if job.drain is not None and (finished or self.ray.wait([job.drain], timeout=0)[0]):
            messages += self._messages(job.drain)
            job.drain = None
        if not finished:
            if job.drain is None:
                job.drain = job.actor.drain.remote()
            return messages, None, None
        messages += self._messages(job.actor.drain.remote())  # what it sent after the last drain
        del self.running[job_id]
        try:
            packed = self.ray.get(job.result)
        except Exception as exc:  # RayActorError, WorkerCrashedError, a node that left
            return messages, None, died_sentence(exc)
        finally:
            self.ray.kill(job.actor, no_restart=True)
        return messages, packed, None

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


def died_sentence(exc: BaseException) -> str:
    kind = type(exc).__name__
    return (
        f"The Ray worker training this job stopped unexpectedly ({kind}); nothing was saved and nothing "
        "was retried. Start the job again."
    )
