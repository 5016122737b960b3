"""Eight browser sessions at once while a training job runs: page times, health latency, and the
job's epoch time loaded vs quiet.

Starts a server (on the JPEG copy of CIFAR-10 when it is beside the repository, else the sample),
starts a training job from the Train page (the page's preset, 3 autoencoder epochs), then N browser
contexts walk every page for a few rounds while a thread polls /_stcore/health. In a class the
browsers run on the students' machines: `--pin-browsers CPU` pins Chromium to one core (taskset),
`--nice-browsers` runs it at nice 19. `--quiet` runs the same job with no browsers at all, for the
epoch-time ratio; `--no-job` walks with no job training. `--classroom` runs the server in classroom
mode (CAE_CLASSROOM=1): each session keeps its own seat (in its cookie) through its walk, Lecture mode is
walked too, and the job is one seat's.

    python bench/load.py [--sessions 8] [--rounds 3] [--pin-browsers 1] [--nice-browsers] [--quiet]
                         [--no-job] [--classroom] [--clf-epochs N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/<script>.py`

import argparse
import asyncio
import json
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from playwright.async_api import async_playwright

from bench.appserver import CHROMIUM, CHROMIUM_ARGS, AppServer, health_latency

PAGES = [
    ("", "Overview"),
    ("data", "Data"),
    ("train", "Train"),
    ("kernels", "First-layer kernels"),
    ("classifier", "Classifier"),
    ("try_image", "Try an image"),
]
# Classroom mode walks Lecture mode too. The Latent space page is left out: its first view computes
# the map in the worker (minutes on the full CIFAR-10 copy), which would measure that, not the load.
CLASSROOM_PAGES = [("lecture", "1/"), *PAGES]  # Lecture mode opens on step 1: "1/7 · …"


def available_mb() -> int:
    """The machine's available memory (MemAvailable), in MB."""
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("MemAvailable:"))


def poll_health(url: str, stop: threading.Event, samples: list, memory: list) -> None:
    """(seconds since the poller started, latency or None when unanswered within 10 s); and the
    available memory at each poll."""
    t0 = time.perf_counter()
    while not stop.is_set():
        at = time.perf_counter() - t0
        samples.append((at, health_latency(url, timeout=10)))
        memory.append(available_mb())
        time.sleep(0.25)


async def open_page(page, url: str, path: str, title: str) -> float:
    t0 = time.perf_counter()
    await page.goto(f"{url}/{path}")
    await page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    await page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    return time.perf_counter() - t0


async def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    await field.fill(str(value))
    await field.press("Enter")
    await page.wait_for_timeout(500)


async def start_training(browser, url: str, ae_epochs: int, clf_epochs: int | None) -> None:
    page = await browser.new_page()
    await open_page(page, url, "train", "Train")
    await set_number(page, "Autoencoder epochs", ae_epochs)
    if clf_epochs is not None:
        await set_number(page, "Classifier epochs (0 = autoencoder only)", clf_epochs)
    await page.get_by_role("button", name="Train", exact=True).click()  # the page's preset otherwise
    await page.get_by_text("Your job").wait_for(timeout=60_000)
    await page.close()


async def session(browser, url: str, rounds: int, times: dict, failures: list, pages: list) -> None:
    """One student: a browser context walking every page `rounds` times; in classroom mode it keeps
    the seat its first page gave it in the context's cookie, as a browser does."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_navigation_timeout(120_000)  # the browsers share one core here: allow them time to load
    for _ in range(rounds):
        for path, title in pages:
            try:
                seconds = await open_page(page, url, path, title)
                times.setdefault(path or "overview", []).append(seconds)
            except Exception as exc:  # every page must answer: count what did not
                failures.append(f"{path or 'overview'}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
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


async def run(
    url: str,
    sessions: int,
    rounds: int,
    executable: str,
    ae_epochs: int,
    clf_epochs: int | None,
    job: bool,
    pages: list,
) -> dict:
    times, failures = {}, []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        if job:
            await start_training(browser, url, ae_epochs, clf_epochs)
        t0 = time.perf_counter()
        await asyncio.gather(*(session(browser, url, rounds, times, failures, pages) for _ in range(sessions)))
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
    # `timeout` (or Ctrl-C) must still stop the server and its worker: a leftover server training
    # its job would load the next measurement
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ae-epochs", type=int, default=3)
    parser.add_argument("--nice-browsers", action="store_true", help="Chromium at nice 19")
    parser.add_argument("--pin-browsers", default=None, metavar="CPUS", help="taskset Chromium to these cores")
    parser.add_argument("--quiet", action="store_true", help="the same job with no browsers walking")
    parser.add_argument("--no-job", action="store_true", help="the same walk with no job training")
    parser.add_argument("--classroom", action="store_true", help="CAE_CLASSROOM=1: a seat per session")
    parser.add_argument("--clf-epochs", type=int, default=None, help="the job's classifier epochs (preset's if unset)")
    args = parser.parse_args()
    sessions = 0 if args.quiet else args.sessions
    pages = CLASSROOM_PAGES if args.classroom else PAGES
    with tempfile.TemporaryDirectory() as tmp:
        data = data_for_load()
        env = {
            "CAE_RUNS": f"{tmp}/runs",
            "CAE_CACHE": f"{tmp}/cache",
            "CAE_DATA": data,
            **({"CAE_CLASSROOM": "1"} if args.classroom else {}),
        }
        with AppServer(env, Path(tmp) / "server.log") as server:
            stop, health, memory = threading.Event(), [], []
            poller = threading.Thread(target=poll_health, args=(server.url, stop, health, memory))
            poller.start()
            try:
                executable = chromium_wrapper(tmp, args.nice_browsers, args.pin_browsers)
                result = asyncio.run(
                    run(
                        server.url,
                        sessions,
                        args.rounds,
                        executable,
                        args.ae_epochs,
                        args.clf_epochs,
                        not args.no_job,
                        pages,
                    )
                )
                walked = time.perf_counter()
                stop.set()  # health is measured during the walk only
                metrics = None if args.no_job else wait_for_run(Path(tmp) / "runs")
            finally:
                stop.set()
                poller.join()
    answered = [h for _, h in health if h is not None]
    ranked = sorted(h if h is not None else float("inf") for _, h in health)  # unanswered: slower than any
    epochs = [r["seconds"] for r in metrics["autoencoder"]] if metrics else []
    report = {
        "sessions": sessions,
        "rounds": args.rounds,
        "nice_browsers": args.nice_browsers,
        "classroom": args.classroom,
        "job": not args.no_job,
        "pin_browsers": args.pin_browsers,
        "data": data,
        "wall_s": result["wall_s"],
        "page_s": {k: {"median": statistics.median(v), "max": max(v), "n": len(v)} for k, v in result["times"].items()},
        "failures": result["failures"],
        "health": {
            "polls": len(health),
            "unanswered": len(health) - len(answered),
            "median_s": statistics.median(answered),
            "max_s": max(answered),
            # None when over 5% of the polls went unanswered: the p95 is then over 10 s
            "p95_s": None if (p95 := ranked[int(0.95 * (len(ranked) - 1))]) == float("inf") else p95,
            "unanswered_at_s": [round(at) for at, h in health if h is None],
        },
        "min_available_mb": min(memory),
        "ae_epoch_s": epochs,
        "job_seconds_total": metrics["seconds_total"] if metrics else None,
        "job_finished_after_walk_s": time.perf_counter() - walked,
    }
    pinned = f", browsers pinned to CPU {args.pin_browsers}" if args.pin_browsers is not None else ""
    doing = f"while a job trains on {data}" if metrics else f"with no job training, data {data}"
    print(
        f"{sessions} sessions x {args.rounds} rounds of {len(pages)} pages {doing} "
        f"({report['wall_s']:.0f} s){', browsers at nice 19' if args.nice_browsers else ''}{pinned}"
        f"{', classroom mode (a seat each)' if args.classroom else ''}"
    )
    for name, t in report["page_s"].items():
        print(f"  {name:<12} median {t['median']:.2f} s   max {t['max']:.2f} s   ({t['n']} loads)")
    h = report["health"]
    loads = sum(t["n"] for t in report["page_s"].values())
    print(f"  page loads answered: {loads} of {loads + len(report['failures'])}")
    p95 = "over 10 s (unanswered)" if h["p95_s"] is None else f"{1000 * h['p95_s']:.0f} ms"
    print(
        f"  health: {h['polls']} polls, {h['unanswered']} unanswered (at {h['unanswered_at_s'][:8]} s), "
        f"median {1000 * h['median_s']:.0f} ms, p95 {p95}, max answered {1000 * h['max_s']:.0f} ms"
    )
    if metrics:
        print(f"  autoencoder epochs: {', '.join(f'{e:.1f}' for e in epochs)} s; job {metrics['seconds_total']:.0f} s")
    print(f"  least memory available during the walk: {report['min_available_mb']:,} MB")
    print(f"  failures: {len(report['failures'])} {report['failures'][:5]}")
    out = Path(__file__).parent / "results" / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
