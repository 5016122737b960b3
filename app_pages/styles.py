"""The app's few styles, in one place: streamlit_app.py sends them for each page before the page's
elements (a style that arrives after them moves them: layout shift, bench/lighthouse.py)."""

from __future__ import annotations

# Secondary text dark enough for WCAG AA (4.5:1) on white and on the sidebar's grey: Streamlit's own
# caption grey measured 3.7-3.9:1 with axe-core; the shortcut badge on a primary button 2.8:1.
READABLE = """
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p, kbd { color: #595959 !important;
  opacity: 1 !important; }
button[kind="primary"] kbd, [data-testid="stBaseButton-primary"] kbd { color: #ffffff !important; }
"""
# Lecture mode: text read from the back row
LECTURE = """
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label { font-size: 20px !important; }
[data-testid="stMain"] h1 { font-size: 34px !important; padding-top: 0 !important; }
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem !important; padding-bottom: 1rem !important; }
"""
# the presenter view: no sidebar and no header bar (its menu returns with the view off), so every step
# fits a 1280x720 projector after its reveal (bench/presenter_fit.py measures it)
PRESENTER_VIEW = """
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"] { display: none; }
[data-testid="stMainBlockContainer"] { padding-top: 1rem !important; padding-bottom: 0.5rem !important; }
"""


def for_page(url_path: str, presenting: bool) -> str:
    """The style element for this page: Lecture mode's sizes there, and the presenter view's when on."""
    lecture = url_path == "lecture"
    return (
        "<style>"
        + READABLE
        + (LECTURE if lecture else "")
        + (PRESENTER_VIEW if lecture and presenting else "")
        + "</style>"
    )
