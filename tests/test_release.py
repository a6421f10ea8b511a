"""release/ is what students get: it must be current and must never leak a solution or a hidden
test. Both the committed release/ and one generated now from source/ are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.config import ASSIGNMENTS

PROTECTED = {
    "### BEGIN SOLUTION": "### END SOLUTION",
    "### BEGIN HIDDEN TESTS": "### END HIDDEN TESTS",
}
FORBIDDEN = [
    *PROTECTED, *PROTECTED.values(), "load_reference", "from autograder", "import autograder"
]


def protected_lines(source_nb: Path) -> set[str]:
    """Code lines that only occur inside solution or hidden-test regions of a source notebook."""
    inside, outside = set(), set()
    nb = json.loads(source_nb.read_text())
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        end = None
        for line in text.splitlines():
            key = line.strip()
            if end is None and key in PROTECTED:
                end = PROTECTED[key]
                continue
            if end is not None and key == end:
                end = None
                continue
            (inside if end else outside).add(key)
    # Short or generic lines (`return out, cache`, `else:`) say nothing about the answer.
    return {
        line for line in inside - outside
        if len(line) >= 16 and not line.startswith("#") and line.count(" ") >= 1
    }


def release_text(release_dir: Path) -> str:
    chunks = []
    for path in sorted(release_dir.rglob("*")):
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text())
            chunks += ["".join(c["source"]) for c in nb["cells"]]
        elif path.is_file():
            chunks.append(path.read_text(errors="replace"))
    return "\n".join(chunks)


def notebooks(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.ipynb"))}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_current(repo, generated_courses, assignment):
    fresh = generated_courses[assignment] / "release" / assignment
    committed = repo / "release" / assignment
    assert committed.is_dir(), f"release/{assignment} is missing: run `make release` and commit it"
    fresh_files = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file())
    committed_files = sorted(
        p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()
    )
    assert committed_files == fresh_files, "release/ has other files than source/ generates"
    for name, nb in notebooks(fresh).items():
        assert notebooks(committed)[name] == nb, (
            f"release/{assignment}/{name} is stale: run `make release` and commit the result"
        )


@pytest.mark.parametrize("where", ["committed", "generated"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solution_or_hidden_test(repo, generated_courses, assignment, where):
    root = repo if where == "committed" else generated_courses[assignment]
    text = release_text(root / "release" / assignment)
    for marker in FORBIDDEN:
        assert marker not in text, f"{where} release/{assignment} contains {marker!r}"
    secret = protected_lines(repo / "source" / assignment / f"{assignment}.ipynb")
    assert secret, "no solution or hidden-test lines found in the source notebook"
    leaked = sorted(line for line in secret if line in text)
    assert not leaked, f"{where} release/{assignment} leaks protected lines: {leaked[:5]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_keeps_stubs_and_visible_tests(generated_courses, assignment):
    nb = notebooks(generated_courses[assignment] / "release" / assignment)[f"{assignment}.ipynb"]
    meta = [c["metadata"].get("nbgrader", {}) for c in nb["cells"]]
    stubs = [c for c, m in zip(nb["cells"], meta, strict=True) if m.get("solution")]
    tests = [c for c, m in zip(nb["cells"], meta, strict=True) if m.get("grade")]
    assert stubs and tests
    for cell in stubs:
        if cell["cell_type"] == "code":
            assert "raise NotImplementedError()" in "".join(cell["source"])
    for cell in tests:
        assert "".join(cell["source"]).strip(), "a test cell lost its visible tests"
