"""``make grade`` started as an instructor starts it and stopped as an instructor stops it (Ctrl-C),
for the tests of a run's interruption (tests/test_intake.py, tests/test_dask.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grading import _command_env


def start_grading(course: Path, *args: str) -> subprocess.Popen:
    """``python -m autograder.grade --course COURSE ARGS`` in the course folder, output captured.
    With ``-X faulthandler``: SIGABRT makes it print every thread's stack."""
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "autograder.grade", "--course", str(course),
         *args], cwd=course, env=_command_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def ctrl_c(grade: subprocess.Popen, timeout: float = 60) -> str:
    """Send SIGINT and return the output once the run has ended; fail the test with every
    thread's stack if it has not ended within ``timeout`` seconds."""
    grade.send_signal(signal.SIGINT)
    try:
        output = grade.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        grade.send_signal(signal.SIGABRT)
        stacks = grade.communicate(timeout=30)[0]
        pytest.fail(f"make grade did not end {timeout:.0f} s after Ctrl-C:\n{stacks[-6000:]}")
    assert grade.returncode == 130 and "interrupted (Ctrl-C)" in output, output[-2000:]
    return output
