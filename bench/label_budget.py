"""The label-budget experiment (cae/budget.py) for the shipped encoders, metrics only, into
pretrained/label_budget.json; each finished point is written at once, so a stopped sweep resumes.
Every point records the precision it trained in; `--precision fp32` adds an fp32 check beside the
app's default (bf16 on a CPU that does it natively).

    python bench/label_budget.py [--data ../shared/datasets/cifar10-jpeg] [--seeds 5] [--precision fp32]

What shipped (two processes at a time, OMP_NUM_THREADS=1 each): the preset's encoder in bf16 and,
beside it, in fp32 at 300 / 1,000 / 3,000 labels (`--precision fp32 --budgets 300 1000 3000`); then
the long run's encoder in bf16, its seeds shared between two processes (`--seed-list 0 2 4` and
`--seed-list 1 3`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402

from cae import budget as label_budget  # noqa: E402
from cae.budget_report import label_budget_sentence  # noqa: E402
from cae.config import PRECISIONS  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.devices import resolve_device, resolve_precision  # noqa: E402
from cae.evidence import compare_seeds  # noqa: E402
from cae.files import write_atomically  # noqa: E402
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index  # noqa: E402
from cae.sweeps import budget_lines  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("z1024-bilinear-ae5-clf5-8662a6d11dda", "z1024-bilinear-ae30-clf30-111e759f24b1")
DEFAULT_BUDGETS = (100, 300, 1000, 3000, 10000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--out", default=str(ROOT / "pretrained" / "label_budget.json"))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument(
        "--seed-list",
        type=int,
        nargs="*",
        default=None,
        help="these seeds instead (to share the points among processes)",
    )
    parser.add_argument("--budgets", type=int, nargs="*", default=list(DEFAULT_BUDGETS))
    parser.add_argument("--sources", nargs="*", default=list(SOURCES))
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--table", action="store_true", help="print the file's tables for docs/RESULTS.md and stop")
    args = parser.parse_args()
    if args.table:
        print(tables(json.loads(Path(args.out).read_text())))
        return
    dataset = load_dataset(args.data)
    out = Path(args.out)
    shipped = json.loads(out.read_text()) if out.exists() else {}
    precision = resolve_precision(args.precision, resolve_device("auto"))
    shipped.update(dataset=dataset.summary(), steps=label_budget.STEPS, protocol=label_budget.PROTOCOL)
    # the lines the pages draw: the app's own precision here (bf16 on a CPU that does it natively);
    # points of another precision are checks beside them
    shipped["precision"] = resolve_precision("auto", resolve_device("auto"))
    titles = pretrained_index(PRETRAINED_DIR)["runs"]
    for name in args.sources:
        source = load_run(PRETRAINED_DIR / name)
        source = dataclasses.replace(source, config=source.config.replace(precision=precision))
        entry = shipped.setdefault("sources", {}).setdefault(name, {"points": []})
        title = titles.get(name, {}).get("title", name)
        entry.update(title=title, ae_epochs=source.config.ae_epochs, clf_lr=source.config.clf_lr)
        seeds = args.seed_list if args.seed_list is not None else args.seeds
        done = {(p["budget"], p["seed"]) for p in entry["points"] if p.get("precision") == precision}

        def keep(point: dict, entry=entry, title=title) -> None:
            entry["points"].append({**point, "precision": precision})
            print(
                f"{title}, {point['budget']} labels, seed {point['seed']}, {precision}: fine-tuned "
                f"{point['finetuned']:.1f}%, frozen {point['frozen']:.1f}%, scratch {point['scratch']:.1f}% "
                f"({point['seconds']:.0f} s)",
                flush=True,
            )
            save(shipped, out)

        label_budget.run_sweep(source, dataset, args.budgets, seeds, on_point=keep, done=done)
    save(shipped, out)  # the protocol and titles, also when every point was there already


def tables(shipped: dict) -> str:
    """Per source and precision: mean (lowest–highest seed) of each line per budget, the seeds rule's
    verdict on fine-tuned vs scratch, and the page's sentence."""
    out = []
    for entry in shipped["sources"].values():
        for precision in sorted({p.get("precision") for p in entry["points"]}, key=str):
            lines = budget_lines(entry["points"], precision)
            out += [
                f"**{entry['title']}, {precision}**",
                "",
                "| labels | seeds | fine-tuned | frozen | scratch | fine-tuned − scratch | seeds rule |",
                "|---|---|---|---|---|---|---|",
            ]
            for b in sorted(lines["finetuned"]):
                cells = [
                    f"{lines[k][b]['mean']:.1f} ({lines[k][b]['low']:.1f}–{lines[k][b]['high']:.1f})"
                    for k in ("finetuned", "frozen", "scratch")
                ]
                fine, scratch = lines["finetuned"][b], lines["scratch"][b]
                said = (
                    {None: "within the spread", 0: "fine-tuned ahead", 1: "scratch ahead"}[
                        compare_seeds(fine["values"], scratch["values"]).winner
                    ]
                    if fine["n"] > 1
                    else "one seed"
                )
                out.append(
                    f"| {b:,} | {fine['n']} | {' | '.join(cells)} | "
                    f"{round(fine['mean'] - scratch['mean'], 1) + 0:+.1f} | "
                    f"{said} |"
                )
            out += ["", label_budget_sentence(lines), ""]
    return "\n".join(out)


def save(shipped: dict, out: Path) -> None:
    """Write the file with every point it holds now as well (two runs of this script, say one per
    precision, may write the same file; a lock beside it keeps their writes apart)."""
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge_and_write(shipped, out)


def _merge_and_write(shipped: dict, out: Path) -> None:
    if out.exists():
        for name, entry in json.loads(out.read_text()).get("sources", {}).items():
            mine = shipped.setdefault("sources", {}).setdefault(name, {**entry, "points": []})["points"]
            known = {(p["budget"], p["seed"], p.get("precision")) for p in mine}
            mine += [p for p in entry["points"] if (p["budget"], p["seed"], p.get("precision")) not in known]
    text = json.dumps(shipped, indent=1)
    write_atomically(out, lambda tmp: tmp.write_text(text), folder=False)


if __name__ == "__main__":
    main()
