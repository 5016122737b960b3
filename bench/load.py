"""Eight browser sessions at once while a training job runs: page times and health latency.

Starts a server on the bundled sample, starts a training job from the Train page, then eight
browser contexts walk every page for a few rounds while a thread polls /_stcore/health.
Here the browsers share the server's CPU; in a class they run on the students' machines.
`--nice-browsers` runs Chromium at the lowest CPU priority to approximate that.

    python bench/load.py [--sessions 8] [--rounds 3] [--nice-browsers]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from playwright.async_api import async_playwright

from cae.appserver import CHROMIUM, CHROMIUM_ARGS, AppServer, health_latency

PAGES = [("", "Overview"), ("data", "Data"), ("train", "Train"), ("kernels", "First-layer kernels"),
         ("classifier", "Classifier"), ("try_image", "Try an image")]


def poll_health(url: str, stop: threading.Event, samples: list) -> None:
    while not stop.is_set():
        samples.append(health_latency(url, timeout=10))
        time.sleep(0.25)


async def open_page(page, url: str, path: str, title: str) -> float:
    t0 = time.perf_counter()
    await page.goto(f"{url}/{path}")
    await page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    await page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                 timeout=120_000)
    return time.perf_counter() - t0


async def start_training(browser, url: str) -> None:
    page = await browser.new_page()
    await open_page(page, url, "train", "Train")
    await page.get_by_role("button", name="Train", exact=True).click()  # the defaults, on the sample
    await page.get_by_text("Your job").wait_for(timeout=60_000)
    await page.close()


async def session(browser, url: str, rounds: int, times: dict, failures: list) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    for _ in range(rounds):
        for path, title in PAGES:
            try:
                times.setdefault(path or "overview", []).append(await open_page(page, url, path, title))
            except Exception as exc:  # every page must answer: count what did not
                failures.append(f"{path or 'overview'}: {type(exc).__name__}")
    await context.close()


def niced_chromium(folder: str) -> str:
    """A wrapper that starts Chromium at nice 19, so the browsers yield the CPU to the server."""
    wrapper = Path(folder) / "chromium-nice"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n 19 {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def run(url: str, sessions: int, rounds: int, executable: str) -> dict:
    times, failures = {}, []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        await start_training(browser, url)
        t0 = time.perf_counter()
        await asyncio.gather(*(session(browser, url, rounds, times, failures) for _ in range(sessions)))
        wall = time.perf_counter() - t0
        await browser.close()
    return {"times": times, "failures": failures, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nice-browsers", action="store_true", help="Chromium at nice 19")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"CAE_RUNS": f"{tmp}/runs", "CAE_CACHE": f"{tmp}/cache", "CAE_DATA": "sample"}
        with AppServer(env, Path(tmp) / "server.log") as server:
            stop, health = threading.Event(), []
            poller = threading.Thread(target=poll_health, args=(server.url, stop, health))
            poller.start()
            try:
                executable = niced_chromium(tmp) if args.nice_browsers else CHROMIUM
                result = asyncio.run(run(server.url, args.sessions, args.rounds, executable))
            finally:
                stop.set()
                poller.join()
    answered = [h for h in health if h is not None]
    report = {
        "sessions": args.sessions, "rounds": args.rounds, "nice_browsers": args.nice_browsers,
        "wall_s": result["wall_s"],
        "page_s": {k: {"median": statistics.median(v), "max": max(v), "n": len(v)} for k, v in result["times"].items()},
        "failures": result["failures"],
        "health": {"polls": len(health), "unanswered": len(health) - len(answered),
                   "median_s": statistics.median(answered), "max_s": max(answered),
                   "p95_s": sorted(answered)[int(0.95 * (len(answered) - 1))]},
    }
    print(f"{args.sessions} sessions x {args.rounds} rounds of {len(PAGES)} pages while a job trains "
          f"({report['wall_s']:.0f} s){', browsers at nice 19' if args.nice_browsers else ''}")
    for name, t in report["page_s"].items():
        print(f"  {name:<12} median {t['median']:.2f} s   max {t['max']:.2f} s   ({t['n']} loads)")
    h = report["health"]
    print(f"  health: {h['polls']} polls, {h['unanswered']} unanswered, median {1000 * h['median_s']:.0f} ms, "
          f"p95 {1000 * h['p95_s']:.0f} ms, max {1000 * h['max_s']:.0f} ms")
    print(f"  failures: {len(report['failures'])} {report['failures'][:5]}")
    out = Path(__file__).parent / "results" / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
