"""Do the time estimates hold on a busy machine? Trains one recipe several times in a row, as the
app's worker would, while (with --busy) another training runs beside it the whole time, and before
each run makes the estimate the Train page would show (cae.timing.Estimate: by the earlier runs'
speeds, or by one measured step before there are any). Prints estimate against actual and writes
bench/results/estimates-<time>.json. A benchmark, not a test: timings here are noisy.

    python bench/estimates.py [--data ../shared/datasets/cifar10-jpeg] [--runs 4] [--busy]
                              [--recipe live|quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from cae.config import QUICK_LOOK, preset_config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.experiment import train_or_load  # noqa: E402
from cae.lecture import live_config  # noqa: E402
from cae.timing import Estimate, experiment_work, seconds_per_mflop  # noqa: E402
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
    parser.add_argument("--busy", action="store_true", help="another training runs beside every run")
    parser.add_argument("--recipe", choices=("live", "quick"), default="live")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    base = live_config(len(dataset.train), len(dataset.test)) if args.recipe == "live" else preset_config(QUICK_LOOK)
    folder = Path(tempfile.mkdtemp(prefix="cae-estimates-"))
    other = neighbour(args.data, folder / "neighbour") if args.busy else None
    rows, speeds = [], []
    try:
        time.sleep(10 if other else 0)  # the neighbour has started training
        step = seconds_per_mflop(base)  # measured once, as the app's worker does
        for i in range(args.runs):
            cfg = base.replace(seed=i)  # a new run each time, never found in a cache
            work = experiment_work(cfg, len(dataset.train), len(dataset.test))
            estimate = Estimate.of(work, step, list(speeds))
            t0 = time.perf_counter()
            train_or_load(cfg, dataset, folder / "runs")
            actual = time.perf_counter() - t0
            speeds.append(actual / work)
            held = estimate.low <= actual <= estimate.high
            rows.append(
                {
                    "run": i + 1,
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
                f"run {i + 1}: said {estimate.words()}; took {duration(actual)} "
                f"({actual / estimate.likely:.2f}× the likely figure, {'inside' if held else 'OUTSIDE'} the range)",
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
