"""The Latent space page's two sweeps, shipped as metrics only (no weights): latent size
(16, 64, 256, 1024, 4096) and leak (0, 0.1, 0.3) x 3 seeds, each the lecture's recipe for
5 autoencoder + 5 fine-tuning epochs on the whole training split, no scratch baseline.

    python bench/sweeps.py [--data ../shared/datasets/cifar10-jpeg] [--out pretrained/sweeps.json]

Each finished run is written at once (atomically), so a stopped sweep resumes where it was.
Per run: the final test MSE, the code's k-NN curve (cae/latent.py) with its pixel and initial
baselines, the code's linear probe, the fine-tuned test accuracy, and the encoder's layer activity
(dead units, share at or below zero, histograms) on the fixed test subset.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from cae import latent  # noqa: E402
from cae.config import Config  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.files import write_atomically  # noqa: E402
from cae.plan import Subsets  # noqa: E402
from cae.train import run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LATENT_SIZES, LEAKS, SEEDS = (16, 64, 256, 1024, 4096), (0.0, 0.1, 0.3), (0, 1, 2)


def planned() -> list[Config]:
    """The leak sweep (3 seeds each) first, then the other latent sizes (seed 0)."""
    configs = [Config(leak=leak, seed=seed, scratch_baseline=False) for leak in LEAKS for seed in SEEDS]
    configs += [Config(latent_dim=z, scratch_baseline=False) for z in LATENT_SIZES if z != Config.latent_dim]
    return configs


def measure(cfg: Config, dataset) -> dict:
    """Train one run and keep its numbers (the weights are dropped)."""
    result = run_experiment(cfg, dataset)
    m = result.metrics
    data = Subsets.of(cfg, dataset, torch.device("cpu"))
    probe = latent.RepresentationProbe.of(dataset, data.train_idx, data.test_idx)
    model = result.autoencoder.float().cpu()
    train_codes, test_codes = latent.codes(model, probe.train_images), latent.codes(model, probe.test_images)
    return {
        "latent_dim": cfg.latent_dim,
        "leak": cfg.leak,
        "seed": cfg.seed,
        "ae_epochs": cfg.ae_epochs,
        "clf_epochs": cfg.clf_epochs,
        "test_mse": m["autoencoder"][-1]["test_mse"],
        "knn_curve": [row["knn_acc"] for row in m["autoencoder"]],
        "pixels_knn": m["representation"]["pixels_knn"],
        "initial_knn": m["representation"]["initial_knn"],
        "probe": latent.linear_probe(train_codes, probe.train_labels, test_codes, probe.test_labels),
        "test_acc": m["classifier"][-1]["test_acc"],
        "activity": latent.layer_activity(model, probe.test_images),
        "seconds": m["seconds_total"],
        "device": m["device"],
        "precision": m["precision"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--out", default=str(ROOT / "pretrained" / "sweeps.json"))
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    out = Path(args.out)
    shipped = json.loads(out.read_text()) if out.exists() else {}
    shipped.update(
        dataset=dataset.summary(),
        histogram_range=list(latent.HISTOGRAM_RANGE),
        histogram_bins=latent.HISTOGRAM_BINS,
        layers=latent.ENCODER_LAYERS,
        representation={"k": latent.K, "metric": latent.METRIC, "seed": latent.SUBSET_SEED},
    )
    rows = shipped.setdefault("runs", [])
    for cfg in planned():
        if any((r["latent_dim"], r["leak"], r["seed"]) == (cfg.latent_dim, cfg.leak, cfg.seed) for r in rows):
            continue
        t0 = time.perf_counter()
        rows.append(measure(cfg, dataset))
        r = rows[-1]
        print(
            f"latent {cfg.latent_dim} leak {cfg.leak} seed {cfg.seed}: MSE {r['test_mse']:.4f}, "
            f"k-NN {r['knn_curve'][-1]:.1f}%, probe {r['probe']:.1f}%, fine-tuned {r['test_acc']:.1f}% "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        text = json.dumps(shipped, indent=1)
        write_atomically(out, lambda tmp, text=text: tmp.write_text(text), folder=False)


if __name__ == "__main__":
    main()
