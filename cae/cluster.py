"""Training on a Ray cluster instead of local workers, when CAE_RAY_ADDRESS is set.

Three places, three roles (the last two in cae/raydriver.py):
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

import os
import threading
from pathlib import Path

from cae import protocol
from cae.pool import TRAINING, LocalWorker, Member

RAY_ENV = "CAE_RAY_ADDRESS"
POLL_SECONDS = 0.25
RESOURCES_SECONDS = 5.0
# A ray:// head starts a server of its own for each client before it answers (tens of seconds on a
# busy head; Ray's 5 s first try, then 10 and 15, timed out in the test suite): 15, 20 and 25 s here
CLIENT_CONNECT_SECONDS = "15"
NOT_SHIPPED = ["assets/cifar10-sample.npz", "__pycache__"]  # what nodes never read
LOCAL_OBJECT_STORE = 2 * 1024**3  # a `local` cluster's object store: CIFAR-10's 180 MB and room to spare


class ClusterError(RuntimeError):
    """The cluster cannot be used; the message says why and what to do."""


def ray_address() -> str | None:
    return os.environ.get(RAY_ENV, "").strip() or None


def connect(address: str):
    """The `ray` module, connected to the cluster at `address` (once per process)."""
    if address.startswith("ray://"):  # read when Ray's client is imported: set before `import ray`
        os.environ.setdefault("RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S", CLIENT_CONNECT_SECONDS)
    try:
        import ray
    except ImportError:
        raise ClusterError(
            f"{RAY_ENV} is set, but Ray is not installed here: `pip install -r requirements-cluster.txt`, "
            f"or unset {RAY_ENV} to train on this machine."
        ) from None
    with _connecting:
        if not ray.is_initialized():
            # this package travels to the nodes with the job (they need not have it installed), without
            # the bundled sample (3.4 MB): the driver loads the data and sends it through the object store
            package = {"py_modules": [str(Path(__file__).resolve().parent)], "excludes": NOT_SHIPPED}
            options = {"log_to_driver": False, "runtime_env": package}
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


RECONNECT_SECONDS = 10


def lost_sentence(address: str, exc: BaseException | None = None) -> str:
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return (
        f"The Ray cluster at {address} stopped answering{why}, so this job ended; nothing was saved. "
        "Start it again once the cluster is back (the next job connects again)."
    )


# --- in the web server: the queue's backend -------------------------------------------------------


class DriverMember(Member):
    """The queue's member that is the driver process: it trains as many jobs at once as the cluster
    has CPUs and GPUs, as it last reported; `reason` is why it last could not reach the cluster."""

    verb = "ray-driver"
    eager = True  # started with the server and again after it dies: the sidebar says the cluster's state

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
        """Why its jobs ended, kept as the backend's problem until a new driver reports the cluster
        again: a driver that died leaves its reason even when it could not send it (Ray ends a process
        that cannot reach the head, before any sentence can be sent; on a busy machine the page said
        nothing for over 10 s)."""
        if self.reason is None:
            self.reason = (
                lost_sentence(self.address)
                if self.connected
                else unreachable_sentence(
                    self.address, ConnectionError(f"no answer from its head within {RECONNECT_SECONDS} s")
                )
            )
            self.reported.set()
        return self.reason

    def label(self) -> str:
        return f"Ray cluster at {self.address}"


# how long a submission waits for a driver that is still connecting (a ray:// head answers a client
# only after starting a server for it and unpacking this package there: tens of seconds when busy)
CONNECT_SECONDS = 120.0


class RayCluster:
    """The queue's backend for a Ray cluster: the driver trains, a local worker runs the pages' tasks."""

    def __init__(self, address: str):
        self.address = address
        self.driver = DriverMember(address)
        self.members: list[Member] = [self.driver, LocalWorker(None, trains=False)]

    def place(self, cfg, wait: float = CONNECT_SECONDS) -> tuple[str, str | None]:
        """(device kind, precision) on the cluster: CUDA where it has GPUs and the request allows
        them (auto precision there is bf16, which every GPU from Ampere on does natively); else the
        CPU. Raises ClusterError with a sentence while the cluster cannot be reached; a submission
        waits up to `wait` seconds for a driver that is connecting, and asks a lost one to try again."""
        if wait and self.driver.reason is not None and not self.driver.alive:  # try again now: the head may be back
            self.driver.reported.clear()
            self.driver.retry_at = 0.0
        if not wait and not self.driver.reported.is_set():
            raise ClusterError(f"Connecting to the Ray cluster at {self.address}…")
        if not self.driver.reported.wait(wait) or self.driver.reason is not None:
            raise ClusterError(
                self.driver.reason
                or f"The Ray cluster at {self.address} did not answer within "
                f"{wait:.0f} s; nothing was started. Train again in a moment."
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

    def load_now(self) -> None:
        """Unknown: the cluster's nodes train, not this machine."""
        return None

    def describe(self) -> str:
        d = self.driver
        return f"Ray cluster at {self.address} ({d.cpus} CPUs, {d.gpus} GPUs)"

    def shutdown(self) -> None:
        pass
