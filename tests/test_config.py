"""The course's nbgrader settings that are easy to get subtly wrong."""

from __future__ import annotations

import re
import time

import pytest

from autograder.config import IGNORE_STDERR_PATTERN, make_config

NOISE = [
    "/tmp/ipykernel_1/2.py:9: RuntimeWarning: overflow encountered in exp\n"
    "  return 1 / (1 + np.exp(-z))\n",
    "<stdin>:10: DeprecationWarning: x is deprecated\n<stdin>:11: UserWarning: careful\n",
    "\r  0%|          | 0/3 [00:00<?, ?it/s]",
    "\r100%|██████████| 3/3 [00:00<00:00, 30615.36it/s]",
    "\r  0%|    | 0/3\r 33%|#   | 1/3\r100%|####| 3/3\n",
    "\n",
    "a warning",
]
NOT_NOISE = [
    "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad\n",
    "hello\n",
    "x Warning\nsome other line\n",
    "UserWarning: a\nAssertionError: wrong\n",
    "\r 50%|##  | 1/2 done\nwrong answer\n",
]


@pytest.mark.parametrize("text", NOISE)
def test_warnings_progress_bars_and_blank_lines_are_ignored(text):
    assert re.search(IGNORE_STDERR_PATTERN, text)


@pytest.mark.parametrize("text", NOT_NOISE)
def test_anything_else_on_stderr_still_counts(text):
    assert not re.search(IGNORE_STDERR_PATTERN, text)


def test_the_pattern_is_linear_on_hostile_output():
    for text in ["warn" * 100_000 + "\nX", "\r5%|" * 100_000 + "\nX", "warn\n" * 50_000 + "X"]:
        start = time.perf_counter()
        assert not re.search(IGNORE_STDERR_PATTERN, text)
        assert time.perf_counter() - start < 2.0  # quadratic backtracking would take minutes


def test_settings_that_protect_grading(tmp_path):
    c = make_config(tmp_path)
    assert c.OverwriteCells.add_missing_cells is True
    assert c.IgnorePattern.enabled is True
    assert c.Execute.timeout > 0
    assert c.CourseDirectory.db_url == f"sqlite:///{tmp_path.resolve() / 'gradebook.db'}"


def test_a_loaded_machine_does_not_zero_a_whole_submission(tmp_path):
    """nbgrader abandons a submission (every cell 0) when a cell's last output comes more than
    ``iopub_timeout`` seconds after the kernel's reply. nbclient's 4 s default was too short on
    the 2-core CI machine: two unrelated submissions scored 0 everywhere in one run; a cell printing
    50,000 lines reproduces it under load. The configured grader must wait longer."""
    from autograder.preprocessors import ExecuteGradedCells

    executor = ExecuteGradedCells(config=make_config(tmp_path))
    assert executor.raise_on_iopub_timeout  # nbgrader's setting: a late output fails everything
    assert executor.iopub_timeout >= 30
    assert 0 < executor.timeout  # the per-cell limit still bounds a cell
