"""The house in numbers, for a tree (this checkout, or another given by path): lines per module,
the longest page and function, how many files touch `st.session_state`/`st.query_params` and how
many plain session keys they use, lines over 120 characters, and import cycles among the project's
modules.

    python bench/house.py [TREE]        # e.g. a `git worktree add /tmp/before <commit>`
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

KEY_USES = [
    r"st\.session_state\.([a-z_][a-z0-9_]*)",
    r"st\.session_state\[\"([a-z_][a-z0-9_]*)\"\]",
    r"st\.session_state\.(?:get|pop|setdefault)\(\"([a-z_][a-z0-9_]*)\"",
    r"\"([a-z_][a-z0-9_]*)\" (?:not )?in st\.session_state",
]
METHODS = {"get", "pop", "setdefault", "update", "to_dict", "from_dict", "items", "keys", "values", "clear"}


def python_files(tree: Path) -> list[Path]:
    files = [tree / "streamlit_app.py"] if (tree / "streamlit_app.py").exists() else []
    return files + sorted(p for folder in ("cae", "app_pages") for p in (tree / folder).glob("*.py"))


def session_keys(text: str) -> set[str]:
    """Plain session keys a file names literally (not widget keys given as key=...)."""
    return {k for pattern in KEY_USES for k in re.findall(pattern, text)} - METHODS


def longest_function(path: Path) -> tuple[int, str]:
    nodes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return max(((n.end_lineno - n.lineno + 1, n.name) for n in nodes), default=(0, ""))


def import_cycles(tree: Path) -> list[list[str]]:
    modules = {f"{p.parent.name}.{p.stem}": p for p in python_files(tree) if p.parent.name in ("cae", "app_pages")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = (found & modules.keys()) - {name}
    cycles, done = [], set()

    def visit(node, trail):
        if node in trail:
            cycles.append(trail[trail.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, trail + [node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return cycles


def main(tree: Path) -> None:
    files = python_files(tree)
    app = [p for p in files if p.parent.name == "app_pages" or p.name == "streamlit_app.py"]
    total = sum(len(p.read_text().splitlines()) for p in files)
    long_lines = sum(len(line) > 120 for p in files for line in p.read_text().splitlines())
    touching = [p for p in app if re.search(r"st\.session_state|st\.query_params", p.read_text())]
    keys = set().union(*(session_keys(p.read_text()) for p in app))
    pages = [
        p
        for p in app
        if p.parent.name == "app_pages" and not p.name.startswith("_") and p.stem not in ("state", "caches", "rights")
    ]
    longest_page = max(pages, key=lambda p: len(p.read_text().splitlines()))
    fn = max((longest_function(p) + (p.name,) for p in files), key=lambda t: t[0])
    print(f"tree: {tree}")
    print(f"python lines (cae, app_pages, router): {total:,}; over 120 characters: {long_lines}")
    print(
        f"longest page: {longest_page.name}, {len(longest_page.read_text().splitlines())} lines; "
        f"longest function: {fn[1]} in {fn[2]}, {fn[0]} lines"
    )
    print(
        f"app files touching st.session_state/st.query_params: {len(touching)} ({', '.join(p.name for p in touching)})"
    )
    print(f"plain session keys named literally: {len(keys)}")
    print(f"import cycles: {import_cycles(tree) or 'none'}")
    print("lines per module:")
    for p in files:
        print(f"  {p.relative_to(tree)}: {len(p.read_text().splitlines())}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
