"""The repository as users meet it: install files agree, notebooks are committed clean, the README
and CI run what they say, and the course map links every assignment in order."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from autograder.config import ASSIGNMENTS


def _requirement_map(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", line)
        assert m, f"cannot parse requirement {line!r}"
        out[m.group(1).lower().replace("_", "-")] = m.group(2).replace(" ", "")
    return out


def test_environment_yml_mirrors_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = _requirement_map(
        project["dependencies"] + project["optional-dependencies"]["test"]
    )
    deps, python = [], None
    in_deps = False
    for raw in (repo / "environment.yml").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not raw.startswith(" "):
            in_deps = line.startswith("dependencies:")
            continue
        if in_deps and line.strip().startswith("- "):
            item = line.strip()[2:].strip()
            if item.startswith("python="):
                python = item.split("=", 1)[1]
            elif item not in ("pip", "pip:"):
                deps.append(item)
    assert python == project["requires-python"].lstrip(">="), "Python versions disagree"
    assert _requirement_map(deps) == wanted


def _all_notebooks(repo: Path):
    for folder in ("source", "notebooks"):
        yield from sorted((repo / folder).rglob("*.ipynb"))


def test_committed_notebooks_have_no_outputs(repo):
    dirty = []
    for path in _all_notebooks(repo):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = json.loads(path.read_text())
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                dirty.append(f"{path.relative_to(repo)} cell {i}")
    assert not dirty, f"strip outputs before committing: {dirty[:5]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_metadata(repo, assignment):
    path = repo / "source" / assignment / f"{assignment}.ipynb"
    nb = json.loads(path.read_text())
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
           if "nbgrader" in c["metadata"] and "grade_id" in c["metadata"]["nbgrader"]]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    tests = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert tests, "an assignment without graded cells"
    for cell in tests:
        meta = cell["metadata"]["nbgrader"]
        assert meta.get("points", 0) > 0, f"{meta['grade_id']} is worth no points"
        if cell["cell_type"] == "code":
            assert meta.get("locked"), f"test cell {meta['grade_id']} must be read-only"


def test_course_map_links_every_assignment_in_order(repo):
    nb = json.loads((repo / "notebooks" / "00_course_map.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    positions = []
    for assignment in ASSIGNMENTS:
        link = f"../release/{assignment}/{assignment}.ipynb"
        assert link in text, f"the course map does not link {link}"
        positions.append(text.index(link))
    assert positions == sorted(positions), "the course map lists assignments out of order"


def test_readme_and_ci_agree(repo):
    readme = (repo / "README.md").read_text()
    ci = (repo / ".ci" / "run").read_text()
    for command in ("make demo", "make test"):
        assert command in readme
    assert "make test" in ci
    # .ci/run runs nothing the README does not document.
    for target in re.findall(r"\bmake\s+([\w-]+)", ci):
        assert f"make {target}" in readme, f".ci/run runs `make {target}`, the README does not"
