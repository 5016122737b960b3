"""Do the time estimates hold on a busy machine? Trains one recipe several times in a row, as the
app's worker would (its threads), while another training runs beside it (--busy always: the whole
time; alternate: beside every other run, so the load changes between runs), and before each run
makes the estimate the Train page would show (cae.timing.Estimate: the earlier runs' speeds scaled
from the load each met to the load now, or one measured step before there are any). Prints
estimate against actual and writes bench/results/estimates-<time>.json. A benchmark, not a test.

    python bench/estimates.py [--data ../shared/datasets/cifar10-jpeg] [--runs 4]
                              [--busy never|always|alternate] [--recipe live|quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from cae.config import QUICK_LOOK, preset_config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.devices import worker_threads  # noqa: E402
from cae.experiment import train_or_load  # noqa: E402
from cae.lecture import live_config  # noqa: E402
from cae.load import LoadMeter, load_now  # noqa: E402
from cae.timing import Estimate, Pace, experiment_work, seconds_per_mflop  # noqa: E402
from cae.words import duration  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def neighbour(data: str, runs: Path) -> subprocess.Popen:
    """Another training that keeps the machine busy until stopped (the CLI, one long run)."""
    command = [sys.executable, "-m", "cae", "train", "--data", data, "--runs", str(runs)]
    command += ["--ae-epochs", "200", "--clf-epochs", "0", "--limit", "10000", "--batch-size", "500"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--busy", choices=("never", "always", "alternate"), default="always")
    parser.add_argument("--recipe", choices=("live", "quick"), default="live")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    base = live_config(len(dataset.train), len(dataset.test)) if args.recipe == "live" else preset_config(QUICK_LOOK)
    folder = Path(tempfile.mkdtemp(prefix="cae-estimates-"))
    threads, cores = worker_threads(), os.cpu_count() or 1
    torch.set_num_threads(threads)  # as the app's worker trains
    other, rows, paces = None, [], []
    try:
        step = seconds_per_mflop(base)  # measured once, as the app's worker does
        for i in range(args.runs):
            wanted = args.busy == "always" or (args.busy == "alternate" and i % 2 == 1)
            if wanted and other is None:
                other = neighbour(args.data, folder / "neighbour")
                time.sleep(15)  # it has loaded its data and trains
            elif not wanted and other is not None:
                other.terminate()
                other.wait()
                other = None
            cfg = base.replace(seed=i)  # a new run each time, never found in a cache
            work = experiment_work(cfg, len(dataset.train), len(dataset.test))
            load = load_now(window=1.0)
            estimate = Estimate.of(work, step, list(paces), load, threads, cores)
            meter, t0 = LoadMeter(), time.perf_counter()
            train_or_load(cfg, dataset, folder / "runs")
            actual, met, shares = time.perf_counter() - t0, meter.demand(threads, cores), meter.shares()
            paces.append(Pace(actual / work, met, work))
            held = estimate.low <= actual <= estimate.high
            rows.append(
                {
                    "run": i + 1,
                    "neighbour": other is not None,
                    "load before": load,
                    "load met (demand)": met,
                    "cores (own, others')": shares,
                    "basis": estimate.basis,
                    "low": estimate.low,
                    "likely": estimate.likely,
                    "high": estimate.high,
                    "actual": actual,
                    "actual / likely": actual / estimate.likely,
                    "in range": held,
                }
            )
            print(
                f"run {i + 1} ({'beside a training' if other else 'alone'}, load {load:.1f} before, {met:.1f} met): "
                f"said {estimate.words()}; took {duration(actual)} "
                f"({actual / estimate.likely:.2f}x the likely figure, {'inside' if held else 'OUTSIDE'} the range)",
                flush=True,
            )
    finally:
        if other is not None:
            other.terminate()
            other.wait()
    out = ROOT / "bench" / "results" / f"estimates-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"recipe": args.recipe, "busy": args.busy, "step": step, "rows": rows}, indent=1))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
