"""Ship a trained run in pretrained/ with fp16 weights, after checking that evaluation on the full
test split moves by at most 0.1 accuracy point, and record its title in pretrained/index.json.

    python bench/ship_run.py RUN_DIR --title "..." --description "..." [--default] [--data PATH]

A run whose autoencoder another shipped run already holds (the same autoencoder key) is shipped
without it (`export_run`); ship the run that trained an autoencoder first, and remove an old copy
of a run being replaced before shipping the runs that share its autoencoder.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse
import json

from bench.shipping import export_run
from cae.data import load_dataset
from cae.experiment import evaluate_run
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--title", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("--default", action="store_true", help="the run the app opens on")
    parser.add_argument("--data", default="../shared/datasets/cifar10-jpeg")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    before = evaluate_run(load_run(args.run_dir), dataset)
    shipped = export_run(Path(args.run_dir), PRETRAINED_DIR, half=True)
    after = evaluate_run(load_run(shipped), dataset)
    print(json.dumps({"fp32": before, "fp16": after}, indent=1))
    if before["test_acc"] is not None and abs(before["test_acc"] - after["test_acc"]) > 0.1:
        print("fp16 storage moves accuracy by more than 0.1 point; not shipping it in fp16.", file=sys.stderr)
        export_run(Path(args.run_dir), PRETRAINED_DIR, half=False)
    index = pretrained_index()
    index.setdefault("runs", {})[shipped.name] = {"title": args.title, "description": args.description}
    if args.default or not index.get("default"):
        index["default"] = shipped.name
    (PRETRAINED_DIR / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(shipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
