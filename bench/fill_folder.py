"""A CIFAR-10-sized image folder for a machine without the data (the lent GPU machine, which has no
copy and no network): the bundled sample's 1,000 train and 200 test images, repeated with a shift
and a flip so that no two files are alike, up to `--train` and `--test` images, as PNG files in the
standard layout (ROOT/train/<class>/*.png, ROOT/test/<class>/*.png).

For speed checks only (bench/gpu_check.sh, bench/speed.py): a model trained on it learns the
sample's 1,200 pictures over and over, so its accuracies mean nothing.

    python bench/fill_folder.py ROOT [--train 50000] [--test 10000]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import os  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from cae.data import load_sample  # noqa: E402


def variant(image: np.ndarray, copy: int) -> np.ndarray:
    """The copy-th variant of an HWC uint8 image: rolled by up to 3 pixels each way, every other one flipped."""
    shifted = np.roll(image, (copy % 7 - 3, (copy // 7) % 7 - 3), axis=(0, 1))
    return shifted[:, ::-1] if copy % 2 else shifted


def write_part(root: str, split: str, classes: list[str], images: np.ndarray, labels: np.ndarray, todo: range) -> int:
    for n in todo:
        source = n % len(images)
        folder = Path(root, split, classes[labels[source]])
        Image.fromarray(variant(images[source], n // len(images))).save(folder / f"{n:05d}.png")
    return len(todo)


def fill(root: Path, sizes: dict[str, int]) -> None:
    sample = load_sample()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        for split, size in sizes.items():
            part = getattr(sample, split)
            images, labels = part.images.permute(0, 2, 3, 1).numpy(), part.labels.numpy()
            for name in sample.classes:
                (root / split / name).mkdir(parents=True, exist_ok=True)
            step = max(1, size // (4 * (os.cpu_count() or 1)))
            chunks = [range(i, min(i + step, size)) for i in range(0, size, step)]
            written = sum(
                pool.map(write_part, *zip(*[(str(root), split, sample.classes, images, labels, c) for c in chunks]))
            )
            print(f"{split}: {written} images in {root / split}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--train", type=int, default=50000)
    parser.add_argument("--test", type=int, default=10000)
    args = parser.parse_args()
    fill(Path(args.root), {"train": args.train, "test": args.test})


if __name__ == "__main__":
    main()
