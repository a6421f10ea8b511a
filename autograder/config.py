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

# Seconds a single cell may run under autograde before it is interrupted and scores 0
# ($RNNCOURSE_CELL_TIMEOUT overrides it, e.g. for the tests of runaway submissions).
CELL_TIMEOUT_S = int(os.environ.get("RNNCOURSE_CELL_TIMEOUT", "120"))

# Environment of the grading kernels: one BLAS thread each. The course's matrices are tiny and
# grading runs one kernel per core; with OpenBLAS's default of a thread per core, the kernels'
# threads fight over the cores (spinning, not computing). An instructor's own setting wins.
GRADING_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Seconds nbgrader waits for a cell's remaining output after the kernel's reply (see configure()).
IOPUB_TIMEOUT_S = 60

# stderr output that is noise, not a wrong answer. nbgrader fails a test cell with any stderr
# output; IgnorePattern drops a stderr output only if the pattern matches it (re.search), so the
# pattern is anchored to cover the whole text: nothing but Python warnings (a "file:line: XWarning:
# message" line, optionally followed by the indented source line), tqdm progress bars
# ("\r 40%|####      | 4/10 [...]") and whitespace (tqdm's closing newline arrives as an output of
# its own). Tracebacks are error outputs, never stderr text, so an exception always fails the cell.
# Possessive quantifiers (Python 3.11+) keep the match linear in the length of the output.
_WARNING = r"(?=[^\n]*(?:Warning|warn))[^\n]*+(?:\n  [^\n]*+)?+"
_TQDM = r"(?:\r(?=[^\r\n]*\d%\|)[^\r\n]*+)++"
IGNORE_STDERR_PATTERN = rf"\A(?:{_WARNING}|{_TQDM}|\s++)*+\Z"


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
    # execute.py): nbgrader's own list of autograde steps, with its Execute replaced.
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from autograder.execute import ExecuteGradedCells

    c.Autograde.autograde_preprocessors = [
        ExecuteGradedCells, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    # `nbgrader validate` (and JupyterLab's Validate button) skips the same demonstration cells,
    # so a definition a student puts in one fails validation exactly as it will fail autograde.
    # Validator.preprocessors is not configurable; the Execute it makes (its child, so the
    # nested section applies to it alone) skips cells with the tag through nbclient's own
    # skip_cells_with_tag. Unlike ExecuteGradedCells it would skip a test cell a student tagged,
    # which only makes that student's own validation optimistic: autograde still runs it.
    from autograder.execute import SKIP_TAG

    c.Validator.Execute.skip_cells_with_tag = SKIP_TAG
    # Feedback HTML without the hidden tests' source or tracebacks that quote them (nbgrader #917,
    # #1363); see autograder/feedback.py.
    from autograder.feedback import feedback_preprocessors

    c.GenerateFeedback.preprocessors = feedback_preprocessors()
    return c


def make_config(root: str | Path) -> Config:
    return configure(Config(), root)
