"""CPU sharing between the web server and the training worker: a page's forward pass and a
training step, each alone and both together, in their real processes.

The worker (cae/worker.py, started by the job manager as the app starts it) trains on the bundled
sample at the lecture's settings; this process plays the web server and runs what a page runs
(the Try page: reconstruction and class probabilities of one picture; the Train page's strip of
16 reconstructions). Training steps are timed from the job's per-batch progress.

    python bench/threads.py [--seconds 20] [--web-threads N]

The worker's own settings come from the environment it inherits: CAE_WORKER_THREADS (torch threads
in the worker) and OMP_WAIT_POLICY.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from cae.config import Config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.explain import class_probabilities, reconstruct  # noqa: E402
from cae.jobs import manager_for  # noqa: E402
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index  # noqa: E402


def page_forward(run, images: torch.Tensor) -> float:
    """What one page view computes: a reconstruction strip and one picture's probabilities."""
    t0 = time.perf_counter()
    reconstruct(run.autoencoder, images)
    class_probabilities(run.classifier, images[:1])
    return time.perf_counter() - t0


def page_times(run, images, seconds: float) -> list[float]:
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        times.append(page_forward(run, images))
    return times


def step_times(job, seconds: float, busy=None) -> list[float]:
    """Seconds between the job's successive batches over a window (while `busy()` runs, if given)."""
    stamps, last, end = [], None, time.perf_counter() + seconds
    while time.perf_counter() < end:
        p = job.progress
        if p is not None and (p.phase, p.epoch, p.batch) != last:
            stamps.append(time.perf_counter())
            last = (p.phase, p.epoch, p.batch)
        if busy is not None:
            busy()
        else:
            time.sleep(0.001)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--web-threads", type=int, default=None, help="torch threads in this (web) process")
    args = parser.parse_args()
    if args.web_threads:
        torch.set_num_threads(args.web_threads)
    run = load_run(PRETRAINED_DIR / pretrained_index()["default"])
    sample = load_dataset("sample")
    images = sample.test.images[:16]
    page_times(run, images, 2)  # warm-up
    alone = page_times(run, images, args.seconds)
    manager = manager_for(tempfile.mkdtemp(prefix="threads-runs-"))
    job = manager.submit(Config(ae_epochs=1000, clf_epochs=0, batch_size=250, scratch_baseline=False), sample)
    while job.progress is None:
        time.sleep(0.05)
    steps_alone = step_times(job, args.seconds)
    together_pages: list[float] = []
    steps_together = step_times(job, args.seconds, busy=lambda: together_pages.append(page_forward(run, images)))
    manager.shutdown()
    med = statistics.median
    report = {
        "page_forward_alone_s": med(alone),
        "page_forward_with_training_s": med(together_pages),
        "training_step_alone_s": med(steps_alone),
        "training_step_with_pages_s": med(steps_together),
        "page_views": [len(alone), len(together_pages)],
        "steps": [len(steps_alone), len(steps_together)],
        "torch_threads_web": torch.get_num_threads(),
        "worker_threads_env": os.environ.get("CAE_WORKER_THREADS"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    print(
        f"web process: {torch.get_num_threads()} torch thread(s); worker: CAE_WORKER_THREADS="
        f"{os.environ.get('CAE_WORKER_THREADS')}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(
        f"page forward (16 reconstructions + 1 prediction): alone {1000 * med(alone):.0f} ms, while the worker "
        f"trains {1000 * med(together_pages):.0f} ms (x{med(together_pages) / med(alone):.2f})"
    )
    print(
        f"training step (batch 250, worker at nice 10): alone {med(steps_alone):.3f} s, while this process "
        f"computes pages back to back {med(steps_together):.3f} s (x{med(steps_together) / med(steps_alone):.2f})"
    )
    out = Path(__file__).parent / "results" / f"threads-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1))
    print(out)


if __name__ == "__main__":
    main()
