"""The instructor's reference implementations, read from the source notebooks.

Each function a student writes has exactly one reference: the ``### BEGIN SOLUTION`` region of its
cell in ``source/<assignment>/<assignment>.ipynb``. Hidden tests, the PyTorch cross-checks in
``tests/`` and the benchmarks all load it from there with :func:`load_reference`, so there is no
second copy to drift. None of this ships in ``release/``: the release has no solutions to read.

Only solution cells (nbgrader ``solution: true``, ``grade: false``) are executed, in notebook
order, in a fresh module whose namespace starts with ``np`` and with the functions the assignment
imports from earlier ones (its ``course_layers``, see companions.py), taken from their references.
They must be definitions only (``def``, ``class``, imports, plain assignments) so that loading a
reference never runs a training loop or prints anything.
"""

from __future__ import annotations

import ast
import json
import os
import types
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import numpy as np

from autograder.course import COMPANIONS, REPO_ROOT, nbgrader_meta

_ALLOWED = (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)
_cache: dict[tuple[Path, int], types.ModuleType] = {}


def source_dir() -> Path:
    """Where the instructor notebooks live (``$RNNCOURSE_SOURCE`` overrides the repo's)."""
    return Path(os.environ.get("RNNCOURSE_SOURCE", REPO_ROOT / "source"))


def notebook_path(assignment: str) -> Path:
    folder = source_dir() / assignment
    path = folder / f"{assignment}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"no source notebook for assignment {assignment!r} at {path}")
    return path


def _solution_only(cell: dict) -> bool:
    meta = nbgrader_meta(cell)
    return cell["cell_type"] == "code" and bool(meta.get("solution")) and not meta.get("grade")


def solution_cells(nb: dict) -> Iterator[tuple[str, str]]:
    """Yield ``(grade_id, source)`` of every solution-only code cell, in order."""
    for cell in nb["cells"]:
        if _solution_only(cell):
            src = cell["source"]
            src = "".join(src) if isinstance(src, list) else src
            yield nbgrader_meta(cell).get("grade_id", "?"), src


def write_kernel_source(assignment: str, dest: Path) -> None:
    """Write ``dest/<a>/<a>.ipynb`` for ``assignment`` and for every earlier assignment its
    reference loads (COMPANIONS, transitively, as :func:`load_reference` follows them): each
    source notebook reduced to what :func:`load_reference` and
    :func:`autograder.integrity.protect` read (the solution code cells and the instructor's helper
    cells). A sandboxed grading kernel gets this folder as its ``$RNNCOURSE_SOURCE``
    (autograder/sandbox.py): the reference without the tests, the hidden tests, the model answers
    of written questions or any other assignment."""
    needed = [assignment]
    for a in needed:
        needed += [e for e in COMPANIONS.get(a, []) if e not in needed]
    for assignment in needed:
        nb = json.loads(notebook_path(assignment).read_text(encoding="utf-8"))
        keep = [cell for cell in nb["cells"] if _solution_only(cell) or (
            cell["cell_type"] == "code" and not nbgrader_meta(cell))]
        folder = Path(dest) / assignment
        folder.mkdir(parents=True, exist_ok=True)
        reduced = {**nb, "cells": [{**c, "outputs": [], "execution_count": None} for c in keep]}
        (folder / f"{assignment}.ipynb").write_text(json.dumps(reduced), encoding="utf-8")


def load_reference(assignment: str) -> types.ModuleType:
    """Return a module holding the reference solution of ``assignment``.

    The result is cached per notebook modification time, so hidden tests may call this in every
    test cell without re-reading the notebook.
    """
    path = notebook_path(assignment)
    key = (path, path.stat().st_mtime_ns)
    if key in _cache:
        return _cache[key]
    nb = json.loads(path.read_text(encoding="utf-8"))
    module = types.ModuleType(f"reference_{assignment}")
    module.__file__ = str(path)
    module.__dict__["np"] = np
    for earlier in COMPANIONS.get(assignment, []):
        previous = load_reference(earlier)
        module.__dict__.update(
            (name, value) for name, value in vars(previous).items()
            if isinstance(value, types.FunctionType | type) and value.__module__ != "builtins"
        )
    for grade_id, src in solution_cells(nb):
        tree = ast.parse(src, filename=f"{path.name}:{grade_id}")
        for node in tree.body:
            if not isinstance(node, _ALLOWED):
                raise ValueError(
                    f"solution cell {grade_id!r} of {path.name} has a top-level "
                    f"{type(node).__name__} (line {node.lineno}); reference cells may only "
                    "define functions, classes, imports and constants"
                )
        exec(compile(tree, f"{path.name}:{grade_id}", "exec"), module.__dict__)
    _cache[key] = module
    return module


def substituted(namespace: MutableMapping, reference: types.ModuleType, *names: str):
    """Temporarily replace ``names`` in a student's namespace with the reference versions.

    A hidden test of ``rnn_forward`` runs the student's loop with the *reference* cell, so a bug
    in ``rnn_cell_forward`` costs the points of ``rnn_cell_forward`` only, not both. A context
    manager: :func:`rnncourse.testing.replaced` with the reference's functions.
    """
    from rnncourse.testing import replaced

    return replaced(namespace, **{name: getattr(reference, name) for name in names})
