"""How Lecture mode's presenter view fits a 1280×720 projector, step by step, after the reveal:
the page's height, where the Reveal button and the revealed answer end, and whether anything
needs scrolling. Measured in Debian's Chromium the way a lecturer sees it (presenter view on,
sidebar hidden, a prediction clicked, then Reveal).

    python bench/presenter_fit.py [--shots DIR]

Prints one line per step; a step fits when its page is no taller than the window.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.appserver import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402
from cae import lecture  # noqa: E402

WIDTH, HEIGHT = 1280, 720
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
MEASURE = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const bottom = el => el ? Math.round(el.getBoundingClientRect().bottom) : null;
    const answer = Array.from(main.querySelectorAll('[data-testid="stMarkdownContainer"]'))
        .find(m => /As you predicted|Not quite|Right within the noise/.test(m.textContent));
    const reveal = Array.from(main.querySelectorAll('button')).find(b => b.textContent.trim() === 'Reveal');
    const scroller = document.scrollingElement;
    return {page: Math.max(main.scrollHeight, scroller.scrollHeight), window: window.innerHeight,
            answer: bottom(answer), reveal: bottom(reveal)};
}"""


def reveal_step(page, url: str, number: int) -> dict:
    """Step `number` opened, a prediction clicked with the mouse, revealed; its measures."""
    page.goto(f"{url}/lecture?step={number}")
    page.get_by_role("heading", name=f"{number}/{len(lecture.STEPS)} · ").wait_for()
    page.wait_for_function(IDLE, timeout=60_000)
    reveal = page.get_by_role("button", name="Reveal")
    if reveal.count():
        radio = page.get_by_role("radio").first
        radio.check(force=True)
        page.wait_for_function(f"() => document.querySelector('input[type=radio]:checked') && ({IDLE})()")
        page.wait_for_timeout(500)
        reveal.click()
        page.get_by_text("You predicted").wait_for(timeout=60_000)
    page.wait_for_function(IDLE, timeout=60_000)
    page.wait_for_timeout(800)
    return page.evaluate(MEASURE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=Path, help="save a screenshot of each step here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="cae-fit-"))
    env = {"CAE_RUNS": str(root / "runs"), "CAE_CACHE": str(root / "cache"), "CAE_DATA": "sample"}
    with AppServer(env, root / "server.log") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
        page.set_default_timeout(60_000)
        print(f"{'step':<26} {'page px':>8} {'reveal':>7} {'answer':>7}  fits {WIDTH}×{HEIGHT}")
        for number, step in enumerate(lecture.STEPS, start=1):
            seen = reveal_step(page, server.url, number)
            if args.shots:
                args.shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.shots / f"step-{number}.png"))
            fits = seen["page"] <= seen["window"]
            print(
                f"{number} {step.key:<24} {seen['page']:>8} {seen['reveal'] or '-':>7} {seen['answer'] or '-':>7}  "
                f"{'yes' if fits else 'no'}"
            )
        browser.close()


if __name__ == "__main__":
    main()
