"""The new user's journey in numbers, on the bundled sample (1,000 + 200 CIFAR-10 images):

1. the "Small data" preset, 3 seeds (what Train with the defaults gives a fresh clone);
2. transfer: the shipped Lecture preset's encoder (trained on 50,000 unlabelled images) fine-tuned
   on the sample's 1,000 labels with the same schedule, vs the same classifier from scratch, 3 seeds;
3. the shipped Lecture preset evaluated on the sample's 200 test images.

    python bench/journey.py [--seeds 0 1 2] [--runs DIR]

Prints Markdown tables and writes bench/results/journey-<time>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from cae.config import SMALL_DATA, preset_config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.devices import describe_device, resolve_device  # noqa: E402
from cae.experiment import evaluate_run, train_or_load, transfer_config
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index  # noqa: E402


def final_acc(metrics: dict, scratch: bool = False) -> float:
    rows = (metrics["scratch"] if scratch else metrics)["classifier"]
    return rows[-1]["test_acc"]


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default=None, help="runs folder (default: a temporary one)")
    args = parser.parse_args()
    runs = Path(args.runs or tempfile.mkdtemp(prefix="journey-runs-"))
    sample = load_dataset("sample")
    shipped = load_run(PRETRAINED_DIR / pretrained_index()["default"])
    small = preset_config(SMALL_DATA)
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        own = train_or_load(small.replace(seed=seed), sample, runs, force=True).result.metrics
        t1 = time.perf_counter()
        # the same schedule as the preset's classifier phase, from the shipped encoder
        moved = transfer_config(
            shipped, clf_epochs=small.clf_epochs, clf_lr=small.clf_lr, clf_batch_size=small.batch_size, seed=seed
        )
        transfer = train_or_load(moved, sample, runs, force=True, source=shipped).result.metrics
        t2 = time.perf_counter()
        rows.append(
            {
                "seed": seed,
                "small_data_finetuned": final_acc(own),
                "small_data_scratch": final_acc(own, True),
                "small_data_test_mse": own["autoencoder"][-1]["test_mse"],
                "small_data_seconds": t1 - t0,
                "transfer_finetuned": final_acc(transfer),
                "transfer_scratch": final_acc(transfer, True),
                "transfer_seconds": t2 - t1,
            }
        )
    shipped_on_sample = evaluate_run(shipped, sample)
    print(f"Device: {describe_device(resolve_device('auto'))}; data: {sample.name}\n")
    print(
        "| seed | Small data: fine-tuned % | scratch % | test MSE | wall s "
        "| transfer: fine-tuned % | scratch % | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['small_data_finetuned']:.1f} | {r['small_data_scratch']:.1f} | "
            f"{r['small_data_test_mse']:.4f} | {r['small_data_seconds']:.1f} | {r['transfer_finetuned']:.1f} | "
            f"{r['transfer_scratch']:.1f} | {r['transfer_seconds']:.1f} |"
        )
    print(
        f"| mean ± s.d. | {spread([r['small_data_finetuned'] for r in rows])} | "
        f"{spread([r['small_data_scratch'] for r in rows])} | | | {spread([r['transfer_finetuned'] for r in rows])} | "
        f"{spread([r['transfer_scratch'] for r in rows])} | |"
    )
    print(
        f"\nShipped Lecture preset on the sample's {len(sample.test)} test images: test MSE "
        f"{shipped_on_sample['test_mse']:.4f}, accuracy {shipped_on_sample['test_acc']:.1f}% "
        f"(on its own 10,000 test images: {shipped.metrics['autoencoder'][-1]['test_mse']:.4f}, "
        f"{final_acc(shipped.metrics):.1f}%)"
    )
    out = Path(__file__).parent / "results" / f"journey-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {"rows": rows, "shipped_on_sample": shipped_on_sample, "device": describe_device(resolve_device("auto"))},
            indent=1,
        )
    )
    print(f"\n{out}")


if __name__ == "__main__":
    main()
