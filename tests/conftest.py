"""Shared fixtures: throw-away nbgrader courses, generated and autograded once per session.

Each assignment gets a course folder (and SQLite gradebook) of its own, so the assignments are
generated and graded in parallel without two processes writing one SQLite file (nbgrader #174).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.config import ASSIGNMENTS, REPO_ROOT
from autograder.grading import autograde, generate, make_course, read_scores
from autograder.submissions import submissions_for, write_submission

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
    """Every example submission of every assignment, autograded by nbgrader.

    Returns ``({assignment: {student: {grade_id: CellScore}}}, {assignment: nbgrader log})``.
    """

    def grade(assignment: str):
        root = generated_courses[assignment]
        subs = submissions_for(assignment, root / "source", root / "release")
        for student, nb in subs.items():
            write_submission(root, student, assignment, nb)
        proc = autograde(root, assignment)
        log = proc.stdout + proc.stderr
        if os.environ.get("RNNCOURSE_KEEP_LOGS"):
            (root / f"autograde-{assignment}.log").write_text(log)
        return read_scores(root, assignment), log

    with ThreadPoolExecutor(WORKERS) as pool:
        done = dict(zip(ASSIGNMENTS, pool.map(grade, ASSIGNMENTS), strict=True))
    return {a: r[0] for a, r in done.items()}, {a: r[1] for a, r in done.items()}
