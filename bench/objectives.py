"""What makes the code useful? The plain autoencoder against denoising, masking and crops
(cae/objectives.py), measured the same way, metrics only, into pretrained/objectives.json (and a
few reconstructions as uint8 in pretrained/objectives_pictures.npz). Each finished option is written
at once, so a stopped comparison resumes; two processes may share the options (`--options`).

Per option: one autoencoder (seed 0, `--ae-epochs` epochs, the lecture's batch and learning rate,
on the whole training split), kept as a run in `--runs` so the label-budget points reuse it; its
test MSE and the code's k-NN accuracy per epoch, the code's linear probe at the end, and the
label-budget lines (fine-tuned, frozen, scratch) at `--budgets` labels with `--seeds` classifier
seeds on cae/budget.py's protocol. The seeds' ranges cover classifier seeds only (one autoencoder
per option).

    python bench/objectives.py [--data ../shared/datasets/cifar10-jpeg] [--ae-epochs 10]
                               [--budgets 100 1000 10000] [--seeds 3] [--options plain noise-0.2 ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cae import budget as label_budget  # noqa: E402
from cae import latent  # noqa: E402
from cae.budget_report import contrast_sentence, objectives_sentence  # noqa: E402
from cae.config import Config  # noqa: E402
from cae.contrastive import rebuilds, two_views  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.evidence import compare_seeds  # noqa: E402
from cae.experiment import train_or_load  # noqa: E402
from cae.files import write_atomically  # noqa: E402
from cae.objectives import pretext_for  # noqa: E402
from cae.plan import Subsets  # noqa: E402
from cae.runs import load_run  # noqa: E402
from cae.sweeps import OBJECTIVE_NAMES, budget_lines, pretraining_seeds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = {
    "plain": {},
    "noise-0.1": {"noise": 0.1},
    "noise-0.3": {"noise": 0.3},
    "mask-0.25": {"mask": 0.25},
    "mask-0.5": {"mask": 0.5},
    "mask-0.75": {"mask": 0.75},
    "augment": {"augment": True},
    # the contrast (cae/contrastive.py): the encoder alone, NT-Xent on two views, a SimCLR-sized batch
    "contrastive": {"objective": "contrastive", "batch_size": 512},
}
PICTURES = 6  # test images shown per option: clean, its input as trained, and the reconstructions of both


def encoder(name: str, ae_epochs: int, dataset, runs: Path, seed: int = 0):
    """The option's autoencoder as a run (trained once, found afterwards), pretrained with `seed`."""
    cfg = Config(ae_epochs=ae_epochs, clf_epochs=0, scratch_baseline=False, seed=seed, **OPTIONS[name])
    return load_run(train_or_load(cfg, dataset, runs).path)


def measures(run, dataset) -> dict:
    """The autoencoder's curves and its code's linear probe."""
    m = run.metrics
    data = Subsets.of(run.config, dataset, torch.device("cpu"))
    probe = latent.RepresentationProbe.of(dataset, data.train_idx, data.test_idx)
    model = run.autoencoder.float().cpu()
    train_codes, test_codes = latent.codes(model, probe.train_images), latent.codes(model, probe.test_images)
    return {
        "test_mse": [row["test_mse"] for row in m["autoencoder"] if "test_mse" in row],  # none when contrastive
        "loss_curve": [row.get("train_loss", row.get("train_mse")) for row in m["autoencoder"]],
        "knn_curve": [row["knn_acc"] for row in m["autoencoder"]],
        "pixels_knn": m["representation"]["pixels_knn"],
        "initial_knn": m["representation"]["initial_knn"],
        "probe": latent.linear_probe(train_codes, probe.train_labels, test_codes, probe.test_labels),
        "seconds": m["seconds_total"],
        "precision": m["precision"],
        "run_key": m["run_key"],
    }


@torch.no_grad()
def pictures(run, dataset) -> np.ndarray:
    """uint8 (4, PICTURES, 3, 32, 32): clean test images, the input the option trains on, and the
    model's reconstruction of each (the same fixed images for every option); for the contrastive
    objective, which rebuilds nothing, (3, PICTURES, ...): the images and two random views of each."""
    model = run.autoencoder.float().cpu().eval()
    clean = dataset.test.images[:PICTURES].float() / 255  # (N,3,32,32)
    if not rebuilds(run.config.to_dict()):
        views = two_views(clean, torch.Generator().manual_seed(0))
        return (torch.stack([clean, *views]) * 255).round().to(torch.uint8).numpy()
    pretext = pretext_for(run.config.noise, run.config.mask, False, seed=0)  # crops change no single picture
    corrupted = pretext(clean)[0] if pretext else clean
    rows = [clean, corrupted, model(clean).clamp(0, 1), model(corrupted).clamp(0, 1)]
    return (torch.stack(rows) * 255).round().to(torch.uint8).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--out", default=str(ROOT / "pretrained" / "objectives.json"))
    parser.add_argument("--runs", default=str(ROOT / "runs" / "objectives"), help="where the encoders are kept")
    parser.add_argument("--ae-epochs", type=int, default=10)
    parser.add_argument("--budgets", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--options", nargs="*", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument(
        "--pretrain-seed",
        type=int,
        default=0,
        help="the autoencoder's seed: a seed other than 0 joins the option's entry, so its ranges cover pretraining",
    )
    parser.add_argument("--table", action="store_true", help="print the file's table for docs/RESULTS.md and stop")
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="a confirmation run (longer training): kept apart from the screening, under 'confirmation'",
    )
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.out).read_text())))
        return
    dataset, out = load_dataset(args.data), Path(args.out)
    for name in args.options:
        t0 = time.perf_counter()
        run = encoder(name, args.ae_epochs, dataset, Path(args.runs), args.pretrain_seed)
        entry = {"settings": OPTIONS[name], "ae_epochs": args.ae_epochs, **measures(run, dataset), "points": []}
        folder = label_budget.sweep_folder(Path(args.runs), run.name, dataset.fingerprint)
        points = label_budget.run_sweep(run, dataset, args.budgets, args.seeds, folder=folder)
        entry["points"] = [{**p, "pretrain_seed": args.pretrain_seed} for p in points]
        entry["pretraining"] = {str(args.pretrain_seed): pretraining_measures(entry)}
        save(name, entry, pictures(run, dataset), dataset, out, "confirmation" if args.confirm else "options")
        print(
            f"{name}: test MSE {entry['test_mse'][-1] if entry['test_mse'] else float('nan'):.4f}, k-NN "
            f"{entry['knn_curve'][-1]:.1f}%, probe "
            f"{entry['probe']:.1f}%, {len(entry['points'])} points ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


def table(shipped: dict) -> str:
    """One row per option (then per confirmation run): its epochs and seeds, the last test MSE (none
    for the contrastive objective) and k-NN, its probe, fine-tuned − scratch per budget with the
    seeds rule's verdict, and the frozen line (mean and range); then the page's sentences."""
    entries = {**shipped["options"], **{f"{n} (confirmation)": e for n, e in shipped.get("confirmation", {}).items()}}
    budgets = sorted({p["budget"] for entry in entries.values() for p in entry["points"]})
    head = ["option", "epochs", "pretraining seeds", "classifier seeds", "test MSE", "k-NN", "probe"]
    head += [f"fine-tuned − scratch, {b:,}" for b in budgets] + [f"frozen, {b:,}" for b in budgets]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in entries.items():
        lines = budget_lines(entry["points"])
        base = name.split(" (")[0]
        cells = [OBJECTIVE_NAMES.get(base, base) + (" (confirmation)" if name != base else ""), str(entry["ae_epochs"])]
        cells += [str(pretraining_seeds(entry)), str(len({p["seed"] for p in entry["points"]}))]
        cells += [f"{entry['test_mse'][-1]:.4f}" if entry["test_mse"] else "–", f"{entry['knn_curve'][-1]:.1f}%"]
        cells.append(f"{entry['probe']:.1f}%")
        for b in budgets:
            fine, scratch = lines["finetuned"].get(b), lines["scratch"].get(b)
            if not (fine and scratch):
                cells.append("–")
                continue
            verdict = compare_seeds(fine["values"], scratch["values"]).winner if fine["n"] > 1 else "one seed"
            said = {None: "within", 0: "ahead", 1: "behind", "one seed": "one seed"}[verdict]
            cells.append(f"{fine['mean'] - scratch['mean']:+.1f} ({said})")
        for b in budgets:
            f = lines["frozen"].get(b)
            cells.append(f"{f['mean']:.1f}% ({f['low']:.1f}–{f['high']:.1f})" if f else "–")
        rows.append("| " + " | ".join(cells) + " |")
    options = shipped["options"]
    said = [objectives_sentence(options, OBJECTIVE_NAMES)]
    said += [s for s in [contrast_sentence(options, lambda n: OBJECTIVE_NAMES.get(n, n))] if s]
    return "\n".join([*rows, "", *said])


MEASURES = ("test_mse", "loss_curve", "knn_curve", "probe", "seconds", "precision", "run_key")


def pretraining_measures(entry: dict) -> dict:
    """What one pretraining seed's autoencoder measured (its curves, probe, time, key)."""
    return {k: entry[k] for k in MEASURES if k in entry}


def joined(old: dict | None, new: dict) -> dict:
    """`new` (one pretraining seed) joined to the option's `old` entry when both used the same
    settings and epochs: every pretraining seed's points and measures; the top-level measures stay
    seed 0's. Otherwise `new` replaces it."""
    if not old or (old["settings"], old["ae_epochs"]) != (new["settings"], new["ae_epochs"]):
        return new
    seeds = {p.get("pretrain_seed", 0) for p in new["points"]}
    kept = [p for p in old["points"] if p.get("pretrain_seed", 0) not in seeds]
    pretraining = {**old.get("pretraining", {"0": pretraining_measures(old)}), **new["pretraining"]}
    top = old if "0" not in new["pretraining"] else new
    return {**top, "points": kept + new["points"], "pretraining": dict(sorted(pretraining.items()))}


def save(name: str, entry: dict, picture: np.ndarray, dataset, out: Path, section: str = "options") -> None:
    """Add one option to the file's screening ("options") or its confirmation runs (and its
    pictures beside it), under a lock: two processes may share the options."""
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shipped = json.loads(out.read_text()) if out.exists() else {}
        shipped.update(dataset=dataset.summary(), protocol=label_budget.PROTOCOL)
        shipped.setdefault(section, {})[name] = joined(shipped.get(section, {}).get(name), entry)
        shipped[section] = {k: shipped[section][k] for k in [*OPTIONS, *shipped[section]] if k in shipped[section]}
        text = json.dumps(shipped, indent=1)
        write_atomically(out, lambda tmp: tmp.write_text(text), folder=False)
        pictures_file = out.with_name(out.stem + "_pictures.npz")
        kept = dict(np.load(pictures_file)) if pictures_file.exists() else {}
        if entry["pretraining"].keys() >= {"0"}:  # the pictures are seed 0's
            kept[name if section == "options" else f"{section}:{name}"] = picture

        def fill(tmp: Path) -> None:
            with open(tmp, "wb") as file:
                np.savez_compressed(file, **kept)

        write_atomically(pictures_file, fill, folder=False)


if __name__ == "__main__":
    main()
