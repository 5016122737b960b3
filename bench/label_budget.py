"""The label-budget experiment (cae/budget.py) for the shipped encoders, metrics only, into
pretrained/label_budget.json; each finished point is written at once, so a stopped sweep resumes.

    python bench/label_budget.py [--data ../shared/datasets/cifar10-jpeg] [--seeds 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402

from cae import budget as label_budget  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.files import write_atomically  # noqa: E402
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("z1024-bilinear-ae5-clf5-8662a6d11dda", "z1024-bilinear-ae30-clf30-111e759f24b1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--out", default=str(ROOT / "pretrained" / "label_budget.json"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="*", default=list(label_budget.BUDGETS))
    parser.add_argument("--sources", nargs="*", default=list(SOURCES))
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    out = Path(args.out)
    shipped = json.loads(out.read_text()) if out.exists() else {}
    shipped.update(dataset=dataset.summary(), steps=label_budget.STEPS,
                   protocol=" ".join(label_budget.__doc__.split("\n\n", 1)[1].split()))
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
                entry["points"].append(label_budget.run_point(source, dataset, budget, seed))
                p = entry["points"][-1]
                print(f"{titles.get(name, {}).get('title', name)}, {budget} labels, seed {seed}: fine-tuned "
                      f"{p['finetuned']:.1f}%, frozen {p['frozen']:.1f}%, scratch {p['scratch']:.1f}% "
                      f"({p['seconds']:.0f} s)", flush=True)
                save(shipped, out)
    save(shipped, out)  # the protocol and titles, also when every point was there already


def save(shipped: dict, out: Path) -> None:
    text = json.dumps(shipped, indent=1)
    write_atomically(out, lambda tmp: tmp.write_text(text), folder=False)


if __name__ == "__main__":
    main()
