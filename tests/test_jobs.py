"""Background jobs: one job per request, a queue for the rest, cancel, and failures that do not stop the queue."""

import threading

import pytest

import cae.jobs
from cae.config import Config
from cae.jobs import CANCELLED, DONE, FAILED, JobManager
from cae.runs import load_run

TINY = dict(latent_dim=16, batch_size=100, precision="fp32", ae_epochs=1, clf_epochs=1, test_limit=50,
            scratch_baseline=False)


@pytest.fixture
def manager(tmp_path):
    return JobManager(tmp_path)


@pytest.fixture
def gate(monkeypatch) -> threading.Event:
    """Jobs wait at this gate before training, so tests can see them queued and running."""
    event, original = threading.Event(), cae.jobs.train_or_load
    monkeypatch.setattr(cae.jobs, "train_or_load", lambda *a, **k: (event.wait(30), original(*a, **k))[1])
    yield event
    event.set()


def test_a_job_trains_saves_and_records_progress(manager, small_dataset):
    job = manager.submit(Config(**TINY), small_dataset)
    job = manager.wait(job.key)
    assert job.state == DONE and not job.cached
    assert load_run(job.run_path).metrics["classifier"]
    assert job.progress.phase == "classifier" and job.losses
    assert len(job.reconstructions) == 1 and job.reconstructions[0][1].shape == (16, 3, 32, 32)
    again = manager.submit(Config(**TINY), small_dataset)
    assert again.cached and again.state == DONE and again.run_path == job.run_path


def test_two_requests_for_the_same_config_share_one_job(manager, small_dataset, gate):
    first = manager.submit(Config(**{**TINY, "ae_epochs": 2}), small_dataset)
    second = manager.submit(Config(**{**TINY, "ae_epochs": 2}), small_dataset)
    assert first is second and len(manager.jobs()) == 1
    gate.set()
    assert manager.wait(first.key).state == DONE


def test_a_different_config_queues_and_runs_after(manager, small_dataset, gate):
    first = manager.submit(Config(**TINY), small_dataset)
    second = manager.submit(Config(**{**TINY, "seed": 1}), small_dataset)
    assert first is not second
    assert second.state == "queued"
    gate.set()
    manager.wait(second.key)
    assert first.state == second.state == DONE
    assert second.started >= first.finished


def test_cancel_a_running_job_saves_nothing(manager, small_dataset, tmp_path):
    job = manager.submit(Config(**{**TINY, "ae_epochs": 50}), small_dataset)
    while job.progress is None:
        threading.Event().wait(0.01)
    manager.cancel(job.key)
    assert manager.wait(job.key).state == CANCELLED
    assert job.run_path is None and list(tmp_path.iterdir()) == []


def test_cancel_a_queued_job(manager, small_dataset, gate):
    first = manager.submit(Config(**TINY), small_dataset)
    queued = manager.submit(Config(**{**TINY, "seed": 2}), small_dataset)
    manager.cancel(queued.key)
    gate.set()
    manager.wait(first.key)
    assert queued.state == CANCELLED and queued.started is None


def test_a_failed_job_is_marked_with_its_message_and_the_queue_moves_on(manager, small_dataset, monkeypatch):
    original = cae.jobs.train_or_load

    def out_of_memory(cfg, *a, **k):
        if cfg.seed == 7:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(cfg, *a, **k)

    monkeypatch.setattr(cae.jobs, "train_or_load", out_of_memory)
    bad = manager.submit(Config(**{**TINY, "seed": 7}), small_dataset)
    good = manager.submit(Config(**TINY), small_dataset)
    assert manager.wait(bad.key).state == FAILED and "out of memory" in bad.error
    assert manager.wait(good.key).state == DONE
    retry = manager.submit(Config(**{**TINY, "seed": 7}), small_dataset)
    assert retry is not bad  # a failed request can be tried again
    manager.wait(retry.key)


def test_shutdown_cancels_a_running_job_and_stops_the_worker(manager, small_dataset):
    job = manager.submit(Config(**{**TINY, "ae_epochs": 50}), small_dataset)
    while job.progress is None:
        threading.Event().wait(0.01)
    manager.shutdown()
    assert job.state == CANCELLED and not manager._worker.is_alive()
    with pytest.raises(RuntimeError, match="shutting down"):
        manager.submit(Config(**TINY), small_dataset)


def test_training_takes_turns_with_pages_batch_by_batch(manager, small_dataset):
    """A page holding the compute lock (an inference) pauses the job between batches, so the
    two never run torch at once and oversubscribe a small CPU."""
    from cae.train import compute_lock
    with compute_lock:
        job = manager.submit(Config(**{**TINY, "ae_epochs": 3}), small_dataset)
        threading.Event().wait(1.0)
        assert job.progress is None  # not one batch while the page computes
    assert manager.wait(job.key).state == DONE
