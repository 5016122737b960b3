"""How long a run will take, as the Train page and Lecture mode say it: a likely figure and a range
from the speeds runs here really had (load included), else from one measured step; the work counted
includes every per-epoch evaluation."""

from __future__ import annotations

import pytest

from cae.config import Config
from cae.job import DONE, TRAIN, Job
from cae.jobs import JobQueue
from cae.plan import MFLOP, planned_work
from cae.timing import RECENT_SPREAD, STEP_SPREAD, Estimate
from cae.train import Progress


def test_the_work_counts_the_codes_k_nn_probe_every_epoch():
    small = Config(ae_epochs=2, clf_epochs=0, limit=1000, test_limit=1000)
    without_probe = 2 * (1000 * MFLOP["autoencoder"] + 1000 * MFLOP["eval_autoencoder"])
    # the probe encodes its training and test images (at most 5,000 and 1,000) once per epoch
    assert planned_work(small, 1000, 0, 1000) == pytest.approx(without_probe + 2 * 2000 * MFLOP["eval_classifier"])
    contrastive = small.replace(objective="contrastive")
    assert planned_work(contrastive, 1000, 0, 1000) == pytest.approx(2 * (1000 * 144.0 + 2000 * 24.0))


def test_an_estimate_from_recent_runs_is_their_median_and_a_range_of_at_least_the_spread():
    one = Estimate.of(work=100.0, step=None, recent=[0.5])
    assert (one.low, one.likely, one.high) == pytest.approx((50 / RECENT_SPREAD, 50, 50 * RECENT_SPREAD))
    assert one.basis == "the last run here"
    several = Estimate.of(work=100.0, step=None, recent=[0.2, 0.5, 1.0])
    assert several.likely == pytest.approx(50) and several.high == pytest.approx(100)  # the slowest run
    assert several.low == pytest.approx(20)  # the fastest run, below likely / 1.5
    assert several.words() == "about 0m 50s (0m 20s to 1m 40s, by the last 3 runs here)"
    # a measured step lowers the range's bottom to the machine's own speed, never raises it
    assert Estimate.of(work=100.0, step=0.1, recent=[0.2, 0.5, 1.0]).low == pytest.approx(10)
    assert Estimate.of(work=100.0, step=0.5, recent=[0.2, 0.5, 1.0]).low == pytest.approx(20)


def test_an_estimate_from_one_step_says_so_and_spans_the_step_spread():
    said = Estimate.of(work=1000.0, step=0.01, recent=[])
    assert (said.low, said.high) == pytest.approx((10, 10 * STEP_SPREAD)) and said.basis == "one measured training step"
    assert Estimate.of(work=1000.0, step=None, recent=[]) is None


def test_the_queue_remembers_the_speed_of_finished_trainings_only():
    queue = JobQueue()

    def finished(kind: str, seconds: float, work: float, cached: bool = False) -> Job:
        job = Job(
            id=len(queue._jobs) + 1, kind=kind, key=str(len(queue._jobs)), state=DONE, cached=cached, started=1000.0
        )
        job.finished = 1000.0 + seconds
        job.progress = Progress("classifier", 1, 1, 1, 1, 0.1, seconds, 0.0, work)
        queue._jobs[job.id] = job
        return job

    finished(TRAIN, 60.0, 120.0)
    finished(TRAIN, 30.0, 120.0, cached=True)  # found, not trained: says nothing of speed
    finished("sweep", 10.0, 120.0)
    finished(TRAIN, 90.0, 100.0)
    assert queue.recent_speeds() == pytest.approx([0.5, 0.9])
    assert queue.recent_speeds(last=1) == pytest.approx([0.9])
