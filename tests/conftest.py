"""Shared fixtures: one throw-away nbgrader course, generated and autograded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder.config import ASSIGNMENTS, REPO_ROOT
from autograder.grading import autograde, generate, make_course, read_scores
from autograder.submissions import submissions_for, write_submission


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def generated_course(tmp_path_factory) -> Path:
    """A course folder with ``source/`` copied from the repo and ``release/`` generated now."""
    root = make_course(tmp_path_factory.mktemp("course"), REPO_ROOT / "source")
    for assignment in ASSIGNMENTS:
        generate(root, assignment)
    return root


@pytest.fixture(scope="session")
def graded_course(generated_course):
    """Every example submission of every assignment, autograded by nbgrader.

    Returns ``{assignment: {student: {grade_id: CellScore}}}`` and keeps nbgrader's log for
    failing tests to show.
    """
    root = generated_course
    results, logs = {}, {}
    for assignment in ASSIGNMENTS:
        subs = submissions_for(assignment, root / "source", root / "release")
        for student, nb in subs.items():
            write_submission(root, student, assignment, nb)
        proc = autograde(root, assignment)
        logs[assignment] = proc.stdout + proc.stderr
        results[assignment] = read_scores(root, assignment)
    if os.environ.get("RNNCOURSE_KEEP_LOGS"):
        for assignment, log in logs.items():
            (root / f"autograde-{assignment}.log").write_text(log)
    return results, logs
