"""The label-budget experiment: test accuracy against the number of labelled training images, for
a shipped autoencoder's encoder fine-tuned, the same encoder frozen under a linear head, and the
same classifier trained from scratch (every layer). Metrics only, into pretrained/label_budget.json.

    python bench/label_budget.py [--data ../shared/datasets/cifar10-jpeg] [--seeds 3]

The protocol (the same for all three lines at a budget): the labelled images are a class-balanced
draw seeded by the point's seed (which also draws the head and the batch order; the autoencoder
is the shipped one, never retrained); batch size min(128, budget / 10), so an epoch is at least
10 optimiser steps; exactly STEPS optimiser steps at every budget, Adam at the run's fine-tuning
learning rate; test accuracy on the whole test split after the last step (never used to choose
anything). Each finished point is written at once, so a stopped sweep resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from cae.data import load_dataset  # noqa: E402
from cae.files import write_atomically  # noqa: E402
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index, reused_autoencoder  # noqa: E402
from cae.train import run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = (100, 300, 1000, 3000, 10000, 50000)
STEPS = 300
SOURCES = ("z1024-bilinear-ae5-clf5-8662a6d11dda", "z1024-bilinear-ae30-clf30-111e759f24b1")


def batch_for(budget: int) -> int:
    return max(1, min(128, budget // 10))


def point(source, dataset, budget: int, seed: int) -> dict:
    """One budget and seed: the fine-tuned and scratch lines from one run, the frozen line from another."""
    cfg = source.config.replace(label_count=budget, clf_steps=STEPS, clf_batch_size=batch_for(budget),
                                clf_seed=seed, limit=None, test_limit=None, flip=False)
    t0 = time.perf_counter()
    both = run_experiment(cfg.replace(freeze_encoder=False, scratch_baseline=True), dataset,
                          reuse=reused_autoencoder(source)).metrics
    frozen = run_experiment(cfg.replace(freeze_encoder=True, scratch_baseline=False), dataset,
                            reuse=reused_autoencoder(source)).metrics
    return {"budget": budget, "seed": seed, "batch_size": batch_for(budget), "steps": STEPS,
            "finetuned": both["classifier"][-1]["test_acc"], "scratch": both["scratch"]["classifier"][-1]["test_acc"],
            "frozen": frozen["classifier"][-1]["test_acc"],
            "per_class": {"finetuned": both["per_class_acc"], "scratch": both["scratch"]["per_class_acc"],
                          "frozen": frozen["per_class_acc"]},
            "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--out", default=str(ROOT / "pretrained" / "label_budget.json"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="*", default=list(BUDGETS))
    parser.add_argument("--sources", nargs="*", default=list(SOURCES))
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    out = Path(args.out)
    shipped = json.loads(out.read_text()) if out.exists() else {}
    shipped.update(dataset=dataset.summary(), steps=STEPS, protocol=__doc__.split("\n\n", 2)[2].strip())
    titles = pretrained_index(PRETRAINED_DIR)["runs"]
    for name in args.sources:
        source = load_run(PRETRAINED_DIR / name)
        entry = shipped.setdefault("sources", {}).setdefault(name, {"points": []})
        entry.update(title=titles.get(name, {}).get("title", name), ae_epochs=source.config.ae_epochs,
                     clf_lr=source.config.clf_lr)
        for seed in range(args.seeds):
            for budget in args.budgets:
                if budget > len(dataset.train) or any((p["budget"], p["seed"]) == (budget, seed) for p in entry["points"]):
                    continue
                entry["points"].append(point(source, dataset, budget, seed))
                p = entry["points"][-1]
                print(f"{titles.get(name, {}).get('title', name)}, {budget} labels, seed {seed}: fine-tuned "
                      f"{p['finetuned']:.1f}%, frozen {p['frozen']:.1f}%, scratch {p['scratch']:.1f}% "
                      f"({p['seconds']:.0f} s)", flush=True)
                text = json.dumps(shipped, indent=1)
                write_atomically(out, lambda tmp: tmp.write_text(text), folder=False)


if __name__ == "__main__":
    main()
