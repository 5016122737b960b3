"""A quick job started from the Train page in a real browser: 10,000 images, 1 + 1 epochs.

Prints the seconds from the click on Train to the page saying "Training finished", and what the
page itself reported.

    python bench/ui_job.py [--data ../shared/datasets/cifar10-jpeg]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402

from bench.appserver import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label)
    field.fill(str(value))
    field.press("Enter")
    page.wait_for_timeout(500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path("../shared/datasets/cifar10-jpeg").resolve()))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        env = {"CAE_RUNS": f"{tmp}/runs", "CAE_DATA": args.data}
        with AppServer(env, Path(tmp) / "server.log") as server:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{server.url}/train")
            page.get_by_role("heading", name="Train").wait_for()
            page.get_by_label("Training images").click()
            page.get_by_role("option", name="Quick: 10,000 images").click()
            page.wait_for_timeout(500)
            set_number(page, "Autoencoder epochs", 1)
            set_number(page, "Classifier epochs (0 = autoencoder only)", 1)
            estimate = page.get_by_text(re.compile("Estimated time")).first.inner_text()
            t0 = time.perf_counter()
            page.get_by_role("button", name="Train", exact=True).click()
            done = page.get_by_text(re.compile("Training finished in"))
            done.wait_for(timeout=900_000)
            print(f"{estimate}\nclick to 'finished': {time.perf_counter() - t0:.1f} s; page: {done.inner_text()}")
            browser.close()


if __name__ == "__main__":
    main()
