"""Jobs: trained by a worker process, never the web server. One job per request, a queue for the
rest, cancel, a worker that dies (killed, out of memory, orphaned) and jobs shared by sessions.

Faults are real: the worker is killed with SIGKILL, its memory and file-size limits are lowered
with prlimit, its parent is killed. The test barrier (`hold`) holds a job before a batch."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import cae.jobs
from cae.config import Config
from cae.jobs import CANCELLED, DONE, FAILED, RUNNING, JobManager, manager_for
from cae.runs import list_runs, load_run, runs_dir
from tests.conftest import REPO, wait_until

TINY = dict(
    latent_dim=16, batch_size=100, precision="fp32", ae_epochs=1, clf_epochs=1, test_limit=50, scratch_baseline=False
)


@pytest.fixture
def manager(tmp_path) -> JobManager:
    return manager_for(tmp_path / "runs")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return state != "Z"


def held(job) -> bool:
    return job.held and job.state == RUNNING


def test_a_job_is_trained_by_the_worker_process_and_saved(manager, small_dataset):
    job = manager.submit(Config(**TINY), small_dataset)
    job = manager.wait(job.id, 300)
    assert job.state == DONE and not job.cached, job.error
    assert load_run(job.run_path).metrics["classifier"]
    assert job.progress.phase == "classifier" and job.losses and job.epochs
    assert job.reconstructions[-1][1].shape == (16, 3, 32, 32)
    worker = manager.members[0].pid
    assert worker is not None and worker != os.getpid()
    assert Path(f"/proc/{worker}/comm").read_text().strip() == "cae-worker"
    assert job.load is not None and job.load >= 0  # the load it met, for the next estimates
    assert manager.recent_paces()[-1].load == job.load
    assert manager.backend.load_now() is not None  # and the load now, the worker's own work left out
    again = manager.submit(Config(**TINY), small_dataset)
    assert again.cached and again.state == DONE and again.run_path == job.run_path


def test_two_requests_for_the_same_config_share_one_job(manager, small_dataset, hold):
    first = manager.submit(Config(**TINY), small_dataset, watcher="a")
    second = manager.submit(Config(**TINY), small_dataset, watcher="b")
    assert first is second and first.watchers == {"a", "b"} and len(manager.jobs()) == 1
    hold.release()
    assert manager.wait(first.id, 300).state == DONE


def test_a_different_config_queues_and_runs_after(manager, small_dataset, hold):
    first = manager.submit(Config(**TINY), small_dataset)
    second = manager.submit(Config(**{**TINY, "seed": 1}), small_dataset)
    wait_until(lambda: held(first), what="first job held")
    assert second.state == "queued" and manager.place_in_queue(second.id) == 1
    hold.release()
    manager.wait(second.id, 300)
    assert first.state == second.state == DONE
    assert second.started >= first.finished


def test_cancel_a_running_job_saves_nothing_and_a_new_press_starts_a_new_job(manager, small_dataset, hold):
    job = manager.submit(Config(**TINY), small_dataset)
    wait_until(lambda: held(job), what="job held")
    manager.cancel(job.id)
    again = manager.submit(Config(**TINY), small_dataset)  # Train pressed again while it is cancelling
    assert again is not job and again.id != job.id
    assert manager.wait(job.id, 60).state == CANCELLED and job.run_path is None
    hold.release()
    assert manager.wait(again.id, 300).state == DONE
    assert [p.name for p in runs_dir(manager.runs_dir).iterdir()] == [again.run_path.name]


def test_cancel_a_queued_job(manager, small_dataset, hold):
    first = manager.submit(Config(**TINY), small_dataset)
    queued = manager.submit(Config(**{**TINY, "seed": 2}), small_dataset)
    manager.cancel(queued.id)
    assert queued.state == CANCELLED and queued.started is None
    hold.release()
    assert manager.wait(first.id, 300).state == DONE


def test_a_failed_job_is_marked_with_its_sentence_and_the_queue_moves_on(tmp_path, small_dataset):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    manager = manager_for(blocker / "runs")
    bad = manager.submit(Config(**TINY), small_dataset)
    assert manager.wait(bad.id, 300).state == FAILED and "Cannot write the run" in bad.error
    task = manager.compute("step_time", {"latent_dim": 16, "upsample": "nearest", "precision": "fp32"})
    assert manager.wait(task.id, 120).state == DONE and task.result > 0


def test_a_killed_worker_fails_its_job_with_one_sentence_and_a_new_worker_runs_the_next(manager, small_dataset, hold):
    doomed = manager.submit(Config(**TINY), small_dataset)
    after = manager.submit(Config(**{**TINY, "seed": 3}), small_dataset)
    wait_until(lambda: held(doomed), what="job held")
    first_worker = manager.members[0].pid
    os.kill(first_worker, signal.SIGKILL)
    assert manager.wait(doomed.id, 60).state == FAILED
    assert doomed.error == (
        "The training process stopped unexpectedly (killed by the signal SIGKILL: by an administrator or a "
        "process manager, or by the system when it ran out of memory); nothing was saved. Start the job again."
    )
    hold.release()
    assert manager.wait(after.id, 300).state == DONE
    assert manager.members[0].pid not in (None, first_worker)
    assert [p.name for p in manager.runs_dir.iterdir()] == [after.run_path.name]  # nothing half-written


def test_a_worker_that_cannot_start_fails_the_waiting_job_with_a_sentence_and_the_queue_comes_back(
    tmp_path, small_dataset, monkeypatch
):
    """The interpreter the server runs from disappears (a real failed start: Popen finds no file);
    the queued job fails with a sentence, the monitor lives on, and once the interpreter is back
    the next job runs."""
    environment = tmp_path / "environment"  # the interpreter's folder (its venv), through a link we can remove
    environment.symlink_to(sys.prefix)
    monkeypatch.setattr(sys, "executable", str(environment / "bin" / Path(sys.executable).name))
    environment.unlink()
    manager = manager_for(tmp_path / "runs")
    lost = manager.submit(Config(**TINY), small_dataset)
    assert manager.wait(lost.id, 60).state == FAILED
    assert lost.error.startswith("The training worker could not start (FileNotFoundError") and "again" in lost.error
    environment.symlink_to(sys.prefix)
    again = manager.submit(Config(**{**TINY, "seed": 4}), small_dataset)
    assert manager.wait(again.id, 300).state == DONE  # after the backoff, a new attempt starts the worker


def test_out_of_memory_in_the_worker_fails_the_job_with_a_sentence_and_the_next_job_runs(manager, small_dataset):
    warm = manager.submit(Config(**{**TINY, "seed": 5}), small_dataset)  # every module a job needs is loaded
    assert manager.wait(warm.id, 300).state == DONE
    pid = manager.members[0].pid
    size = (
        int(
            next(
                line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmSize")
            ).split()[1]
        )
        * 1024
    )
    original = resource.prlimit(pid, resource.RLIMIT_AS)
    resource.prlimit(pid, resource.RLIMIT_AS, (size + 50_000_000, original[1]))  # 50 MB more, no further
    big = manager.submit(Config(**{**TINY, "batch_size": 300, "latent_dim": 1024}), small_dataset)
    assert manager.wait(big.id, 300).state == FAILED
    assert big.error.startswith("The device ran out of memory; use a smaller batch size")
    resource.prlimit(pid, resource.RLIMIT_AS, original)
    assert manager.wait(manager.submit(Config(**TINY), small_dataset).id, 300).state == DONE


def test_a_full_disk_in_the_worker_fails_the_job_with_one_sentence_and_leaves_nothing(manager, small_dataset):
    manager.start_worker()
    wait_until(lambda: manager.members[0].pid is not None, what="worker started")
    resource.prlimit(manager.members[0].pid, resource.RLIMIT_FSIZE, (100_000, 100_000))
    job = manager.submit(Config(**TINY), small_dataset)
    assert manager.wait(job.id, 300).state == FAILED
    assert job.error == (
        f"Cannot write the run to {manager.runs_dir} (File too large); set CAE_RUNS or --runs "
        "to a writable folder with free space."
    )
    assert not manager.runs_dir.exists() or list(manager.runs_dir.iterdir()) == []


ORPHAN = """
import sys, time
from cae.config import Config
from cae.data import load_dataset
from cae.jobs import manager_for
manager = manager_for(sys.argv[1])
job = manager.submit(Config(latent_dim=16, batch_size=100, ae_epochs=100, precision="fp32"), load_dataset("sample"))
while job.progress is None:
    time.sleep(0.05)
print(manager.members[0].pid, flush=True)
time.sleep(600)
"""


def test_the_worker_exits_when_the_web_server_is_killed(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(tmp_path / "runs")],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    worker = int(server.stdout.readline())
    assert alive(worker)
    server.kill()
    server.wait()
    wait_until(lambda: not alive(worker), timeout=10, what="the orphaned worker exited")


def test_shutdown_cancels_the_running_job_and_leaves_no_process(manager, small_dataset, hold):
    job = manager.submit(Config(**TINY), small_dataset)
    wait_until(lambda: held(job), what="job held")
    worker = manager.members[0].pid
    manager.shutdown()
    assert job.state == CANCELLED
    wait_until(lambda: not alive(worker), timeout=15, what="worker stopped")
    with pytest.raises(RuntimeError, match="shutting down"):
        manager.submit(Config(**TINY), small_dataset)


def test_finished_jobs_are_bounded_and_queued_ones_never_dropped(manager, small_dataset, hold, monkeypatch):
    monkeypatch.setattr(cae.jobs, "KEEP_FINISHED", 2)
    running = manager.submit(Config(**TINY), small_dataset)
    queued = [manager.submit(Config(**{**TINY, "seed": s}), small_dataset) for s in range(10, 15)]
    for latent in (8, 16, 32, 64):  # short tasks finish beside the held training
        manager.wait(
            manager.compute("step_time", {"latent_dim": latent, "upsample": "nearest", "precision": "fp32"}).id, 120
        )
    kept = manager.jobs()
    assert running in kept and all(q in kept for q in queued)
    assert len([j for j in kept if not j.active]) == 2
    for job in queued:
        manager.cancel(job.id)
    hold.release()


def test_a_task_runs_beside_a_training_between_its_batches(manager, small_dataset, hold):
    training = manager.submit(Config(**TINY), small_dataset)
    wait_until(lambda: held(training), what="training held")
    hold.release()
    task = manager.compute("layer_times", {"latent_dim": 16, "leak": 0.1})
    assert manager.wait(task.id, 300).state == DONE
    assert set(task.result) == {"bilinear", "nearest", "transpose"}
    assert manager.wait(training.id, 300).state == DONE


def test_a_label_budget_sweep_is_one_queue_entry_whose_points_arrive_in_turn(manager, small_dataset):
    from cae import budget
    from cae.experiment import train_or_load

    source = train_or_load(Config(**TINY), small_dataset, manager.runs_dir).path
    sweep = manager.submit_sweep(source, small_dataset, (20, 50), seeds=1, steps=12)
    assert manager.submit_sweep(source, small_dataset, (20, 50), seeds=1, steps=12).id == sweep.id  # attached
    behind = manager.submit(Config(**{**TINY, "seed": 5}), small_dataset)
    assert manager.wait(sweep.id, 300).state == DONE
    assert [(p["budget"], p["seed"]) for p in sweep.result] == [(20, 0), (50, 0)]
    assert all(0 <= p[line] <= 100 for p in sweep.result for line in budget.LINES)
    assert budget.saved_points(manager.runs_dir, source.name, small_dataset.fingerprint) == sweep.result
    assert manager.wait(behind.id, 300).state == DONE  # the training queued behind it ran next
    listed = [i for i in list_runs(manager.runs_dir) if not i.pretrained]
    runs = {i.name for i in listed if i.path.parent == manager.runs_dir}
    points = [i for i in listed if i.path.parent != manager.runs_dir]
    assert runs == {source.name, behind.run_path.name} and not any(i.error for i in listed)
    assert len(points) == 4  # two budgets, each the fine-tuned (with scratch) and the frozen experiment
    assert all(sorted(f.name for f in i.path.iterdir()) == ["kernels.pt", "metrics.json"] for i in points)
    assert {p["runs"]["frozen"] for p in sweep.result} <= {i.name for i in points}

    stamps = {i.path: i.path.stat().st_mtime_ns for i in points}
    again = manager.submit_sweep(source, small_dataset, (20, 50), seeds=1, steps=12)
    assert again.id != sweep.id and manager.wait(again.id, 300).state == DONE, again.error
    assert [{k: p[k] for k in budget.LINES} for p in again.result] == [
        {k: p[k] for k in budget.LINES} for p in sweep.result
    ]
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps  # found again, not trained again


def test_a_sweep_is_cancelled_between_batches(manager, small_dataset, hold):
    from cae.experiment import train_or_load

    source = train_or_load(Config(**TINY), small_dataset, manager.runs_dir).path
    sweep = manager.submit_sweep(source, small_dataset, (20,), seeds=1, steps=12)
    wait_until(lambda: held(sweep), what="sweep held")
    manager.cancel(sweep.id)
    hold.release()
    assert manager.wait(sweep.id, 120).state == CANCELLED


def test_a_finished_computation_is_handed_back_not_started_again(manager):
    """A page polls a task for a moment at a time; when the task ends between two polls, the next
    poll must get its result instead of starting it again (the Train page's estimate re-measured a
    training step for ever, beside the training it was estimating)."""
    first = manager.compute("step_time", {"latent_dim": 16, "upsample": "bilinear", "precision": "fp32"})
    assert manager.wait(first.id, 300).state == "done"
    again = manager.compute("step_time", {"latent_dim": 16, "upsample": "bilinear", "precision": "fp32"})
    assert again.id == first.id and again.result == first.result
