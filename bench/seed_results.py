"""The spread over seeds behind the shipped runs, metrics only, into pretrained/seeds.json: runs that
share every setting but the seed are one group (the shipped run is the group's seed 0), so the
pages can say whether a gap between fine-tuned and scratch is more than the seeds' spread.

    python bench/seed_results.py RUN_DIR [RUN_DIR ...] [--out pretrained/seeds.json]

`bash bench/train_pretrained.sh` trains the runs (seeds 1 and 2 of the preset and of the
fine-tuning lr 2e-3 variant; each about 4 minutes here).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402

from cae.config import Config  # noqa: E402
from cae.files import write_atomically  # noqa: E402
from cae.report import seeds_paragraph  # noqa: E402
from cae.runs import read_metrics  # noqa: E402
from cae.sweeps import recipe_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEPT = ("autoencoder", "classifier", "per_class_acc", "device", "precision", "seconds_total")


def seed_entry(metrics: dict, name: str) -> dict:
    """One seed's numbers: the per-epoch rows of every phase and the per-class accuracies."""
    entry = {"seed": metrics["config"]["seed"], "run": name, **{k: metrics[k] for k in KEPT if k in metrics}}
    if scratch := metrics.get("scratch"):
        entry["scratch"] = {"classifier": scratch["classifier"], "per_class_acc": scratch["per_class_acc"]}
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default=str(ROOT / "pretrained" / "seeds.json"))
    args = parser.parse_args()
    groups: dict[str, dict] = {}
    dataset = None
    for folder in map(Path, args.runs):
        metrics = read_metrics(folder)
        dataset = dataset or metrics["dataset"]
        if metrics["dataset"]["fingerprint"] != dataset["fingerprint"]:
            sys.exit(f"{folder} was trained on other data than {args.runs[0]}.")
        recipe = recipe_of(metrics)
        group = groups.setdefault(json.dumps(recipe, sort_keys=True), {"recipe": recipe, "seeds": []})
        group["seeds"].append(seed_entry(metrics, folder.name))
    for group in groups.values():
        group["seeds"].sort(key=lambda s: s["seed"])
    text = json.dumps(
        {"dataset": {k: v for k, v in dataset.items() if k != "origin"}, "groups": list(groups.values())}, indent=1
    )
    write_atomically(Path(args.out), lambda tmp: tmp.write_text(text), folder=False)
    for group in groups.values():
        print(markdown_table(group))


def markdown_table(group: dict) -> str:
    """The group's seeds as the table in docs/RESULTS.md, with the seeds rule's verdict per column."""
    changed = {
        k: v for k, v in group["recipe"].items() if k not in ("dataset", "precision") and v != Config().to_dict().get(k)
    }
    lines = [
        f"Recipe: {changed or 'the lecture preset'}, {group['recipe']['precision']}.",
        "",
        "| seed | AE test MSE | fine-tuned ep. 1 % | scratch ep. 1 % | fine-tuned final % | scratch final % |",
        "|---|---|---|---|---|---|",
    ]
    for s in group["seeds"]:
        scratch = s["scratch"]["classifier"]
        lines.append(
            f"| {s['seed']} | {s['autoencoder'][-1]['test_mse']:.4f} | {s['classifier'][0]['test_acc']:.2f} | "
            f"{scratch[0]['test_acc']:.2f} | {s['classifier'][-1]['test_acc']:.2f} | "
            f"{scratch[-1]['test_acc']:.2f} |"
        )
    lines += ["", seeds_paragraph(group["seeds"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
