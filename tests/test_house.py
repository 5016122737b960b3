"""The house rules a reader relies on, checked on the source: one home for a session's state, a
library that never imports the web framework, and imports that only point one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP_FILES = [REPO / "streamlit_app.py", *sorted((REPO / "app_pages").glob("*.py"))]


def test_session_state_and_the_address_are_touched_only_by_the_state_module():
    pattern = re.compile(r"st\.session_state|st\.query_params")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in APP_FILES
        if path.name != "state.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "use app_pages/state.py's accessors instead"


def test_widgets_keep_their_values_one_way_only():
    """Streamlit's own `persist_state`; no hand-made copy of widget values is left."""
    text = "\n".join(path.read_text() for path in APP_FILES)
    for retired in ("restore_settings", "remember_settings", "KEPT_SETTINGS", "keep_defaults"):
        assert retired not in text, retired


def imports_of(path: Path, package_roots: tuple[str, ...]) -> set[str]:
    """The project's modules that `path` imports (by dotted name), at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in package_roots}
    return found


def module_graph() -> dict[str, set[str]]:
    modules = {
        f"{folder}.{p.stem}": p
        for folder in ("cae", "app_pages")
        for p in (REPO / folder).glob("*.py")
        if p.stem != "__init__"
    }
    return {
        name: {m for m in imports_of(path, ("cae", "app_pages")) if m in modules} - {name}
        for name, path in modules.items()
    }


def test_no_module_imports_itself_back_through_others():
    graph = module_graph()
    visiting, done, cycles = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        if node in visiting:
            cycles.append(trail[trail.index(node) :] + [node])
            return
        if node in done:
            return
        visiting.add(node)
        for nxt in sorted(graph[node]):
            visit(nxt, trail + [nxt])
        visiting.discard(node)
        done.add(node)

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def test_the_library_never_imports_the_app_or_streamlit():
    for path in sorted((REPO / "cae").glob("*.py")):
        assert not imports_of(path, ("streamlit", "app_pages")), path.name


def test_the_state_module_is_the_bottom_of_the_app_layer():
    """state → nothing of the app; caches → state at most; rights → caches, state; pages above."""
    graph = module_graph()
    assert graph["app_pages.state"] == set()
    assert {m for m in graph["app_pages.caches"] if m.startswith("app_pages")} <= {"app_pages.state"}
    assert {m for m in graph["app_pages.rights"] if m.startswith("app_pages")} <= {
        "app_pages.state",
        "app_pages.caches",
    }


def test_the_lecture_and_report_modules_do_arithmetic_without_the_plotting_library():
    import subprocess
    import sys

    code = "import sys, cae.lecture, cae.report, cae.kernels, cae.evidence; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_name_a_script_or_page_takes_from_the_library_is_there():
    """A module split must take its users along: each `from cae.x import y` in bench/, app_pages/ and
    the app resolves (bench/ scripts run rarely, so nothing else would notice)."""
    import importlib.util

    missing = []
    for path in [*APP_FILES, *sorted((REPO / "bench").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("cae"):
                module = importlib.import_module(node.module)
                missing += [
                    f"{path.relative_to(REPO)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if not hasattr(module, alias.name)
                    and not (hasattr(module, "__path__") and importlib.util.find_spec(f"{node.module}.{alias.name}"))
                ]
    assert missing == []


def test_no_page_skips_a_heading_level():
    """A page's headings go title (h1), header (h2), subheader (h3): a subheader only where the page
    has a header, so screen readers' heading lists have no gaps."""
    for path in APP_FILES:
        text = path.read_text()
        if "st.subheader(" in text:
            assert "st.header(" in text, f"{path.name}: a subheader with no header above it"
