"""Build cae/assets/cifar10-sample.npz: 100 train + 20 test images per class, seeded, with their file names.

python bench/make_sample.py [--data ../shared/datasets/cifar10-jpeg]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse
import random
from pathlib import Path

import numpy as np

from cae.data import SAMPLE_FILE, decode_image, scan_image_folder

PER_CLASS = {"train": 100, "test": 20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/datasets/cifar10-jpeg")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(args.data)
    layout = scan_image_folder(root)
    classes = sorted(layout["train"])
    rng = random.Random(args.seed)
    arrays, listing = {}, []
    for split, n in PER_CLASS.items():
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in sorted(rng.sample(layout[split][name], n)):
                images.append(decode_image(path)[0].transpose(2, 0, 1))
                labels.append(label)
                listing.append(f"{split}/{name}/{path.name}")
        arrays[f"{split}_images"] = np.stack(images)
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.int64)
    SAMPLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(SAMPLE_FILE, classes=np.array(classes), files=np.array(listing), **arrays)
    (SAMPLE_FILE.parent / "cifar10-sample-files.txt").write_text(
        f"# Images in cifar10-sample.npz, from {root.name} (random.Random({args.seed}).sample per class)\n"
        + "\n".join(listing)
        + "\n"
    )
    print(f"wrote {SAMPLE_FILE} ({SAMPLE_FILE.stat().st_size / 1e6:.2f} MB), {len(listing)} images")


if __name__ == "__main__":
    main()
