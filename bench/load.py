"""Eight browser sessions at once while a training job runs: page times, health latency, and the
job's epoch time loaded vs quiet.

Starts a server (on the JPEG copy of CIFAR-10 when it is beside the repository, else the sample),
starts a training job from the Train page (the page's preset, 3 autoencoder epochs), then N browser
contexts walk every page for a few rounds while a thread polls /_stcore/health. In a class the
browsers run on the students' machines: `--pin-browsers CPU` pins Chromium to one core (taskset),
`--nice-browsers` runs it at nice 19. `--quiet` runs the same job with no browsers at all, for the
epoch-time ratio.

    python bench/load.py [--sessions 8] [--rounds 3] [--pin-browsers 1] [--nice-browsers] [--quiet]
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


async def start_training(browser, url: str, ae_epochs: int) -> None:
    page = await browser.new_page()
    await open_page(page, url, "train", "Train")
    field = page.get_by_label("Autoencoder epochs")
    await field.fill(str(ae_epochs))
    await field.press("Enter")
    await page.wait_for_timeout(500)
    await page.get_by_role("button", name="Train", exact=True).click()  # the page's preset otherwise
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


def chromium_wrapper(folder: str, nice: bool, pin: str | None) -> str:
    """A wrapper that starts Chromium at nice 19 and/or pinned to some cores (taskset)."""
    if not nice and pin is None:
        return CHROMIUM
    prefix = ("nice -n 19 " if nice else "") + (f"taskset -c {pin} " if pin is not None else "")
    wrapper = Path(folder) / "chromium-wrapped"
    wrapper.write_text(f'#!/bin/sh\nexec {prefix}{CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def run(url: str, sessions: int, rounds: int, executable: str, ae_epochs: int) -> dict:
    times, failures = {}, []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        await start_training(browser, url, ae_epochs)
        t0 = time.perf_counter()
        await asyncio.gather(*(session(browser, url, rounds, times, failures) for _ in range(sessions)))
        wall = time.perf_counter() - t0
        await browser.close()
    return {"times": times, "failures": failures, "wall_s": wall}


def wait_for_run(runs: Path, timeout: float = 1800) -> dict:
    """The metrics of the first run that appears in `runs` (the job started above)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [p for p in runs.glob("*/metrics.json") if not p.parent.name.startswith(".")]
        if done:
            return json.loads(done[0].read_text())
        time.sleep(1)
    raise TimeoutError("the training job did not finish")


def data_for_load() -> str:
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "cifar10-jpeg"
    return str(shared) if (shared / "train").is_dir() else "sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ae-epochs", type=int, default=3)
    parser.add_argument("--nice-browsers", action="store_true", help="Chromium at nice 19")
    parser.add_argument("--pin-browsers", default=None, metavar="CPUS", help="taskset Chromium to these cores")
    parser.add_argument("--quiet", action="store_true", help="the same job with no browsers walking")
    args = parser.parse_args()
    sessions = 0 if args.quiet else args.sessions
    with tempfile.TemporaryDirectory() as tmp:
        data = data_for_load()
        env = {"CAE_RUNS": f"{tmp}/runs", "CAE_CACHE": f"{tmp}/cache", "CAE_DATA": data}
        with AppServer(env, Path(tmp) / "server.log") as server:
            stop, health = threading.Event(), []
            poller = threading.Thread(target=poll_health, args=(server.url, stop, health))
            poller.start()
            try:
                executable = chromium_wrapper(tmp, args.nice_browsers, args.pin_browsers)
                result = asyncio.run(run(server.url, sessions, args.rounds, executable, args.ae_epochs))
                walked = time.perf_counter()
                metrics = wait_for_run(Path(tmp) / "runs")
            finally:
                stop.set()
                poller.join()
    answered = [h for h in health if h is not None]
    epochs = [r["seconds"] for r in metrics["autoencoder"]]
    report = {
        "sessions": sessions, "rounds": args.rounds, "nice_browsers": args.nice_browsers,
        "pin_browsers": args.pin_browsers, "data": data, "wall_s": result["wall_s"],
        "page_s": {k: {"median": statistics.median(v), "max": max(v), "n": len(v)} for k, v in result["times"].items()},
        "failures": result["failures"],
        "health": {"polls": len(health), "unanswered": len(health) - len(answered),
                   "median_s": statistics.median(answered), "max_s": max(answered),
                   "p95_s": sorted(answered)[int(0.95 * (len(answered) - 1))]},
        "ae_epoch_s": epochs, "job_seconds_total": metrics["seconds_total"],
        "job_finished_after_walk_s": time.perf_counter() - walked,
    }
    pinned = f", browsers pinned to CPU {args.pin_browsers}" if args.pin_browsers is not None else ""
    print(f"{sessions} sessions x {args.rounds} rounds of {len(PAGES)} pages while a job trains on {data} "
          f"({report['wall_s']:.0f} s){', browsers at nice 19' if args.nice_browsers else ''}{pinned}")
    for name, t in report["page_s"].items():
        print(f"  {name:<12} median {t['median']:.2f} s   max {t['max']:.2f} s   ({t['n']} loads)")
    h = report["health"]
    loads = sum(t["n"] for t in report["page_s"].values())
    print(f"  page loads answered: {loads} of {loads + len(report['failures'])}")
    print(f"  health: {h['polls']} polls, {h['unanswered']} unanswered, median {1000 * h['median_s']:.0f} ms, "
          f"p95 {1000 * h['p95_s']:.0f} ms, max {1000 * h['max_s']:.0f} ms")
    print(f"  autoencoder epochs: {', '.join(f'{e:.1f}' for e in epochs)} s; job {metrics['seconds_total']:.0f} s")
    print(f"  failures: {len(report['failures'])} {report['failures'][:5]}")
    out = Path(__file__).parent / "results" / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
