"""Time to first results: from `streamlit run` to the Kernels page showing the pretrained run.

Starts a fresh server each round (no dataset configured, an empty runs folder), polls
/_stcore/health, then loads /kernels in headless Chromium and waits for the four kernel grids
(loaded images), and separately for all of the page's charts.

    python bench/startup.py [--rounds 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.appserver import CHROMIUM, CHROMIUM_ARGS, AppServer


def one_round(browser, root: Path) -> dict:
    env = {"CAE_RUNS": str(root / "runs"), "CAE_CACHE": str(root / "cache"), "CAE_DATA": "sample"}
    with AppServer(env, root / "server.log") as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        page.goto(f"{server.url}/kernels")
        page.get_by_role("heading", name="First-layer kernels").wait_for(timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length >= 4",
            timeout=60_000,
        )
        first_results = time.perf_counter() - t0
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
        all_charts = time.perf_counter() - t0
        page.close()
        return {
            "server_up_s": server.healthy_after,
            "kernels_after_up_s": first_results,
            "all_charts_after_up_s": all_charts,
            "total_s": server.healthy_after + first_results,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for i in range(args.rounds):
            rounds.append(one_round(browser, Path(tmp) / str(i)))
            print({k: round(v, 2) for k, v in rounds[-1].items()}, flush=True)
        browser.close()
    summary = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print("median:", {k: round(v, 2) for k, v in summary.items()})
    out = Path(__file__).parent / "results" / f"startup-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rounds": rounds, "median": summary}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
