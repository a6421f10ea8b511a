"""The generated ``course_layers.py`` of every assignment (autograder/companions.py): complete
(no undefined name: pyflakes' checks through ruff), and nothing in it that a student should write
or answer (no optional exercise, no quiz answer)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.companions import companion_text, optional_grade_ids
from autograder.course import ASSIGNMENTS, COMPANIONS, REPO_ROOT
from autograder.reference import notebook_path, solution_cells

BUILT_ON = [a for a in ASSIGNMENTS if COMPANIONS.get(a)]


def _text(assignment: str) -> str:
    return companion_text(REPO_ROOT / "source", COMPANIONS[assignment])


@pytest.mark.parametrize("assignment", BUILT_ON)
def test_companion_has_no_undefined_name(assignment, tmp_path):
    path = tmp_path / "course_layers.py"
    path.write_text(_text(assignment), encoding="utf-8")
    proc = subprocess.run([Path(sys.executable).parent / "ruff", "check", "--isolated",
                           "--select", "F", "--output-format", "concise", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _quiz_answers(assignment: str) -> set[str]:
    """Names a solution cell assigns without defining a function: quiz answers."""
    nb = json.loads(notebook_path(assignment).read_text(encoding="utf-8"))
    names = set()
    for _grade_id, code in solution_cells(nb):
        tree = ast.parse(code)
        if not any(isinstance(n, ast.FunctionDef | ast.ClassDef) for n in tree.body):
            names |= {t.id for n in tree.body if isinstance(n, ast.Assign)
                      for t in ast.walk(n.targets[0]) if isinstance(t, ast.Name)}
    return names


def _optional(assignment: str) -> set[str]:
    return optional_grade_ids(json.loads(notebook_path(assignment).read_text(encoding="utf-8")))


@pytest.mark.parametrize("assignment", BUILT_ON)
def test_companion_carries_no_optional_exercise_and_no_quiz_answer(assignment):
    defined = set()
    for node in ast.parse(_text(assignment)).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in ast.walk(node.targets[0]) if isinstance(t, ast.Name)}
    for earlier in COMPANIONS[assignment]:
        assert not defined & _quiz_answers(earlier), f"quiz answers of {earlier}"
        assert not defined & _optional(earlier), f"optional exercises of {earlier}"


def test_an_optional_exercise_exists_to_be_left_out():
    """08's char_lstm_loss is tagged optional (10's Task 5 is that loss with an embedding)."""
    assert "char_lstm_loss" in _optional("08_char_language_model")
    assert "def char_lstm_loss" not in _text("10_music_generation")
