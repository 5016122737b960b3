"""Where a page's layout shift comes from: each shift Chrome reports (the `layout-shift` entries its
CLS adds up), attributed to Streamlit mounting its frame or to the page itself. Used by
bench/lighthouse.py and the browser tests.

Streamlit 1.67 paints its frame before the script's first message, then moves it: the sidebar
arrives beside the page (the page moves right by the sidebar's width: 0.227 at 1350x940), the page
widens from the centered to the wide layout (0.06-0.09), and the sidebar's navigation arrives above
its content. `minimal_app` writes a six-line app with only that frame, whose CLS is the floor every
page of a wide app with a sidebar starts from.
"""

from __future__ import annotations

from pathlib import Path

# Collects every layout-shift entry with its sources (an init script: before the page's own scripts)
OBSERVE_JS = """
window.__caeShifts = [];
new PerformanceObserver(list => { for (const e of list.getEntries()) {
  if (e.hadRecentInput) continue;
  window.__caeShifts.push({value: e.value, viewport: [window.innerWidth, window.innerHeight],
    sources: e.sources.map(s => ({
    testid: s.node && s.node.dataset ? (s.node.dataset.testid || '') : '',
    header: !!(s.node && s.node.querySelector && s.node.querySelector(':scope > [data-testid="stHeader"]')),
    before: [s.previousRect.x, s.previousRect.y, s.previousRect.width, s.previousRect.height],
    after: [s.currentRect.x, s.currentRect.y, s.currentRect.width, s.currentRect.height]}))});
}}).observe({type: 'layout-shift', buffered: true});
"""
SHIFTS_JS = "window.__caeShifts || []"
# the page has drawn its title and its script has finished
DRAWN_JS = """() => document.querySelector('[data-testid="stMain"] h1') &&
  !document.querySelector('[data-testid="stStatusWidget"]')"""


def frame_cause(source: dict) -> str | None:
    """Which part of Streamlit's mounting moved this node, or None: the page's own."""
    x0, y0, w0, _ = source["before"]
    x1, y1, w1, _ = source["after"]
    page_box = source["header"] or source["testid"] == "stMain"  # Chromium names either
    if page_box and x1 - x0 >= 200 and abs((x0 + w0) - (x1 + w1)) < 2:
        return "the sidebar arrives"  # the page's box moves right, its right edge stays
    if source["testid"] == "stMainBlockContainer" and x1 < x0 and w1 > w0:
        return "the wide layout arrives"  # centered -> wide
    if source["testid"] == "stSidebarUserContent" and y1 > y0 and x1 == x0:
        return "the sidebar's navigation arrives"
    return None


def _clipped(rect: list[float], width: float, height: float) -> tuple[float, float, float, float]:
    x, y, w, h = rect
    return max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)


def _union_area(boxes: list[tuple[float, float, float, float]]) -> float:
    """Area covered by boxes (x0, y0, x1, y1), each point once."""
    xs = sorted({v for b in boxes for v in (b[0], b[2])})
    area = 0.0
    for left, right in zip(xs, xs[1:]):
        spans = sorted((b[1], b[3]) for b in boxes if b[0] <= left and b[2] >= right and b[3] > b[1])
        covered, top, bottom = 0.0, None, None
        for y0, y1 in spans:
            if bottom is None or y0 > bottom:
                covered += 0 if bottom is None else bottom - top
                top, bottom = y0, y1
            else:
                bottom = max(bottom, y1)
        covered += 0 if bottom is None else bottom - top
        area += (right - left) * covered
    return area


def score(sources: list[dict], viewport: list[float]) -> float:
    """The layout-shift score these sources alone give, Chrome's way: the share of the viewport
    they cover before or after (impact) times the longest move over the viewport's longer side."""
    width, height = viewport
    if not sources:
        return 0.0
    boxes = [_clipped(s[key], width, height) for s in sources for key in ("before", "after")]
    moved = max(max(abs(s["after"][0] - s["before"][0]), abs(s["after"][1] - s["before"][1])) for s in sources)
    return _union_area(boxes) / (width * height) * moved / max(width, height)


def attribute(shifts: list[dict]) -> dict:
    """CLS split in two: `frame`, what Streamlit mounting its frame gives alone (each shift's frame
    sources scored on their own, at most the shift's value), and `page`, what the shifts add beyond it;
    `causes`, the parts of the frame that moved something."""
    frame = sum(
        min(s["value"], score([src for src in s["sources"] if frame_cause(src)], s["viewport"])) for s in shifts
    )
    total = sum(s["value"] for s in shifts)
    causes = sorted({cause for s in shifts for src in s["sources"] if (cause := frame_cause(src))})
    return {"total": total, "frame": frame, "page": total - frame, "causes": causes}


def measure(browser, url: str, width: int = 1350, height: int = 940, settle_ms: int = 6000) -> dict:
    """One fresh load of `url` in a new browser context (Lighthouse's desktop window by default)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.add_init_script(OBSERVE_JS)
        page.goto(url)
        page.wait_for_function(DRAWN_JS, timeout=120_000)
        page.wait_for_timeout(settle_ms)
        return attribute(page.evaluate(SHIFTS_JS))
    finally:
        context.close()


MINIMAL_APP = """import streamlit as st

st.set_page_config(page_title="frame", layout="wide")
page = st.navigation([st.Page("one.py", title="One", default=True), st.Page("two.py", title="Two")])
st.sidebar.caption("A sidebar caption")
page.run()
"""


def minimal_app(folder: Path) -> Path:
    """A wide app with a sidebar navigation and nothing else, in `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "streamlit_app.py").write_text(MINIMAL_APP)
    (folder / "one.py").write_text('import streamlit as st\n\nst.title("One")\nst.write("A line of text.")\n')
    (folder / "two.py").write_text('import streamlit as st\n\nst.title("Two")\n')
    return folder
