"""A real server and a real browser: `streamlit run` on a free port, Debian's Chromium via Playwright.

Without Chromium these tests skip with a reason (a user's machine); with CAE_REQUIRE_E2E=1 (CI)
a missing browser is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.appserver import CHROMIUM, CHROMIUM_ARGS, REPO, AppServer
from tests.conftest import copy_of_repository

SCREENSHOTS = REPO / "tests" / "e2e" / "screenshots"


def require_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM} (apt-get install chromium chromium-driver)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Python Playwright is not installed (pip install -r requirements-dev.txt)"
    if missing:
        if os.environ.get("CAE_REQUIRE_E2E") == "1":
            pytest.fail(f"CAE_REQUIRE_E2E=1 but {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    root = tmp_path_factory.mktemp("e2e")
    env = {"CAE_RUNS": str(root / "runs"), "CAE_CACHE": str(root / "cache"), "CAE_DATA": "sample"}
    srv = AppServer(env, root / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def new_user_server(tmp_path_factory):
    """`streamlit run streamlit_app.py` in a fresh copy of the repository, with no CAE_* variables
    and an empty HOME."""
    require_browser()
    root = tmp_path_factory.mktemp("new-user")
    clone = copy_of_repository(root / "cae-explorer")
    (root / "home").mkdir()
    srv = AppServer({"HOME": str(root / "home")}, root / "server.log", cwd=clone, keep_cae_env=False)
    srv.clone = clone
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})  # a projector
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
