"""How good is the code? k-NN and linear-probe test accuracy of raw pixels, a random-init encoder
and the shipped runs' codes, on the fixed subsets the app uses (cae/latent.py: min(5,000) training
and min(1,000) test images, class-balanced, seed 0; cosine, k = 10).

    python bench/representation.py [--data ../shared/datasets/cifar10-jpeg]

Prints a Markdown table and writes bench/results/representation-<time>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from cae import latent  # noqa: E402
from cae.data import load_dataset  # noqa: E402
from cae.model import ConvAutoencoder, seeded  # noqa: E402
from cae.runs import PRETRAINED_DIR, list_runs, load_run  # noqa: E402


def measure(name: str, features, data: latent.FixedSubsets, dataset) -> dict:
    t0 = time.perf_counter()
    train, test = features(dataset.train.images[data.train]), features(dataset.test.images[data.test])
    y_train, y_test = dataset.train.labels[data.train], dataset.test.labels[data.test]
    row = {
        "features": name,
        "knn": latent.knn_accuracy(train, y_train, test, y_test),
        "probe": latent.linear_probe(train, y_train, test, y_test),
    }
    row["seconds"] = time.perf_counter() - t0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "cifar10-jpeg")
    )
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    data = latent.representation_subsets(dataset.train.labels, dataset.test.labels)
    shipped = [i for i in list_runs(pretrained=PRETRAINED_DIR) if i.pretrained]
    rows = [measure("raw pixels", latent.pixels, data, dataset)]
    first = load_run(shipped[0].path)
    initial = ConvAutoencoder.from_config(first.config, seeded(first.config.seed))
    rows.append(measure("code of the random-init encoder (seed 0)", lambda x: latent.codes(initial, x), data, dataset))
    for info in shipped:
        run = load_run(info.path)
        rows.append(measure(f"code: {info.title}", lambda x, run=run: latent.codes(run.autoencoder, x), data, dataset))
        if run.classifier is not None:
            rows.append(
                measure(
                    f"fine-tuned classifier's features: {info.title}",
                    lambda x, run=run: latent.codes(run.classifier, x),
                    data,
                    dataset,
                )
            )
    print(f"{dataset.name}: {len(data.train)} training / {len(data.test)} test images (balanced, seed 0)\n")
    print("| features | k-NN (cosine, k=10) | linear probe | seconds |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['features']} | {r['knn']:.1f}% | {r['probe']:.1f}% | {r['seconds']:.1f} |")
    out = Path(__file__).parent / "results" / f"representation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"dataset": dataset.name, "rows": rows}, indent=1))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
