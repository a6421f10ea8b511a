"""autograder/ has layers without circles: course facts at the bottom, intake and the nbgrader
preprocessors above them, the commands on top. Imports inside functions count too: a circle held
together by a late import is still a circle."""

from __future__ import annotations

import ast

from autograder.course import REPO_ROOT

PACKAGE = REPO_ROOT / "autograder"


def _imports() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    edges = {m: set() for m in modules}
    for m in modules:
        for node in ast.walk(ast.parse((PACKAGE / f"{m}.py").read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "autograder":
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autograder."):
                names = [node.module.split(".")[1]]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1] for a in node.names
                         if a.name.startswith("autograder.")]
            edges[m] |= {n for n in names if n in modules and n != m}
    return edges


def test_no_import_circle_in_autograder():
    edges = _imports()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges[m]):
            assert state.get(n) != 1, f"import circle: {' -> '.join(path + [m, n])}"
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])


def test_the_course_facts_import_nothing_of_the_course():
    assert _imports()["course"] == set()
