"""The repository as users meet it: install files agree, notebooks are committed clean, the README
and CI run what they say, and the course map links every assignment in order."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from autograder.config import ASSIGNMENTS

LOCK = "constraints.txt"


def _requirement_map(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", line)
        assert m, f"cannot parse requirement {line!r}"
        out[m.group(1).lower().replace("_", "-")] = m.group(2).replace(" ", "")
    return out


def _pyproject(repo) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text())["project"]


def _pyproject_requirements(repo) -> list[str]:
    project = _pyproject(repo)
    return project["dependencies"] + project["optional-dependencies"]["test"]


def _environment_yml(repo) -> tuple[list[str], str | None]:
    """environment.yml's requirements (conda's and pip's) and its Python version."""
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
    return deps, python


def test_environment_yml_mirrors_pyproject(repo):
    deps, python = _environment_yml(repo)
    assert python == _pyproject(repo)["requires-python"].lstrip(">="), "Python versions disagree"
    assert _requirement_map(deps) == _requirement_map(_pyproject_requirements(repo))


# --- the lock: constraints.txt ------------------------------------------------------------------
def _lock(repo) -> dict[str, Version]:
    """constraints.txt as {canonical name: pinned version}; every line must be an exact pin."""
    pins = {}
    for line in (repo / LOCK).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and not req.marker \
            and not req.extras and not req.url, f"{LOCK}: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{LOCK} pins {name} twice"
        pins[name] = Version(specs[0].version)
    return pins


def test_lock_pins_every_dependency_within_pyproject_and_environment_yml(repo):
    """Each requirement of pyproject.toml (and so of environment.yml) has an exact pin that meets
    it. A new or changed dependency fails here until `make lock` is run."""
    pins = _lock(repo)
    env_deps, _ = _environment_yml(repo)
    problems = []
    for source, lines in (("pyproject.toml", _pyproject_requirements(repo)),
                          ("environment.yml", env_deps)):
        for line in lines:
            req = Requirement(line)
            pin = pins.get(canonicalize_name(req.name))
            if pin is None:
                problems.append(f"{source}'s {line!r} is not pinned in {LOCK}")
            elif not req.specifier.contains(pin, prereleases=True):
                problems.append(f"{LOCK} pins {req.name}=={pin}, outside {source}'s {line!r}")
    assert canonicalize_name(_pyproject(repo)["name"]) not in pins, f"{LOCK} pins the project"
    assert not problems, "\n".join(problems) + "\n(run `make lock`, then `make test`)"


def test_lock_agrees_with_the_makefile_and_environment_yml_python(repo):
    """torch as `make torch` installs it, and the Python the lock was resolved with."""
    makefile = (repo / "Makefile").read_text()
    torch = re.search(r"^TORCH_VERSION\s*:?=\s*(\S+)\s*$", makefile, re.M)
    assert torch, "the Makefile sets no TORCH_VERSION"
    assert _lock(repo).get("torch") == Version(torch.group(1)), (
        f"{LOCK} and the Makefile's TORCH_VERSION = {torch.group(1)} disagree: run `make lock`")
    resolved = re.search(r"^# Resolved with Python (\d+\.\d+)\.", (repo / LOCK).read_text(), re.M)
    _, python = _environment_yml(repo)
    assert resolved and resolved.group(1) == python, (
        f"{LOCK} was resolved with Python {resolved and resolved.group(1)}, "
        f"environment.yml asks for {python}")


def test_every_install_of_the_makefile_uses_the_lock(repo):
    """`make venv` and `make torch` (hence `make demo`, `make test`, .ci/run) install from it."""
    dry = subprocess.run(["make", "-n", "-B", "-C", str(repo), "venv", "torch"],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines()
                if " pip install " in line and "--upgrade pip" not in line]
    assert len(installs) == 2, f"expected the project's and torch's install:\n{dry.stdout}"
    for line in installs:
        assert f"-c {LOCK}" in line, f"an install without the lock: {line}"


def test_installed_versions_are_the_locked_ones(repo):
    """The environment the tests run in is the one the lock describes: what CI tests is what
    `make venv` installs everywhere. (Packages the lock pins but this machine lacks, such as
    torch before `make torch`, are not checked.)"""
    wrong = []
    for name, pin in sorted(_lock(repo).items()):
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            continue
        if Version(installed.public) != pin:  # the local label (torch's +cpu) is not pinned
            wrong.append(f"{name} {installed} (locked: {pin})")
    assert not wrong, (f"installed versions differ from {LOCK}: {', '.join(wrong)}; "
                       "run `make venv` (or pip install -c constraints.txt -e '.[test]')")


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
