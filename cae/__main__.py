"""The command line: `python -m cae train ...` and `python -m cae evaluate RUN_DIR`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from cae.config import Config, ConfigError
from cae.data import DataError, load_dataset
from cae.report import duration as minutes
from cae.runs import RunError, evaluate_run, load_run, train_or_load
from cae.train import DeviceError, Progress

USER_ERRORS = (ConfigError, DataError, DeviceError, RunError)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit status 2), without the usage block."""

    def error(self, message: str):
        self.exit(2, f"cae: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="python -m cae", description="The lecture's convolutional autoencoder.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train a run (autoencoder, fine-tuning, scratch baseline)")
    d = Config()
    t.add_argument("--latent-dim", type=int, default=d.latent_dim)
    t.add_argument("--leak", type=float, default=d.leak)
    t.add_argument("--upsample", choices=["bilinear", "nearest", "transpose"], default=d.upsample)
    t.add_argument("--ae-epochs", type=int, default=d.ae_epochs)
    t.add_argument("--clf-epochs", type=int, default=d.clf_epochs)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--clf-lr", type=float, default=d.clf_lr)
    t.add_argument("--label-fraction", type=float, default=d.label_fraction)
    t.add_argument("--freeze-encoder", action="store_true")
    t.add_argument("--no-scratch", action="store_true", help="skip the scratch baseline")
    t.add_argument("--flip", action="store_true", help="random horizontal flips while training")
    t.add_argument("--limit", type=int, default=None, help="class-balanced training subset size")
    t.add_argument("--test-limit", type=int, default=None)
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=d.precision)
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=d.device)
    t.add_argument("--data", default=None, help="image folder, CIFAR-10 download folder, or 'sample'")
    t.add_argument("--runs", default=None, help="runs folder (default: $CAE_RUNS or ./runs)")
    t.add_argument("--force", action="store_true", help="train again even if the run exists")
    e = sub.add_parser("evaluate", help="evaluate a saved run on the test split")
    e.add_argument("run_dir")
    e.add_argument("--data", default=None)
    e.add_argument("--test-limit", type=int, default=None)
    e.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(latent_dim=args.latent_dim, leak=args.leak, upsample=args.upsample,
                  ae_epochs=args.ae_epochs, clf_epochs=args.clf_epochs, batch_size=args.batch_size,
                  lr=args.lr, clf_lr=args.clf_lr, label_fraction=args.label_fraction,
                  freeze_encoder=args.freeze_encoder, scratch_baseline=not args.no_scratch,
                  limit=args.limit, test_limit=args.test_limit, flip=args.flip,
                  precision=args.precision, seed=args.seed, device=args.device)


def epoch_line(phase: str, row: dict, epochs: int) -> str:
    """The lecture's per-epoch line (with true mean losses), plus test results."""
    name = {"autoencoder": "Autoencoder", "classifier": "Fine-tuning", "scratch": "Scratch"}[phase]
    loss = row.get("train_mse", row.get("train_loss"))
    line = (f"{name} Iteration: {row['epoch']}/{epochs} ; Training Loss: {loss:.4f} ; "
            f"Time consumed: {minutes(row['seconds'])}")
    if "test_mse" in row:
        return line + f" ; Test MSE: {row['test_mse']:.4f}"
    return line + f" ; Test accuracy: {row['test_acc']:.2f}%"


def train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.data and args.data != "sample":
        print("Images that are not 32x32 are resized to 32x32.", file=sys.stderr)
    dataset = load_dataset(args.data)
    for note in dataset.notes:
        print(note, file=sys.stderr)
    print(f"Dataset: {dataset.name}: {len(dataset.train)} train / {len(dataset.test)} test images")
    live = sys.stderr.isatty()

    def on_progress(p: Progress) -> None:
        if live:
            print(f"\r  {p.phase} epoch {p.epoch}/{p.epochs} batch {p.batch}/{p.batches} "
                  f"loss {p.loss:.4f}  elapsed {minutes(p.elapsed)}  left ~{minutes(p.remaining)}   ",
                  end="", file=sys.stderr, flush=True)

    def on_epoch(phase: str, row: dict, _model) -> None:
        epochs = cfg.ae_epochs if phase == "autoencoder" else cfg.clf_epochs
        print(("\r" if live else "") + epoch_line(phase, row, epochs), flush=True)

    start = time.perf_counter()
    outcome = train_or_load(cfg, dataset, args.runs, args.force, on_progress, None, on_epoch)
    if outcome.cached:
        print("An identical run exists; reusing it (pass --force to train again).")
    elif outcome.result.metrics.get("autoencoder_source"):
        print(f"Autoencoder reused from run {outcome.result.metrics['autoencoder_source']}.")
    if outcome.result is not None and outcome.result.metrics["classifier"]:
        m = outcome.result.metrics
        print(f"Test accuracy: fine-tuned {m['classifier'][-1]['test_acc']:.2f}%" +
              (f", scratch {m['scratch']['classifier'][-1]['test_acc']:.2f}%" if m["scratch"]["classifier"] else ""))
    print(f"Total time: {minutes(time.perf_counter() - start)} ({time.perf_counter() - start:.1f} s)")
    print(outcome.path)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    dataset = load_dataset(args.data)
    print(json.dumps(evaluate_run(run, dataset, args.test_limit, args.device)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
