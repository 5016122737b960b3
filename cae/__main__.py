"""The command line: `python -m cae train ...` and `python -m cae evaluate RUN_DIR`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from cae.config import DEVICES, SETTINGS, Config, ConfigError, few_steps_warning
from cae.data import load_dataset
from cae.experiment import evaluate_run, train_or_load, transfer_config
from cae.runs import USER_ERRORS, Run, check_writable, load_run
from cae.settings import Setting
from cae.train import Progress
from cae.words import PHASE_NAMES
from cae.words import duration as minutes


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit status 2), without the usage block."""

    def error(self, message: str):
        self.exit(2, f"cae: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="python -m cae", description="The lecture's convolutional autoencoder.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train a run (autoencoder, fine-tuning, scratch baseline)")
    for spec in SETTINGS.values():
        add_option(t, spec)
    t.add_argument("--data", default=None, help="image folder, CIFAR-10 download folder, or 'sample'")
    t.add_argument("--runs", default=None, help="runs folder (default: $CAE_RUNS or ./runs)")
    t.add_argument("--force", action="store_true", help="train again even if the run exists")
    w = sub.add_parser("worker", help="(started by the app) the process that trains for the web server")
    w.add_argument("--fd", type=int, required=True, help="this process's end of the manager's socket pair")
    w.add_argument("--runs", required=True)
    w.add_argument("--parent", type=int, required=True, help="the web server's process id")
    r = sub.add_parser("ray-driver", help="(started by the app) the process that trains on a Ray cluster for it")
    r.add_argument("--fd", type=int, required=True, help="this process's end of the manager's socket pair")
    r.add_argument("--runs", required=True)
    r.add_argument("--parent", type=int, required=True, help="the web server's process id")
    r.add_argument("--address", required=True, help="the cluster's address (CAE_RAY_ADDRESS)")
    e = sub.add_parser("evaluate", help="evaluate a saved run on the test split")
    e.add_argument("run_dir")
    e.add_argument("--data", default=None)
    e.add_argument("--test-limit", type=int, default=0, help="test images (0: the whole split)")
    e.add_argument("--device", choices=DEVICES, default="auto")
    return parser


def add_option(parser: argparse.ArgumentParser, spec: Setting) -> None:
    """The setting's command-line option, from its description. Every option defaults to None, so
    that --encoder-from can tell a choice that conflicts with the source run from one left out."""
    if spec.option is None:
        return
    if spec.name == "encoder_from":  # a run folder on the command line, its autoencoder key in the Config
        parser.add_argument(spec.option, dest=spec.name, default=None, metavar="RUN_DIR", help=spec.help)
    elif spec.kind == "bool":  # a switch away from the default
        parser.add_argument(spec.option, dest=spec.name, action="store_const", const=not spec.default, help=spec.help)
    else:
        default = (
            ""
            if spec.optional
            else f" (default {spec.default:g})"
            if spec.kind == "float"
            else f" (default {spec.default})"
        )
        parser.add_argument(
            spec.option,
            dest=spec.name,
            type={"int": int, "float": float, "str": str}[spec.kind],
            choices=spec.choices or None,
            default=None,
            help=spec.help + default,
        )


# The options that decide the autoencoder: with --encoder-from, the source run's.
AUTOENCODER_OPTIONS = {
    name: spec.option for name, spec in SETTINGS.items() if spec.group in ("model", "autoencoder", "objective")
}


def whole_split(value: int | None, flag: str) -> int | None:
    """0 (or nothing) means the whole split, as on the Train page; a negative number is refused."""
    if value is not None and value < 0:
        raise ConfigError(f"{flag} must be 0 (all images) or a positive number, got {value}.")
    return value or None


def config_from_args(args: argparse.Namespace, source: Run | None = None) -> Config:
    """The request the arguments describe; with a source run (--encoder-from), its autoencoder's
    settings, where an explicit conflicting option is an error."""
    chosen = {k: getattr(args, k) for k in AUTOENCODER_OPTIONS if getattr(args, k) is not None}
    common = {
        name: spec.default if getattr(args, name) is None else getattr(args, name)
        for name, spec in SETTINGS.items()
        if name not in AUTOENCODER_OPTIONS and spec.option is not None and name != "encoder_from"
    }
    common.update(limit=whole_split(args.limit, "--limit"), test_limit=whole_split(args.test_limit, "--test-limit"))
    if source is None:
        return Config(**chosen, **common)
    for name, value in chosen.items():
        if name != "batch_size" and value != getattr(source.config, name):
            raise ConfigError(
                f"{AUTOENCODER_OPTIONS[name]} {value} conflicts with the run given to "
                f"--encoder-from ({name} {getattr(source.config, name)}); leave it out."
            )
    if "batch_size" in chosen and args.clf_batch_size is None:
        common["clf_batch_size"] = chosen["batch_size"]  # with a source, the batch size is the classifier's
    return transfer_config(source, **common)


def epoch_line(phase: str, row: dict, epochs: int) -> str:
    """The lecture's per-epoch line (with true mean losses), plus test results."""
    name = PHASE_NAMES[phase]
    loss = row.get("train_mse", row.get("train_loss"))
    line = (
        f"{name} Iteration: {row['epoch']}/{epochs} ; Training Loss: {loss:.4f} ; "
        f"Time consumed: {minutes(row['seconds'])}"
    )
    knn = f" ; k-NN accuracy of the code: {row['knn_acc']:.1f}%" if "knn_acc" in row else ""
    if "test_mse" in row:
        return line + f" ; Test MSE: {row['test_mse']:.4f}{knn}"
    if "test_acc" not in row:  # contrastive pretraining: its loss is NT-Xent, and there is no test MSE
        return line.replace("Training Loss", "Training Loss (NT-Xent)") + knn
    return line + f" ; Test accuracy: {row['test_acc']:.2f}%"


def download_progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        share = f" ({done / total:.0%})" if total else ""
        print(f"\r  downloading CIFAR-10: {done / 1e6:.0f} MB{share}   ", end="", file=sys.stderr, flush=True)


def train(args: argparse.Namespace) -> int:
    source = load_run(args.encoder_from) if args.encoder_from else None
    cfg = config_from_args(args, source)
    check_writable(args.runs)  # before any training: a run that cannot be saved is never trained
    if args.data and args.data != "sample":
        print("Images that are not 32x32 are resized to 32x32.", file=sys.stderr)
    dataset = load_dataset(args.data, on_progress=download_progress)
    for note in dataset.notes:
        print(note, file=sys.stderr)
    print(f"Dataset: {dataset.name}: {len(dataset.train)} train / {len(dataset.test)} test images")
    if source is not None:
        print(f"Encoder from {source.name} (trained on {source.metrics['dataset']['name']}); no autoencoder training.")
    if warning := few_steps_warning(cfg, len(dataset.train), len(dataset.classes)):
        print(f"Warning: {warning}", file=sys.stderr)
    live = sys.stderr.isatty()

    def on_progress(p: Progress) -> None:
        if live:
            print(
                f"\r  {p.phase} epoch {p.epoch}/{p.epochs} batch {p.batch}/{p.batches} "
                f"loss {p.loss:.4f}  elapsed {minutes(p.elapsed)}  left ~{minutes(p.remaining)}   ",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def on_epoch(phase: str, row: dict, _model) -> None:
        epochs = cfg.ae_epochs if phase == "autoencoder" else cfg.clf_epochs
        print(("\r" if live else "") + epoch_line(phase, row, epochs), flush=True)

    start = time.perf_counter()
    outcome = train_or_load(cfg, dataset, args.runs, args.force, on_progress, None, on_epoch, source)
    if outcome.cached:
        print("An identical run exists; reusing it (pass --force to train again).")
    elif outcome.result.metrics.get("autoencoder_source"):
        print(f"Autoencoder reused from run {outcome.result.metrics['autoencoder_source']}.")
    if outcome.result is not None and outcome.result.metrics["classifier"]:
        m = outcome.result.metrics
        print(
            f"Test accuracy: fine-tuned {m['classifier'][-1]['test_acc']:.2f}%"
            + (f", scratch {m['scratch']['classifier'][-1]['test_acc']:.2f}%" if m["scratch"]["classifier"] else "")
        )
    print(f"Total time: {minutes(time.perf_counter() - start)} ({time.perf_counter() - start:.1f} s)")
    print(outcome.path)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    dataset = load_dataset(args.data)
    test_limit = whole_split(args.test_limit, "--test-limit")
    print(json.dumps(evaluate_run(run, dataset, test_limit, args.device)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        from cae.worker import serve

        serve(args.fd, args.runs, args.parent)
        return 0
    if args.command == "ray-driver":
        from cae.raydriver import drive

        drive(args.fd, args.runs, args.parent, args.address)
        return 0
    try:
        return train(args) if args.command == "train" else evaluate(args)
    except USER_ERRORS as exc:
        print(f"cae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncae: interrupted; nothing was saved.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
