"""Several workers on one machine (CAE_DEVICES, cae/devices.py): which workers a setting starts, the
device each sees, and two CPU workers that train two jobs at once, where killing one fails only
its own job. Faults are real: a worker is killed with SIGKILL."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from cae.config import Config
from cae.devices import DevicesError, cpu_share_warning, pinning, worker_devices
from cae.jobs import DONE, FAILED, RUNNING, JobManager, manager_for
from cae.runs import load_run
from tests.conftest import wait_until
from tests.test_jobs import TINY, alive, held

ON_CPU = {**TINY, "device": "cpu"}  # CPU workers take CPU trainings (with a GPU, `auto` means the GPU)


def test_unset_starts_todays_single_worker_and_auto_one_per_gpu():
    assert worker_devices("") == [None]
    assert worker_devices("auto", gpus=0) == ["cpu"]
    assert worker_devices("auto", gpus=3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert worker_devices("cuda:1, cuda , cpu", gpus=2) == ["cuda:1", "cuda:0", "cpu"]


@pytest.mark.parametrize(
    ("spec", "threads", "says"),
    [
        ("cuda:2", "", "this machine sees 2 GPUs (cuda:0 to cuda:1)"),
        ("tpu", "", "use auto, or a list of cpu and cuda:N"),
        ("cpu,cpu", "", "set CAE_WORKER_THREADS too, so that 2 × threads is at most this machine's 2 cores"),
        ("cpu,cpu", "2", "need 4 cores; this machine has 2. Lower CAE_WORKER_THREADS to 1"),
    ],
)
def test_a_setting_this_machine_cannot_serve_is_refused_with_a_sentence(monkeypatch, spec, threads, says):
    monkeypatch.setenv("CAE_WORKER_THREADS", threads)
    with pytest.raises(DevicesError, match=says.replace("(", r"\(").replace(")", r"\)")):
        worker_devices(spec, gpus=2, cores=2)


def test_two_cpu_workers_fit_two_cores_with_one_thread_each_and_the_page_is_warned(monkeypatch):
    monkeypatch.setenv("CAE_WORKER_THREADS", "1")
    devices = worker_devices("cpu,cpu", gpus=0, cores=2)
    assert devices == ["cpu", "cpu"]
    assert "use all 2 cores" in cpu_share_warning(devices, cores=2)
    assert cpu_share_warning(devices, cores=8) is None
    assert cpu_share_warning([None], cores=2) is None


def test_each_worker_sees_only_its_own_device(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert pinning(None) == {} and pinning("cpu") == {"CUDA_VISIBLE_DEVICES": ""}
    assert pinning("cuda:1") == {"CUDA_VISIBLE_DEVICES": "1"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # the server itself was given GPUs 4 and 6
    assert pinning("cuda:1") == {"CUDA_VISIBLE_DEVICES": "6"}


@pytest.fixture
def two_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_DEVICES", "cpu,cpu")
    monkeypatch.setenv("CAE_WORKER_THREADS", "1")
    return manager_for(tmp_path / "runs")


def test_two_cpu_workers_train_two_jobs_at_once_and_both_runs_load(two_workers, small_dataset, hold):
    first = two_workers.submit(Config(**ON_CPU), small_dataset)
    second = two_workers.submit(Config(**{**ON_CPU, "seed": 1}), small_dataset)
    wait_until(lambda: held(first) and held(second), what="both jobs training")
    assert two_workers.training_counts() == (2, 2)
    pids = {first.pid, second.pid}
    assert None not in pids and len(pids) == 2
    hold.release()
    for job in (first, second):
        assert two_workers.wait(job.id, 300).state == DONE, job.error
        assert load_run(job.run_path).metrics["classifier"]
    assert two_workers.training_counts() == (0, 2)


def test_a_killed_worker_fails_only_its_job_the_other_finishes_and_the_next_job_runs(two_workers, small_dataset, hold):
    first = two_workers.submit(Config(**ON_CPU), small_dataset)
    second = two_workers.submit(Config(**{**ON_CPU, "seed": 1}), small_dataset)
    wait_until(lambda: held(first) and held(second), what="both jobs training")
    victim = first.pid
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: first.state == FAILED, what="the killed worker's job failed")
    assert "stopped unexpectedly (killed by the signal SIGKILL" in first.error
    assert second.state == RUNNING
    hold.release()
    assert two_workers.wait(second.id, 300).state == DONE
    third = two_workers.submit(Config(**{**ON_CPU, "seed": 2}), small_dataset)
    assert two_workers.wait(third.id, 300).state == DONE, third.error
    assert not alive(victim) and victim not in [w.pid for w in two_workers.members]


def test_a_training_on_a_device_no_worker_has_fails_at_once(tmp_path, small_dataset):
    gpu_only = JobManager(tmp_path / "runs", devices=["cuda:0"])  # a GPU server that starts no CPU worker
    try:
        job = gpu_only.submit(Config(**{**TINY, "device": "cpu"}), small_dataset)
        assert job.state == FAILED and "train on cuda:0 (CAE_DEVICES), none on cpu" in job.error
    finally:
        gpu_only.shutdown()


def app(monkeypatch, **env):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    return at.run()


def test_the_sidebar_says_how_many_workers_there_are_and_that_they_share_the_cores(monkeypatch):
    at = app(monkeypatch, CAE_DEVICES="cpu,cpu", CAE_WORKER_THREADS="1")
    assert not at.exception
    captions = [c.value for c in at.sidebar.caption]
    assert "**Device:** 2 workers on cpu, cpu, 0 of 2 training (1 thread each on CPU)" in captions
    assert any("2 CPU workers × 1 thread use all" in c for c in captions) == ((os.cpu_count() or 1) <= 2)


def test_a_devices_setting_the_machine_cannot_serve_is_said_on_the_page(monkeypatch):
    at = app(monkeypatch, CAE_DEVICES="cuda:7")
    assert not at.exception
    assert any("CAE_DEVICES names cuda:7, but this machine sees" in e.value for e in at.error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (run on the lent GPU machine)")
def test_with_auto_each_gpu_has_a_worker_that_trains_on_it(tmp_path, monkeypatch, small_dataset):
    monkeypatch.setenv("CAE_DEVICES", "auto")
    manager = manager_for(tmp_path / "runs")
    assert [w.device for w in manager.members] == [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    job = manager.wait(manager.submit(Config(**{**TINY, "precision": "auto"}), small_dataset).id, 300)
    assert job.state == DONE, job.error
    assert load_run(job.run_path).metrics["device"] == torch.cuda.get_device_name(0)


def test_a_ray_address_without_ray_installed_is_said_in_a_sentence(monkeypatch, tmp_path):
    import sys

    from cae.cluster import ClusterError, connect

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(
        ClusterError,
        match=r"CAE_RAY_ADDRESS is set, but Ray is not installed here: `pip install -r requirements-cluster.txt`",
    ):
        connect("auto")
    fake = tmp_path / "no-ray"  # the driver process imports this `ray`, which fails as if not installed
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    monkeypatch.setenv("CAE_RAY_ADDRESS", "auto")
    at = app(monkeypatch)
    wait_until(lambda: any("Ray is not installed here" in e.value for e in at.run().error), what="the sentence")
