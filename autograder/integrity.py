"""What hidden tests and the grader do about submissions that tamper with the tests.

nbgrader runs a student's notebook and the instructor's tests in one kernel: nothing stops student
code from rebinding a helper the tests call, replacing ``numpy.allclose``, or swallowing the
exceptions that mark a failed test (NBGRADER_NOTES.md). The course defends in three layers:

1. Every hidden-test region starts with :func:`protect`, which restores the test environment in
   the notebook's namespace before the hidden checks run: ``np`` is numpy again, the helpers from
   ``rnncourse`` are re-imported from fresh copies of their modules, the functions and classes the
   instructor's helper cells define (code cells of the source notebook without nbgrader metadata)
   are defined again from the source, and IPython's exception display is reset. numpy itself
   cannot be reloaded, so its comparison functions are checked with canaries (two different
   arrays must not compare equal); a tampered numpy fails the test cell with a message that says
   so.
2. nbgrader itself marks a test cell failed from the kernel's reply status, so an exception that is
   hidden from the output (a custom exception handler, a silenced traceback) still fails the cell.
3. :func:`scan_submission` reads a submitted notebook's code for the tricks the first two layers
   cannot see (input transformers that rewrite later cells, event hooks, patching of modules or
   builtins); ``autograder.grade`` flags such submissions in the gradebook for a person to review.

This is a defence against the common tricks, not a sandbox: a determined attacker with the course's
source can go further, which is why flagged submissions go to a person.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from collections.abc import MutableMapping
from pathlib import Path

import numpy

_FRESH_MODULES = ("rnncourse.testing", "rnncourse.gradcheck")


class TamperedEnvironment(AssertionError):
    """The notebook changed something the tests rely on."""


def _numpy_canaries() -> None:
    a, b = numpy.array([0.0, 1.0]), numpy.array([0.0, 2.0])
    checks = {
        "numpy.allclose": lambda: not numpy.allclose(a, b) and numpy.allclose(a, a),
        "numpy.isclose": lambda: not numpy.all(numpy.isclose(a, b)),
        "numpy.array_equal": lambda: not numpy.array_equal(a, b) and numpy.array_equal(a, a),
        "numpy.abs": lambda: float(numpy.max(numpy.abs(a - b))) == 1.0,
        "numpy.testing.assert_allclose": lambda: _raises(numpy.testing.assert_allclose, a, b),
        "numpy.testing.assert_array_equal":
            lambda: _raises(numpy.testing.assert_array_equal, a, b),
    }
    for name, ok in checks.items():
        try:
            good = bool(ok())
        except Exception:  # noqa: BLE001 - a replaced function may raise anything
            good = False
        if not good:
            raise TamperedEnvironment(
                f"{name} does not behave like numpy's own any more: the notebook replaced it. "
                "The tests cannot be trusted in this kernel, so this test fails. Remove the code "
                "that assigns to numpy's functions and run the notebook again.")


def _raises(fn, *args) -> bool:
    try:
        fn(*args)
    except AssertionError:
        return True
    return False


def _helper_definitions(assignment: str):
    """``(name, code)`` of every function and class defined at the top level of the instructor's
    helper cells (code cells without nbgrader metadata) of the source notebook, in order."""
    from autograder.reference import notebook_path

    nb = json.loads(Path(notebook_path(assignment)).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or cell.get("metadata", {}).get("nbgrader"):
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            tree = ast.parse("\n".join(line for line in src.splitlines()
                                        if not line.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                module = ast.Module(body=[node], type_ignores=[])
                yield node.name, compile(module, f"<{assignment} helper cell>", "exec")


def protect(namespace: MutableMapping, assignment: str) -> None:
    """Restore the test environment in ``namespace`` (a notebook's globals); see the module doc."""
    _numpy_canaries()
    if "np" in namespace:
        namespace["np"] = numpy
    for name in _FRESH_MODULES:
        module = importlib.reload(importlib.import_module(name))
        for attr, value in vars(module).items():
            if attr in namespace and not attr.startswith("_") and callable(value):
                namespace[attr] = value
    for name, code in _helper_definitions(assignment):
        if name in namespace:  # defined by now: put the instructor's definition back
            exec(code, namespace)  # noqa: S102
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return
    shell.custom_exceptions = ()
    shell.__dict__.pop("showtraceback", None)
    shell.__dict__.pop("_showtraceback", None)


# --- static scan of a submission ------------------------------------------------------------------

_SUSPICIOUS = [
    (r"\binput_transformers_(?:post|cleanup)\b|\bast_transformers\b",
     "changes how later cells are read (input/AST transformers)"),
    (r"\bevents\s*\.\s*register\b|\bset_custom_exc\b|\bshowtraceback\b",
     "hooks into IPython's execution or error display"),
    (r"\b(?:np|numpy)(?:\s*\.\s*\w+)+\s*=(?!=)", "assigns to a numpy attribute"),
    (r"\bsetattr\s*\(\s*(?:np|numpy|builtins|__builtins__|rnncourse|autograder)\b",
     "patches a module with setattr"),
    (r"\bbuiltins\s*\.\s*\w+\s*=(?!=)|\b__builtins__\s*(?:\[|\.)", "patches Python's builtins"),
    (r"\bsys\s*\.\s*modules\b", "edits sys.modules"),
    (r"\b(?:autograder|rnncourse)(?:\s*\.\s*\w+)+\s*=(?!=)", "patches the course's test helpers"),
    (r"\bsys\s*\.\s*(?:settrace|setprofile|excepthook)\b", "installs a trace or exception hook"),
]


def scan_submission(path: Path) -> list[str]:
    """Reasons to have a person look at this submitted notebook (empty when nothing stands out)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = src if isinstance(src, str) else "".join(src)
        where = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i}"
        for pattern, why in _SUSPICIOUS:
            m = re.search(pattern, src)
            if m:
                found.append(f"{where}: {why} ({m.group(0).strip()[:60]!r})")
    return found
