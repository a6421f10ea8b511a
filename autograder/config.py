"""The course's nbgrader settings, in one place.

``nbgrader_config.py`` at the repository root calls :func:`configure`; the grading tests call it
too, for the throw-away course folders they grade in, so the tests check the settings instructors
actually use. See ``../shared/NBGRADER_NOTES.md`` for why each one is set.
"""

from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

# The course's facts live in autograder/course.py; they are re-exported here for the course's
# nbgrader_config.py, the Makefile and the benchmarks, which read them from the config.
from autograder.course import (  # noqa: F401
    ASSIGNMENTS,
    CELL_TIMEOUT_S,
    COMPANIONS,
    COURSE_ID,
    GRADING_ENV,
    IGNORE_STDERR_PATTERN,
    IOPUB_TIMEOUT_S,
    REPO_ROOT,
)


def configure(c: Config, root: str | Path) -> Config:
    root = Path(root).resolve()
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    # Every cell gets its own time limit; a cell that times out scores 0, grading goes on.
    c.Execute.timeout = CELL_TIMEOUT_S
    # After a cell's reply, nbgrader waits Execute.iopub_timeout seconds (nbclient's default, 4) for
    # the kernel's last outputs and then, with its raise_on_iopub_timeout=True, abandons the whole
    # submission: every cell scores 0. On a loaded machine (CI, a class graded on 2 cores) 4 s
    # is not enough; the per-cell timeout above is what bounds a cell.
    c.Execute.iopub_timeout = IOPUB_TIMEOUT_S
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # A student who deletes a test cell is graded on the instructor's copy of it.
    c.OverwriteCells.add_missing_cells = True
    # nbgrader zeroes a test cell that writes anything to stderr; a stray warning from a library
    # or a progress bar is not a wrong answer. Only those are forgiven (IGNORE_STDERR_PATTERN).
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = IGNORE_STDERR_PATTERN
    # Demonstration cells tagged "skip-when-grading" do not run under autograde (autograder/
    # preprocessors.py): nbgrader's own list of autograde steps, with its Execute replaced.
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from autograder.preprocessors import ExecuteGradedCells

    c.Autograde.autograde_preprocessors = [
        ExecuteGradedCells, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    # `nbgrader validate` (and JupyterLab's Validate button) skips the same demonstration cells,
    # so a definition a student puts in one fails validation exactly as it will fail autograde.
    # Validator.preprocessors is not configurable; the Execute it makes (its child, so the
    # nested section applies to it alone) skips cells with the tag through nbclient's own
    # skip_cells_with_tag. Unlike ExecuteGradedCells it would skip a test cell a student tagged,
    # which only makes that student's own validation optimistic: autograde still runs it.
    from autograder.preprocessors import SKIP_TAG

    c.Validator.Execute.skip_cells_with_tag = SKIP_TAG
    # Feedback HTML without the hidden tests' source or tracebacks that quote them (nbgrader #917,
    # #1363); see autograder/preprocessors.py.
    from autograder.preprocessors import feedback_preprocessors

    c.GenerateFeedback.preprocessors = feedback_preprocessors()
    return c


def make_config(root: str | Path) -> Config:
    return configure(Config(), root)


def load_config(course_root: Path) -> Config:
    """The nbgrader config of a course folder: its ``nbgrader_config.py`` if it has one (as
    nbgrader itself reads it), else the course defaults of :mod:`autograder.config`."""
    from traitlets.config.loader import PyFileConfigLoader

    course_root = Path(course_root).resolve()
    if (course_root / "nbgrader_config.py").is_file():
        return PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    return make_config(course_root)


def course_db(course_root: Path) -> tuple[str, str]:
    """``(db_url, course_id)`` of a course folder."""
    from nbgrader.coursedir import CourseDirectory

    cfg = load_config(course_root)
    if "root" not in cfg.CourseDirectory:
        cfg.CourseDirectory.root = str(Path(course_root).resolve())
    coursedir = CourseDirectory(config=cfg)
    return coursedir.db_url, coursedir.course_id


def db_url_of(course_root: Path) -> str:
    """The gradebook URL the course's ``nbgrader_config.py`` sets (SQLite by default)."""
    return course_db(course_root)[0]
