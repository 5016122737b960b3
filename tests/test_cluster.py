"""Training on a Ray cluster (CAE_RAY_ADDRESS, cae/cluster.py): a local cluster of this machine,
started by the first test that needs it (`local:2`, two CPUs) and left to Ray's own shutdown when
the test process exits (stopping it earlier once left Ray code in this process retrying a vanished
control service, which ends the process). A job trains on a Ray worker and
its run comes back into this server's runs folder; two jobs train at once; cancel stops a job
between batches; a Ray worker killed with SIGKILL fails only its job, with a sentence, and leaves
nothing written. Skipped without `ray`, unless CAE_REQUIRE_RAY=1 (CI installs it)."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

if os.environ.get("CAE_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")

from cae.budget import results_file  # noqa: E402
from cae.config import Config  # noqa: E402
from cae.experiment import train_or_load  # noqa: E402
from cae.jobs import CANCELLED, DONE, FAILED, RUNNING, manager_for  # noqa: E402
from cae.runs import list_runs, load_run  # noqa: E402
from tests.conftest import wait_until  # noqa: E402
from tests.test_jobs import TINY, held  # noqa: E402


@pytest.fixture
def on_ray(tmp_path, monkeypatch):
    """A manager on a local cluster; its driver starts at once, so a test's `hold` comes first."""
    monkeypatch.setenv("CAE_RAY_ADDRESS", "local:2")
    return manager_for(tmp_path / "runs")


def written(manager) -> list[str]:
    """Everything in the server's runs folder: runs, sweeps, and any half-written temporary."""
    return sorted(p.name for p in manager.runs_dir.iterdir()) if manager.runs_dir.is_dir() else []


def test_a_job_trains_on_a_ray_worker_and_its_run_comes_back_to_this_server(on_ray, small_dataset):
    job = on_ray.wait(on_ray.submit(Config(**TINY), small_dataset).id, 300)
    assert job.state == DONE, job.error
    assert job.run_path.parent == on_ray.runs_dir and load_run(job.run_path).metrics["classifier"]
    assert job.epochs and job.losses and job.reconstructions[-1][1].shape == (16, 3, 32, 32)
    assert job.pid != on_ray.members[1].pid  # no local worker trained it
    again = on_ray.submit(Config(**TINY), small_dataset)
    assert again.cached and again.run_path == job.run_path
    assert job_folders(job.pid) == []  # the node kept no copy of the run


def job_folders(pid: int) -> list[Path]:
    """The folders a Ray worker process trains in (cae/raydriver.py Runner), on this machine's node."""
    return list(Path(tempfile.gettempdir()).glob(f"cae-ray-{pid}-*"))


def test_two_jobs_train_at_once_on_two_ray_workers(hold, on_ray, small_dataset):
    first = on_ray.submit(Config(**TINY), small_dataset)
    second = on_ray.submit(Config(**{**TINY, "seed": 1}), small_dataset)
    wait_until(lambda: held(first) and held(second), timeout=180, what="both jobs training on Ray")
    pids = {first.pid, second.pid}
    assert None not in pids and len(pids) == 2 and os.getpid() not in pids
    hold.release()
    for job in (first, second):
        assert on_ray.wait(job.id, 300).state == DONE, job.error


def test_cancel_stops_a_ray_job_between_batches_and_saves_nothing(hold, on_ray, small_dataset):
    job = on_ray.submit(Config(**TINY), small_dataset)
    wait_until(lambda: held(job), timeout=180, what="job training on Ray")
    on_ray.cancel(job.id)
    assert on_ray.wait(job.id, 120).state == CANCELLED
    assert written(on_ray) == []


def test_a_killed_ray_worker_fails_only_its_job_with_a_sentence_and_writes_nothing(hold, on_ray, small_dataset):
    job = on_ray.submit(Config(**TINY), small_dataset)
    wait_until(lambda: held(job), timeout=180, what="job training on Ray")
    os.kill(job.pid, signal.SIGKILL)
    job = on_ray.wait(job.id, 120)
    assert job.state == FAILED and "The Ray worker training this job stopped unexpectedly" in job.error
    assert "nothing was saved and nothing was retried" in job.error
    assert written(on_ray) == []
    killed = job.pid
    assert job_folders(killed)  # a killed worker cannot clean up after itself ...
    hold.release()
    assert on_ray.wait(on_ray.submit(Config(**TINY), small_dataset).id, 300).state == DONE
    assert job_folders(killed) == []  # ... the next job on its node does


def test_a_sweep_takes_its_source_run_to_the_cluster_and_brings_its_points_back(on_ray, small_dataset):
    source = train_or_load(Config(**{**TINY, "clf_epochs": 0}), small_dataset, on_ray.runs_dir).path
    sweep = on_ray.wait(on_ray.submit_sweep(source, small_dataset, (20,), 1, steps=5).id, 300)
    assert sweep.state == DONE, sweep.error
    assert [(p["budget"], p["seed"]) for p in sweep.result] == [(20, 0)]
    assert results_file(on_ray.runs_dir, source.name, small_dataset.fingerprint).is_file()
    folder = results_file(on_ray.runs_dir, source.name, small_dataset.fingerprint).parent
    assert written(on_ray) == sorted([source.name, folder.name])  # the source came back to no second copy
    assert {i.path.parent for i in list_runs(on_ray.runs_dir, None)} >= {folder}  # its points are runs here


def test_the_train_page_trains_through_ray_and_shows_the_new_run(monkeypatch):
    from tests.test_app import TINY_CONTROLS, app, manager, set_train_controls, wait_for_job

    monkeypatch.setenv("CAE_RAY_ADDRESS", "local:2")
    at = set_train_controls(app(), **TINY_CONTROLS)
    at.button(key="train_button").click().run()
    assert not at.exception
    assert type(manager().backend).__name__ == "RayCluster" and manager().get(at.session_state["job_id"]).state in (
        "queued",
        RUNNING,
    )
    wait_for_job(at)
    assert at.session_state["viewing"] == str(manager().get(at.session_state["job_id"]).run_path)
    assert any("Ray cluster" in c.value for c in at.sidebar.caption)


def test_a_local_cluster_outlives_the_page_run_that_started_it(tmp_path):
    """Ray's services die with the thread that started them, and each page run is a thread that
    ends: `connect` starts them from a thread of their own (checked in a fresh process)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    script = (
        "import threading, time\n"
        "from cae.cluster import connect\n"
        "run = threading.Thread(target=connect, args=('local:1',))  # a page run: it ends at once\n"
        "run.start(); run.join(); time.sleep(3)\n"
        "import ray\n"
        "print('CPUs', ray.cluster_resources().get('CPU'), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=240, env={**os.environ}
    )
    assert done.returncode == 0 and "CPUs 1.0" in done.stdout, done.stderr[-2000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Head:
    """A real Ray head (`ray start --head`) of its own: its own port and temporary folder, so that
    killing it kills no other cluster on the machine."""

    def __init__(self):
        import shutil
        import tempfile

        self.port, self.folder = _free_port(), tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: socket paths
        self.client_port = _free_port()  # Ray's client server, for ray:// addresses
        self.ray = shutil.which("ray") or str(Path(sys.executable).parent / "ray")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        import subprocess

        command = [self.ray, "start", "--head", f"--port={self.port}", "--num-cpus=2", f"--temp-dir={self.folder}"]
        command += [
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={self.client_port}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, env={**os.environ})
        assert done.returncode == 0, done.stderr[-2000:]

    def kill(self) -> list[int]:
        """SIGKILL every process of this cluster (its GCS, raylet, workers): the head is lost."""
        killed = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.folder in cmdline or f"--gcs_server_port={self.port}" in cmdline:
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
                except ProcessLookupError:
                    pass
        return killed


@pytest.fixture
def head(monkeypatch):
    """A real head of its own, started with the README's token steps: the head and this server
    share one token, with RAY_AUTH_MODE=token. Without them a head that finds a token in
    ~/.ray/auth_token (Ray 2.60 writes one the first time it starts a local cluster, as the tests
    before these do) refuses a client that sends none, and ray:// only times out. Killed after."""
    import secrets

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    started = Head()
    started.start()
    yield started
    started.kill()


def test_losing_the_ray_head_fails_the_job_with_a_sentence_the_server_lives_and_a_new_head_trains(
    tmp_path, monkeypatch, small_dataset, hold, head
):
    monkeypatch.setenv("CAE_RAY_ADDRESS", head.address)
    manager = manager_for(tmp_path / "runs")
    job = manager.submit(Config(**TINY), small_dataset)
    wait_until(lambda: held(job), timeout=180, what="job training on the cluster")
    assert head.kill()
    job = manager.wait(job.id, 180)
    assert job.state == FAILED and f"The Ray cluster at {head.address}" in job.error, job.error
    assert "nothing was saved" in job.error and written(manager) == []
    head.start()  # the head is back: the next job connects again and trains
    hold.release()
    again = manager.wait(manager.submit(Config(**{**TINY, "seed": 1}), small_dataset).id, 300)
    assert again.state == DONE, again.error


def test_a_cluster_that_cannot_be_reached_is_a_sentence_and_nothing_is_queued(tmp_path, monkeypatch, small_dataset):
    from cae.cluster import ClusterError

    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv("CAE_RAY_ADDRESS", address)
    manager = manager_for(tmp_path / "runs")
    with pytest.raises(ClusterError, match=f"The Ray cluster at {address} cannot be reached"):
        manager.submit(Config(**TINY), small_dataset)
    assert manager.jobs() == []
    assert manager.backend.problem().startswith(f"The Ray cluster at {address} cannot be reached")


def gcs_servers() -> int:
    """How many Ray clusters run on this machine (one GCS server each)."""
    count = 0
    for proc in Path("/proc").iterdir():
        try:
            count += proc.name.isdigit() and b"gcs_server" in (proc / "cmdline").read_bytes()
        except OSError:
            pass
    return count


def test_through_ray_client_a_job_trains_and_a_lost_head_is_a_sentence_without_new_clusters(
    tmp_path, monkeypatch, small_dataset, hold, head
):
    import time

    address = f"ray://127.0.0.1:{head.client_port}"
    monkeypatch.setenv("CAE_RAY_ADDRESS", address)
    manager = manager_for(tmp_path / "runs")
    hold.release()
    first = manager.wait(manager.submit(Config(**TINY), small_dataset).id, 300)
    assert first.state == DONE and load_run(first.run_path).metrics["classifier"], first.error
    hold.engage()
    job = manager.submit(Config(**{**TINY, "seed": 1}), small_dataset)
    wait_until(lambda: held(job), timeout=180, what="job training through the client server")
    clusters = gcs_servers()
    assert head.kill()
    job = manager.wait(job.id, 180)
    assert job.state == FAILED and f"The Ray cluster at {address}" in job.error, job.error
    time.sleep(10)  # the server goes on trying the cluster meanwhile, never starting one of its own
    assert gcs_servers() < clusters and written(manager) == [first.run_path.name]
    assert address in manager.backend.problem()
