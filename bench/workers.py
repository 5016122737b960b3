"""Throughput of the job manager's workers, compared in one run: the same N small jobs (the bundled
sample, the Small data preset cut to `--ae-epochs`/`--clf-epochs`, one seed each) through each
worker setting in turn, all submitted at once, timed until the last one is saved.

A setting is a CAE_DEVICES value: "" is today's single worker, "cpu,cpu" two CPU workers, "auto"
one per GPU, "ray" the Ray cluster of CAE_RAY_ADDRESS (a local one with `--ray-cpus` CPUs when
unset). CPU workers split the cores between them (CAE_WORKER_THREADS = cores / CPU workers), so
each setting has the whole machine.

    python bench/workers.py [--jobs 4] [--settings "" cpu,cpu ray] [--ae-epochs 5] [--clf-epochs 5]

Prints a Markdown table (jobs per minute, the ratio to the first setting, each job's seconds of
training, and the slot-seconds per job spent on anything else: wall time x trainings at once,
minus all training) and writes
bench/results/workers-<time>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from cae.config import SMALL_DATA, preset_config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.devices import describe_device, resolve_device  # noqa: E402
from cae.jobs import DONE, JobManager  # noqa: E402
from cae.runs import read_metrics  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def environment_for(setting: str, cores: int) -> dict[str, str]:
    """CAE_DEVICES (or CAE_RAY_ADDRESS) and a thread budget that gives the setting the whole machine."""
    if setting == "ray":
        return {"CAE_DEVICES": "", "CAE_WORKER_THREADS": "1"}
    cpu_workers = max(1, [d.strip() for d in setting.lower().split(",")].count("cpu"))
    return {"CAE_DEVICES": setting, "CAE_WORKER_THREADS": str(max(1, cores // cpu_workers))}


def run_setting(setting: str, jobs: int, cfg, dataset, ray_cpus: int) -> dict:
    """Submit `jobs` distinct jobs at once to a fresh manager and runs folder; time them."""
    env = environment_for(setting, os.cpu_count() or 1)
    os.environ.update(env)
    ray = setting == "ray"
    if ray:
        os.environ.setdefault("CAE_RAY_ADDRESS", f"local:{ray_cpus}")
    else:
        os.environ.pop("CAE_RAY_ADDRESS", None)
    manager = JobManager(Path(tempfile.mkdtemp(prefix="workers-bench-")))
    try:
        manager.start_worker()
        time.sleep(3)  # the workers start before the clock does, in every setting alike
        t0 = time.perf_counter()
        submitted = [manager.submit(cfg.replace(seed=seed), dataset) for seed in range(jobs)]
        finished = [manager.wait(job.id, 3600) for job in submitted]
        seconds = time.perf_counter() - t0
        slots = manager.training_counts()[1]  # trainings that can run at once
    finally:
        manager.shutdown()
    failed = [j.error for j in finished if j.state != DONE]
    if failed:
        raise SystemExit(f"setting {setting!r}: {len(failed)} jobs failed: {failed[0]}")
    workers = "Ray" if ray else ", ".join(str(w.device or "one worker") for w in manager.members)
    # where the slots' time went: training (each run's own seconds_total) and the rest of the
    # slot-seconds (wall time x trainings at once), per job: a process or actor start, loading or
    # shipping the data, writing the run and bringing it home, and slots left idle
    training = [read_metrics(j.run_path)["seconds_total"] for j in finished]
    outside = [(seconds * slots - sum(training)) / jobs]
    return {
        "setting": setting or "(unset)",
        "workers": workers,
        **env,
        "jobs": jobs,
        "seconds": seconds,
        "training_per_job": sum(training) / jobs,
        "slots": slots,
        "outside_training_per_job": outside[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--settings", nargs="+", default=["", "cpu,cpu"])
    parser.add_argument("--ae-epochs", type=int, default=5)
    parser.add_argument("--clf-epochs", type=int, default=5)
    parser.add_argument("--ray-cpus", type=int, default=2)
    args = parser.parse_args()
    cfg = preset_config(SMALL_DATA).replace(ae_epochs=args.ae_epochs, clf_epochs=args.clf_epochs)
    dataset = load_dataset("sample")
    rows = [run_setting(s, args.jobs, cfg, dataset, args.ray_cpus) for s in args.settings]
    first = rows[0]["jobs"] / rows[0]["seconds"]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"{args.jobs} jobs of Small data ({args.ae_epochs} + {args.clf_epochs} epochs, scratch) on the sample;")
    print(f"{machine}, {describe_device(resolve_device())}\n")
    print(
        "| CAE_DEVICES | workers | threads each | seconds | jobs per minute | × the first "
        "| training s per job | other slot-s per job |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        rate = row["jobs"] / row["seconds"]
        row["ratio"] = rate / first
        print(
            f"| `{row['setting']}` | {row['workers']} | {row['CAE_WORKER_THREADS']} | {row['seconds']:.0f} | "
            f"{60 * rate:.2f} | {row['ratio']:.2f} | {row['training_per_job']:.1f} | "
            f"{row['outside_training_per_job']:.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"config": cfg.to_dict(), "rows": rows}, indent=1))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
