"""Shared fixtures: throw-away nbgrader courses, generated and autograded once per session.

Each assignment gets a course folder (and SQLite gradebook) of its own, so the assignments are
generated and graded in parallel without two processes writing one SQLite file (nbgrader #174).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.config import ASSIGNMENTS, REPO_ROOT
from autograder.grading import (
    CONFIG_TEMPLATE,
    autograde,
    generate,
    make_course,
    nbgrader,
    read_scores,
)
from autograder.submissions import (
    nbgrader_sample,
    submissions_for,
    write_submission,
)

WORKERS = max(1, min(len(ASSIGNMENTS), os.cpu_count() or 1))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def generated_courses(tmp_path_factory) -> dict[str, Path]:
    """``{assignment: course folder}`` with ``source/`` copied and the release generated now."""
    base = tmp_path_factory.mktemp("courses")
    # An empty gradebook made once and copied: nbgrader's schema setup (alembic) takes ~5 s.
    empty = tmp_path_factory.mktemp("empty-gradebook")
    (empty / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(root=str(empty)))
    proc = nbgrader(empty, "db", "student", "list")
    assert proc.returncode == 0 and (empty / "gradebook.db").exists(), proc.stderr[-2000:]

    def build(assignment: str) -> Path:
        root = make_course(base / assignment, REPO_ROOT / "source")
        shutil.copy2(empty / "gradebook.db", root / "gradebook.db")
        generate(root, assignment)
        return root

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(build, ASSIGNMENTS), strict=True))


@pytest.fixture(scope="session")
def graded_course(generated_courses):
    """A sample of each assignment's example submissions (``nbgrader_sample``: the solution, the
    blank release, a bug, an alternative), autograded by the real nbgrader.

    Returns ``({assignment: {student: {grade_id: CellScore}}}, {assignment: nbgrader log})``.
    """

    def grade(assignment: str):
        root = generated_courses[assignment]
        subs = submissions_for(assignment, root / "source", root / "release")
        for student in nbgrader_sample(assignment):
            write_submission(root, student, assignment, subs[student])
        proc = autograde(root, assignment)
        log = proc.stdout + proc.stderr
        if os.environ.get("RNNCOURSE_KEEP_LOGS"):
            (root / f"autograde-{assignment}.log").write_text(log)
        return read_scores(root, assignment), log

    with ThreadPoolExecutor(WORKERS) as pool:
        done = dict(zip(ASSIGNMENTS, pool.map(grade, ASSIGNMENTS), strict=True))
    return {a: r[0] for a, r in done.items()}, {a: r[1] for a, r in done.items()}


@pytest.fixture(scope="session")
def checked_fixtures(generated_courses, tmp_path_factory):
    """Every example submission of every assignment (solution, blank, each fixture) through the
    hidden tests with ``autograder.fixturecheck``, against the releases nbgrader generated:
    ``{assignment: {student: {"scores": ..., "errors": ...}}}``. One process per core, each
    taking every WORKERS-th assignment (a process pays its ~5 s of imports once)."""
    out = tmp_path_factory.mktemp("fixturecheck")
    for kind in ("source", "release"):  # one tree of the generated courses' folders
        (out / kind).mkdir()
        for assignment, root in generated_courses.items():
            (out / kind / assignment).symlink_to(root / kind / assignment)

    def check(group: list[str]) -> dict:
        result = out / f"{group[0]}.json"
        proc = subprocess.run(
            [sys.executable, "-m", "autograder.fixturecheck", *group, "--source",
             str(out / "source"), "--release", str(out / "release"), "--json", str(result)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"fixturecheck {group} failed:\n{proc.stderr[-3000:]}"
        return json.loads(result.read_text())

    groups = [ASSIGNMENTS[i::WORKERS] for i in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        found = {a: r for part in pool.map(check, groups) for a, r in part.items()}
    return {a: found[a] for a in ASSIGNMENTS}
