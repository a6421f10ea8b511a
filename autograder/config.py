"""The course's nbgrader settings, in one place.

``nbgrader_config.py`` at the repository root calls :func:`configure`; the grading tests call it
too, for the throw-away course folders they grade in, so the tests check the settings instructors
actually use. See ``../shared/NBGRADER_NOTES.md`` for why each one is set.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets.config import Config

COURSE_ID = "rnn-course"

REPO_ROOT = Path(__file__).resolve().parent.parent
# Assignments in course order: every source/NN_name folder.
# $RNNCOURSE_ASSIGNMENTS (space-separated) narrows it, e.g. to test one assignment while writing it.
ASSIGNMENTS = sorted(
    p.name for p in (REPO_ROOT / "source").glob("[0-9][0-9]_*") if p.is_dir()
    if p.name in os.environ.get("RNNCOURSE_ASSIGNMENTS", p.name).split()
)

# Later assignments that import earlier assignments' functions (see autograder/companions.py).
COMPANIONS: dict[str, list[str]] = {
    "03_bptt": ["02_forward_pass"],
    "05_gru": ["02_forward_pass", "03_bptt"],
    "06_lstm": ["02_forward_pass", "03_bptt", "05_gru"],
    "07_bidirectional_deep": ["02_forward_pass", "03_bptt", "05_gru", "06_lstm"],
    "08_char_language_model": ["02_forward_pass", "03_bptt", "06_lstm"],
}

CELL_TIMEOUT_S = 120


def configure(c: Config, root: str | Path) -> Config:
    root = Path(root).resolve()
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    # Every cell gets its own time limit; a cell that times out scores 0, grading goes on.
    c.Execute.timeout = CELL_TIMEOUT_S
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # A student who deletes a test cell is graded on the instructor's copy of it.
    c.OverwriteCells.add_missing_cells = True
    # nbgrader zeroes a test cell that writes anything to stderr; a stray warning from a library
    # is not a wrong answer. Only warnings are forgiven, never tracebacks.
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = r"^[^\n]*(Warning|warn)[^\n]*\n?(  [^\n]*\n?)?$"
    return c


def make_config(root: str | Path) -> Config:
    return configure(Config(), root)
