"""The lecture's table, reproduced: train the default configuration end to end (or evaluate a
saved run with --from) and print its numbers beside the lecture's, as Markdown.

    python bench/reproduce_lecture.py [--from pretrained/<run>] [--data PATH] [--runs DIR]
                                      [--compare RUN ...] [--write docs/RESULTS.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

from cae.analysis import best_and_worst, saturation  # noqa: E402
from cae.config import Config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.devices import describe_device, resolve_device  # noqa: E402
from cae.experiment import evaluate_run, train_or_load  # noqa: E402
from cae.runs import load_run  # noqa: E402
from cae.transcript import lecture_autoencoder_rows, lecture_classifier_rows  # noqa: E402


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(none)\n"
    cols = list(rows[0])

    def fmt(value, column: str) -> str:
        if value is None:
            return "–"
        if not isinstance(value, float):
            return str(value)
        if "s/epoch" in column:
            return f"{value:.1f}"
        return f"{value:.2f}" if "%" in column else f"{value:.4f}"

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c], c) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def differences(cfg: Config) -> str:
    default = Config().to_dict()
    diff = {k: v for k, v in cfg.to_dict().items() if default[k] != v and k != "device"}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "lecture preset"


def summary_row(run) -> dict:
    m = run.metrics
    clf, scratch = m.get("classifier") or [], (m.get("scratch") or {}).get("classifier") or []
    sat = saturation(clf)
    return {
        "run": run.name,
        "settings": differences(run.config),
        "AE test MSE": m["autoencoder"][-1]["test_mse"] if m["autoencoder"] else None,
        "acc ep1 %": clf[0]["test_acc"] if clf else None,
        "acc final %": clf[-1]["test_acc"] if clf else None,
        "scratch ep1 %": scratch[0]["test_acc"] if scratch else None,
        "scratch final %": scratch[-1]["test_acc"] if scratch else None,
        "best % (epoch)": f"{sat['best_acc']:.2f} ({sat['best_epoch']})" if sat else None,
        "within 1 pt of best from epoch": sat["within_epoch"] if sat else None,
        "epochs": f"{len(m['autoencoder'])}+{len(clf)}",
        "trained on": m["device"],
    }


def report(run, fresh: dict, machine: str) -> str:
    m = run.metrics
    extremes = best_and_worst(m.get("per_class_acc") or {})
    scratch_extremes = best_and_worst((m.get("scratch") or {}).get("per_class_acc") or {})
    per_class = [
        {
            "class": c,
            "pretrained %": m["per_class_acc"].get(c),
            "scratch %": (m.get("scratch") or {}).get("per_class_acc", {}).get(c),
        }
        for c in run.classes
    ]
    return "\n".join(
        [
            f"## {run.name}",
            f"Data: {m['dataset']['name']} ({m['dataset']['train_size']:,} train / {m['dataset']['test_size']:,} "
            f"test images; fingerprint {m['dataset']['fingerprint'][:12]}). Trained on: {m['device']}, precision "
            f"{m['precision']}, torch {m.get('torch', '?')}. Evaluated now on: {machine}.",
            f"Settings: {differences(run.config)}.",
            "",
            "### Autoencoder (the lecture printed losses ÷30 batches where CIFAR-10 has 25; "
            "the true column corrects that)",
            markdown_table(lecture_autoencoder_rows(m)),
            "### Classifier: fine-tuned from the autoencoder, and the same classifier from random init",
            markdown_table(lecture_classifier_rows(m)),
            f"Evaluated afresh on the test split: test MSE {fresh['test_mse']:.4f}, test accuracy "
            + (f"{fresh['test_acc']:.2f}%." if fresh["test_acc"] is not None else "– (no classifier)."),
            "",
            "### Per-class test accuracy",
            markdown_table(per_class),
            (
                f"Best class: {extremes[0][0]} ({extremes[0][1]:.1f}%); "
                f"worst: {extremes[1][0]} ({extremes[1][1]:.1f}%)."
                if extremes
                else ""
            )
            + (f" Scratch: best {scratch_extremes[0][0]}, worst {scratch_extremes[1][0]}." if scratch_extremes else "")
            + " The lecture: frog best, deer worst, cat next.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", help="evaluate this saved run instead of training")
    parser.add_argument("--data", default="../shared/datasets/cifar10-jpeg")
    parser.add_argument("--runs", default=None)
    parser.add_argument("--compare", nargs="*", default=[], help="more runs for the summary table")
    parser.add_argument("--write", help="also write the Markdown to this file")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    if args.source:
        run = load_run(args.source)
    else:
        run = load_run(train_or_load(Config(), dataset, args.runs).path)
    machine = f"{platform.machine()} {describe_device(resolve_device('auto'))}"
    fresh = evaluate_run(run, dataset)
    compared = [load_run(p) for p in args.compare]
    text = "\n".join(
        [
            f"<!-- written by bench/reproduce_lecture.py on {time.strftime('%Y-%m-%d %H:%M')} -->",
            report(run, fresh, machine),
            "## Runs compared",
            markdown_table([summary_row(r) for r in [run, *compared]]),
        ]
    )
    print(text)
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)


if __name__ == "__main__":
    main()
