"""The course's facts, at the bottom of ``autograder``: where it lives, its assignments, what the
grading kernels get. Every other module reads them from here; this one imports nothing of the
course's own, so no import circle can pass through it.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    "09_seq2seq_attention": ["02_forward_pass", "03_bptt", "05_gru"],
    "10_music_generation": ["02_forward_pass", "03_bptt", "06_lstm", "08_char_language_model"],
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


def nbgrader_meta(cell) -> dict:
    """The ``nbgrader`` metadata of a notebook cell (a dict or an nbformat node); {} if it has
    none or it is not a dict (a submitted notebook may hold anything). The one place the course
    reads nbgrader's cell metadata."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}
