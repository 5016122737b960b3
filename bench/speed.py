"""Training speed, side by side in one run: (a) the lecture's pipeline vs (b) this project's trainer.

(a) torchvision ImageFolder + DataLoader + per-item ToTensor, batch 2000, fp32, NCHW, the SPEC model.
(b) cae's trainer with its defaults for this device: data on the device, channels_last, `auto` precision.
Both on the same class-balanced slice, interleaved epoch by epoch, so machine noise hits both alike.

    python bench/speed.py [--data ../shared/datasets/cifar10-jpeg] [--images 10000] [--epochs 3]

Prints a table and writes bench/results/speed-<date>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from cae.config import Config
from cae.data import balanced_subset, load_dataset, to_device
from cae.devices import resolve_device, resolve_precision
from cae.model import Classifier, ConvAutoencoder
from cae.plan import MFLOP
from cae.train import Reporter, classification_loss, reconstruction_loss, run_epoch

RESULTS = Path(__file__).parent / "results"


# --- (a) the lecture's pipeline ---------------------------------------------------------------


def lecture_loader(root: str, indices: list[int], batch_size: int, seed: int) -> DataLoader:
    folder = datasets.ImageFolder(str(Path(root) / "train"), transform=transforms.ToTensor())
    return DataLoader(
        Subset(folder, indices), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )


def lecture_epoch(model, optimizer, loader, classify: bool, device) -> tuple[float, float]:
    """One epoch as the lecture's notebook runs it (batches moved to the device one by one);
    returns (seconds, true mean loss)."""
    model.train()
    t0, total, seen = time.perf_counter(), 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss = F.cross_entropy(out, y) if classify else F.mse_loss(out, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
        seen += len(x)
    return time.perf_counter() - t0, total / seen


# --- (b) this project's trainer -------------------------------------------------------------


class Ours:
    """One model trained by cae's epoch loop on tensors already on the device."""

    def __init__(self, model, images, labels, cfg: Config, device, precision, classify: bool):
        self.model = model.to(device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.images, self.labels, self.cfg, self.classify = images, labels, cfg, classify
        self.phase, self.device, self.precision = "classifier" if classify else "autoencoder", device, precision
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0

    def train_epoch(self) -> tuple[float, float]:
        self.epoch += 1
        loss_fn = classification_loss if self.classify else reconstruction_loss
        t0 = time.perf_counter()
        loss = run_epoch(
            self.model,
            self.optimizer,
            loss_fn,
            (self.images, self.labels),
            self.cfg.batch_size,
            self.generator,
            False,
            self.precision,
            self.phase,
            self.epoch,
            99,
            Reporter(1.0),
        )
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, loss


def seeded(build):
    torch.manual_seed(0)
    return build()


def row(name: str, seconds: float, n: int, mflop: float) -> dict:
    return {"pipeline": name, "seconds": seconds, "images_per_s": n / seconds, "gflop_per_s": n * mflop / 1e3 / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/cifar10-jpeg")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    device = resolve_device("auto")
    precision = resolve_precision("auto", device)
    cfg = Config(seed=0)
    t0 = time.perf_counter()
    dataset = load_dataset(args.data)
    load_seconds = time.perf_counter() - t0
    idx = balanced_subset(dataset.train.labels, args.images, seed=0)
    images, labels = to_device(dataset.train, idx, device)
    n = len(idx)
    loader = lecture_loader(args.data, idx.tolist(), cfg.batch_size, cfg.seed)

    a_model = seeded(ConvAutoencoder).to(device)
    a_opt = torch.optim.Adam(a_model.parameters(), lr=1e-3)
    b = Ours(seeded(ConvAutoencoder), images, labels, cfg, device, precision, classify=False)
    b32 = Ours(seeded(ConvAutoencoder), images, labels, cfg, device, "fp32", classify=False)
    epochs = {"a": [], "b": [], "b_fp32": []}
    for _ in range(args.epochs):  # interleaved: a, b, b in fp32
        epochs["a"].append(lecture_epoch(a_model, a_opt, loader, classify=False, device=device))
        epochs["b"].append(b.train_epoch())
        if precision != "fp32":
            epochs["b_fp32"].append(b32.train_epoch())
        print(f"epoch {len(epochs['a'])}: a {epochs['a'][-1][0]:.1f} s, b {epochs['b'][-1][0]:.1f} s", flush=True)

    a_clf = seeded(Classifier).to(device)
    a_clf_epoch = lecture_epoch(
        a_clf, torch.optim.Adam(a_clf.parameters(), lr=1e-3), loader, classify=True, device=device
    )
    b_clf_epoch = Ours(seeded(Classifier), images, labels, cfg, device, precision, classify=True).train_epoch()

    modes = {}
    for mode in ("bilinear", "nearest", "transpose"):
        model = seeded(lambda mode=mode: ConvAutoencoder(upsample=mode))
        modes[mode] = Ours(model, images, labels, cfg, device, precision, classify=False).train_epoch()[0]

    ae = [
        row("a: lecture pipeline", epochs["a"][0][0], n, MFLOP["autoencoder"]),
        row(f"b: cae trainer ({precision})", epochs["b"][0][0], n, MFLOP["autoencoder"]),
    ]
    clf = [
        row("a: lecture pipeline", a_clf_epoch[0], n, MFLOP["classifier"]),
        row(f"b: cae trainer ({precision})", b_clf_epoch[0], n, MFLOP["classifier"]),
    ]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "device": str(device),
        "precision_auto": precision,
        "torch": torch.__version__,
        "images": n,
        "dataset_load_seconds": load_seconds,
        "autoencoder_epoch": ae,
        "autoencoder_ratio_a_over_b": ae[0]["seconds"] / ae[1]["seconds"],
        "autoencoder_epoch_seconds": {k: [round(t, 2) for t, _ in v] for k, v in epochs.items() if v},
        "autoencoder_mean_ratio_a_over_b": (sum(t for t, _ in epochs["a"]) / sum(t for t, _ in epochs["b"])),
        "classifier_epoch": clf,
        "classifier_ratio_a_over_b": clf[0]["seconds"] / clf[1]["seconds"],
        "train_mse_after_epochs": {k: [round(m, 5) for _, m in v] for k, v in epochs.items() if v},
        "upsampling_epoch_seconds": modes,
    }
    if epochs["b_fp32"]:
        auto_mse, fp32_mse = epochs["b"][-1][1], epochs["b_fp32"][-1][1]
        result["auto_vs_fp32_final_mse_rel_diff"] = (auto_mse - fp32_mse) / fp32_mse
    print_table(result)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


def print_table(r: dict) -> None:
    print(f"\n{r['images']} images, {r['machine']}, device {r['device']}, auto precision = {r['precision_auto']}")
    for title, rows, ratio in (
        ("autoencoder epoch", r["autoencoder_epoch"], r["autoencoder_ratio_a_over_b"]),
        ("classifier epoch", r["classifier_epoch"], r["classifier_ratio_a_over_b"]),
    ):
        print(f"\n{title:<28}{'seconds':>10}{'images/s':>12}{'GFLOP/s':>10}")
        for x in rows:
            print(f"{x['pipeline']:<28}{x['seconds']:>10.2f}{x['images_per_s']:>12.0f}{x['gflop_per_s']:>10.1f}")
        print(f"{'ratio (a)/(b)':<28}{ratio:>10.2f}x")
    print(
        f"mean over {len(r['autoencoder_epoch_seconds']['a'])} interleaved autoencoder epochs: "
        f"ratio (a)/(b) {r['autoencoder_mean_ratio_a_over_b']:.2f}x  {r['autoencoder_epoch_seconds']}"
    )
    print("\ntrain MSE after each epoch:", r["train_mse_after_epochs"])
    if "auto_vs_fp32_final_mse_rel_diff" in r:
        print(f"auto vs fp32 final MSE: {100 * r['auto_vs_fp32_final_mse_rel_diff']:+.2f}%")
    print(
        "one (b) autoencoder epoch per upsampling mode (s):",
        {k: round(v, 2) for k, v in r["upsampling_epoch_seconds"].items()},
    )


if __name__ == "__main__":
    main()
