"""How long a run will take, as the Train page and Lecture mode say it: a likely figure and a range
from the speeds runs here really had (load included), else from one measured step; the work counted
includes every per-epoch evaluation."""

from __future__ import annotations

import pytest

from cae.config import Config
from cae.job import DONE, TRAIN, Job
from cae.jobs import JobQueue
from cae.plan import MFLOP, planned_work
from cae.timing import RECENT_SPREAD, SIZE_SPAN, STEP_LIKELY, STEP_LOW, STEP_SPREAD, Estimate, Pace, slowdown
from cae.train import Progress


def test_the_work_counts_the_codes_k_nn_probe_every_epoch():
    small = Config(ae_epochs=2, clf_epochs=0, limit=1000, test_limit=1000)
    without_probe = 2 * (1000 * MFLOP["autoencoder"] + 1000 * MFLOP["eval_autoencoder"])
    # the probe encodes its training and test images (at most 5,000 and 1,000) once per epoch
    assert planned_work(small, 1000, 0, 1000) == pytest.approx(without_probe + 2 * 2000 * MFLOP["eval_classifier"])
    contrastive = small.replace(objective="contrastive")
    assert planned_work(contrastive, 1000, 0, 1000) == pytest.approx(2 * (1000 * 144.0 + 2000 * 24.0))


def test_an_estimate_from_recent_runs_is_their_median_and_a_range_of_at_least_the_spread():
    one = Estimate.of(work=100.0, step=None, recent=[Pace(0.5)])
    assert (one.low, one.likely, one.high) == pytest.approx((50 / RECENT_SPREAD, 50, 50 * RECENT_SPREAD))
    assert one.basis == "the last run here"
    several = Estimate.of(work=100.0, step=None, recent=[Pace(0.2), Pace(0.5), Pace(1.0)])
    assert several.likely == pytest.approx(50) and several.high == pytest.approx(100)  # the slowest run
    assert several.low == pytest.approx(20)  # the fastest run, below likely / 1.5
    assert several.words() == "about 0m 50s (0m 20s to 1m 40s, by the last 3 runs here)"
    # a measured step lowers the range's bottom to the machine's own speed, never raises it
    assert Estimate.of(work=100.0, step=0.1, recent=[Pace(0.2), Pace(0.5), Pace(1.0)]).low == pytest.approx(
        10 * STEP_LOW
    )
    assert Estimate.of(work=100.0, step=0.5, recent=[Pace(0.2), Pace(0.5), Pace(1.0)]).low == pytest.approx(20)


def test_an_estimate_from_one_step_says_so_and_spans_the_step_spread():
    said = Estimate.of(work=1000.0, step=0.01, recent=[])
    assert (said.low, said.high) == pytest.approx(
        (10 * STEP_LOW, 10 * STEP_SPREAD)
    ) and said.basis == "one measured training step"
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
    assert [p.speed for p in queue.recent_paces()] == pytest.approx([0.5, 0.9])
    assert [p.speed for p in queue.recent_paces(last=1)] == pytest.approx([0.9])


def test_a_training_slows_down_once_it_and_the_other_work_need_more_cores_than_there_are():
    assert slowdown(0.0, threads=1, cores=2) == 1.0
    assert slowdown(1.0, threads=1, cores=2) == 1.0  # one core each: no slowdown yet
    assert slowdown(2.0, threads=1, cores=2) == pytest.approx(1.5)  # beside a two-thread training
    assert slowdown(3.0, threads=1, cores=2) == pytest.approx(2.0)


def test_an_estimate_scales_each_run_from_the_load_it_met_to_the_load_now():
    """A run that took 0.5 s/MFLOP on a quiet machine takes 1.5 times that beside two busy cores (one
    training thread on two cores); the words say the load was counted."""
    quiet = [Pace(0.5, load=0.0)]
    busy = Estimate.of(work=100.0, step=None, recent=quiet, load=2.0, threads=1, cores=2)
    assert busy.likely == pytest.approx(75) and busy.basis.endswith("the load now: 2.0 of 2 cores busy with other work")
    # and back: a run beside a busy neighbour, estimated for a quiet machine
    back = Estimate.of(work=100.0, step=None, recent=[Pace(0.75, load=2.0)], load=0.0, threads=1, cores=2)
    assert back.likely == pytest.approx(50)
    # a load under the free core changes nothing; an unknown load (another machine's run) neither
    assert Estimate.of(work=100.0, step=None, recent=quiet, load=1.0, threads=1, cores=2).likely == pytest.approx(50)
    unknown = Estimate.of(work=100.0, step=None, recent=[Pace(0.5)], load=2.0, threads=1, cores=2)
    assert unknown.likely == pytest.approx(50) and unknown.basis == "the last run here"


def test_the_queue_remembers_the_load_and_the_work_of_each_training():
    queue = JobQueue()
    job = Job(id=1, kind=TRAIN, key="k", state=DONE, started=1000.0, load=1.25)
    job.finished = 1060.0
    job.progress = Progress("classifier", 1, 1, 1, 1, 0.1, 60.0, 0.0, 120.0)
    queue._jobs[1] = job
    assert queue.recent_paces() == [Pace(0.5, 1.25, 120.0)]


def test_an_estimate_from_one_step_is_scaled_to_the_load_now():
    """The step is measured as if the machine were idle; beside two busy cores (one training thread
    on two cores) the run takes 1.5 times as long, and the words say the load was counted."""
    idle = Estimate.of(work=1000.0, step=0.01, recent=[])
    assert idle.likely == pytest.approx(10 * STEP_LIKELY)
    busy = Estimate.of(work=1000.0, step=0.01, recent=[], load=2.0, threads=1, cores=2)
    assert (busy.low, busy.likely, busy.high) == pytest.approx((15 * STEP_LOW, 15 * STEP_LIKELY, 15 * STEP_SPREAD))
    assert busy.basis == "one measured training step and the load now: 2.0 of 2 cores busy with other work"


def test_only_runs_of_a_similar_size_say_how_long_a_run_takes():
    """A tiny run's time per MFLOP is mostly its start: it says nothing of a run SIZE_SPAN times
    larger or more, which goes by the step instead."""
    tiny = Pace(0.5, work=100.0)
    assert Estimate.of(work=100.0 * SIZE_SPAN, step=0.01, recent=[tiny]).basis == "the last run here"
    larger = Estimate.of(work=100.0 * SIZE_SPAN * 1.01, step=0.01, recent=[tiny])
    assert larger.basis == "one measured training step"
    assert Estimate.of(work=100.0 / SIZE_SPAN / 1.01, step=0.01, recent=[tiny]).basis == "one measured training step"
