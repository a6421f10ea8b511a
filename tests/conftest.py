"""Shared fixtures: throw-away nbgrader courses, generated and autograded once per session.

Each assignment gets a course folder (and SQLite gradebook) of its own, so the assignments are
generated and graded in parallel without two processes writing one SQLite file (nbgrader #174).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.config import ASSIGNMENTS, REPO_ROOT
from autograder.grading import autograde, generate, make_course, read_scores
from autograder.submissions import (
    load_variants,
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

    def build(assignment: str) -> Path:
        root = make_course(base / assignment, REPO_ROOT / "source")
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
    hidden tests with ``autograder.fixturecheck``, one process per assignment, against the
    release nbgrader generated: ``{assignment: {student: {"scores": ..., "errors": ...}}}``."""
    out = tmp_path_factory.mktemp("fixturecheck")

    def check(assignment: str):
        root, result = generated_courses[assignment], out / f"{assignment}.json"
        proc = subprocess.run(
            [sys.executable, "-m", "autograder.fixturecheck", assignment, "--source",
             str(root / "source"), "--release", str(root / "release"), "--json", str(result)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"fixturecheck {assignment} failed:\n{proc.stderr[-3000:]}"
        return json.loads(result.read_text())

    # the longest first, so that the two workers finish together
    order = sorted(ASSIGNMENTS, key=lambda a: -len(load_variants(a)))
    with ThreadPoolExecutor(WORKERS) as pool:
        done = dict(zip(order, pool.map(check, order), strict=True))
    return {a: done[a] for a in ASSIGNMENTS}
