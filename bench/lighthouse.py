"""Lighthouse on every page: performance and accessibility scores, cumulative layout shift (CLS) and
the failed accessibility audits, with Chromium against a fresh server of this repository. Needs
Node.js and Lighthouse (`npm install lighthouse@12` in a folder: pass `--lighthouse
FOLDER/node_modules/.bin/lighthouse`, or have `lighthouse` on PATH) and Debian's chromium. Writes
bench/results/lighthouse-<time>.json. Scores vary from run to run.

CLS is split in the same run (bench/layout_shift.py, Chromium's layout-shift entries in a fresh
window): the part from Streamlit mounting its frame (sidebar, wide layout), and the page's own, the
part a page can keep under 0.1. A six-line app with only the frame gives the floor.

    python bench/lighthouse.py [--lighthouse PATH] [--pages overview data ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.appserver import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402
from bench.layout_shift import measure, minimal_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overview", "lecture", "data", "train", "kernels", "latent", "classifier", "try_image")
CLS_GOAL = 0.1


def audit(lighthouse: str, url: str) -> dict:
    """One page's Lighthouse report (desktop form factor, 1350×940), reduced to what we track."""
    flags = " ".join(["--headless=new", *CHROMIUM_ARGS, "--window-size=1350,940"])
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                lighthouse,
                url,
                "--preset=desktop",
                "--only-categories=performance,accessibility",
                "--output=json",
                f"--output-path={out.name}",
                f"--chrome-flags={flags}",
                "--quiet",
                "--max-wait-for-load=60000",
            ],
            env={**os.environ, "CHROME_PATH": CHROMIUM},
            check=True,
            timeout=300,
        )
        report = json.loads(Path(out.name).read_text())
    audits, categories = report["audits"], report["categories"]
    failed = [
        key
        for key, ref in ((r["id"], r) for r in categories["accessibility"]["auditRefs"])
        if ref["weight"] > 0 and audits[key].get("score") is not None and audits[key]["score"] < 1
    ]
    shifts = (audits.get("layout-shifts") or {}).get("details", {}).get("items", [])
    return {
        "shifted": [
            {"score": round(item.get("score", 0), 3), "node": (item.get("node") or {}).get("snippet", "")[:160]}
            for item in shifts[:6]
        ],
        "performance": round(100 * categories["performance"]["score"]),
        "accessibility": round(100 * categories["accessibility"]["score"]),
        "cls": audits["cumulative-layout-shift"]["numericValue"],
        "failed accessibility audits": failed,
    }


def split_line(split: dict) -> str:
    page = split["page"]
    return f"Chromium: CLS {split['total']:.3f} = frame {split['frame']:.3f} + page {page:.3f}" + (
        "" if page < CLS_GOAL else " (page over 0.1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lighthouse", default=shutil.which("lighthouse") or "lighthouse")
    parser.add_argument("--pages", nargs="*", default=list(PAGES), choices=PAGES)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as home, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with AppServer({"HOME": home}, Path(home) / "minimal.log", cwd=minimal_app(Path(home) / "minimal")) as bare:
            measure(browser, bare.url)  # the server's first run imports Streamlit's modules
            results["minimal app"] = {"split": measure(browser, bare.url)}
            print(f"{'minimal app':11s} {split_line(results['minimal app']['split'])}", flush=True)
        with AppServer({"HOME": home}, Path(home) / "server.log") as server:
            measure(browser, server.url)  # warm: the first run imports torch and the app
            for page in args.pages:
                url = server.url + ("/" if page == "overview" else f"/{page}")
                try:
                    results[page] = audit(args.lighthouse, url)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:  # one page's failure
                    results[page] = {"error": str(exc)[-300:]}
                    print(f"{page:11s} Lighthouse failed: {exc}", flush=True)
                    continue
                r = results[page]
                r["split"] = measure(browser, url)
                print(
                    f"{page:11s} performance {r['performance']:3d}  accessibility {r['accessibility']:3d}  "
                    f"CLS {r['cls']:.3f}  failed: {', '.join(r['failed accessibility audits']) or 'none'}\n"
                    f"{'':11s} {split_line(r['split'])}",
                    flush=True,
                )
    out = ROOT / "bench" / "results" / f"lighthouse-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
