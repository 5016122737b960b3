"""The queue's rules, through the backend interface (cae/pool.py): a Stop pressed while a job is
being sent ends it cancelled with nothing saved; a run's identity is decided once, by the backend
that places it, so a run trained elsewhere (a GPU node) is found again by the server that asked;
the saved-runs lookup runs once per submission; counts come from the queue's own state."""

from __future__ import annotations

import dataclasses
import threading

import cae.jobs
from cae import protocol
from cae.config import Config
from cae.experiment import identify
from cae.jobs import CANCELLED, DONE, JobManager
from cae.pool import LocalPool, LocalWorker
from cae.runs import load_run
from tests.conftest import wait_until
from tests.test_jobs import TINY, held


class SlowToSend(LocalWorker):
    """A worker whose Train message leaves only when the test says so: the window in which the old
    Ray path lost a Stop (the job marked running, not yet sent)."""

    def __init__(self):
        super().__init__(None)
        self.sending, self.go = threading.Event(), threading.Event()

    def send(self, message) -> None:
        if isinstance(message, protocol.Train):
            self.sending.set()
            assert self.go.wait(60)
        super().send(message)


def test_a_stop_pressed_while_the_job_is_being_sent_ends_it_cancelled_and_saves_nothing(tmp_path, small_dataset, hold):
    pool = LocalPool([None])
    pool.members[0] = member = SlowToSend()
    manager = JobManager(tmp_path / "runs", backend=pool)
    try:
        job = manager.submit(Config(**TINY), small_dataset)
        assert member.sending.wait(60)  # dispatch is sending it now
        stopper = threading.Thread(target=manager.cancel, args=(job.id,))
        stopper.start()  # the Stop: it waits for the send to finish, then follows the job to the worker
        member.go.set()
        stopper.join(60)
        wait_until(lambda: job.cancel_requested, what="the Stop recorded")
        hold.release()
        assert manager.wait(job.id, 120).state == CANCELLED
        assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    finally:
        manager.shutdown()


class PlacesOnAGpu(LocalPool):
    """A backend that places every training on a GPU node in the other precision than this machine
    would choose; its one worker stands in for the node (it trains on this CPU, in that precision)."""

    def __init__(self, precision: str):
        super().__init__([None])
        self.precision = precision
        self.members[0] = ActsAsGpuNode()

    def place(self, cfg):
        return "cuda", self.precision


class ActsAsGpuNode(LocalWorker):
    def __init__(self):
        super().__init__(None)

    def send(self, message) -> None:
        if isinstance(message, protocol.Train):  # the node's "cuda" is this CPU; keys and precision unchanged
            message = dataclasses.replace(message, identity=dataclasses.replace(message.identity, device="cpu"))
        super().send(message)


def test_a_run_placed_on_a_gpu_node_is_saved_under_the_servers_key_and_found_again(tmp_path, small_dataset):
    cfg = Config(**{**TINY, "precision": "auto"})
    here = identify(cfg, small_dataset.fingerprint)  # what this machine would resolve
    elsewhere = "fp32" if here.precision == "bf16" else "bf16"
    manager = JobManager(tmp_path / "runs", backend=PlacesOnAGpu(elsewhere))
    try:
        job = manager.submit(cfg, small_dataset)
        assert (job.identity.device, job.identity.precision) == ("cuda", elsewhere)
        assert job.key == identify(cfg, small_dataset.fingerprint, "cuda", elsewhere).key != here.key
        job = manager.wait(job.id, 300)
        assert job.state == DONE, job.error
        metrics = load_run(job.run_path).metrics
        assert metrics["run_key"] == job.key and metrics["precision"] == elsewhere
        assert metrics["autoencoder_key"] == job.identity.autoencoder_key
        again = manager.submit(cfg, small_dataset)
        assert again.cached and again.run_path == job.run_path  # the server finds the node's run
    finally:
        manager.shutdown()


def test_the_saved_runs_are_looked_up_once_per_submission_and_never_under_the_lock(
    tmp_path, small_dataset, monkeypatch
):
    manager = JobManager(tmp_path / "runs")
    calls = []

    def counted(key, directory=None, pretrained=None):
        calls.append(manager._lock.locked())
        return None

    monkeypatch.setattr(cae.jobs, "find_run", counted)
    try:
        manager.submit(Config(**TINY), small_dataset)
        assert calls == [False]
        manager.submit(Config(**TINY), small_dataset)  # attaches to the queued job: no lookup at all
        assert calls == [False]
    finally:
        manager.shutdown()


def test_the_counts_come_from_the_queue_running_and_at_once(tmp_path, small_dataset, hold):
    manager = JobManager(tmp_path / "runs")
    try:
        assert manager.training_counts() == (0, 1)
        first = manager.submit(Config(**TINY), small_dataset)
        manager.submit(Config(**{**TINY, "seed": 1}), small_dataset)
        wait_until(lambda: held(first), what="the first job training")
        assert manager.training_counts() == (1, 1) and manager.queue_length() == 1
        manager.cancel(first.id)
        assert manager.wait(first.id, 60).state == CANCELLED
        wait_until(lambda: manager.queue_length() == 0, what="the second job started")
        assert manager.training_counts() == (1, 1)
    finally:
        hold.release()
        manager.shutdown()
