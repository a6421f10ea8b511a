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
3. :func:`scan_notebook` reads a submitted notebook's code (parsed, not pattern-matched: a type
   annotation or any ordinary use of numpy is not flagged) for the tricks the first two layers
   cannot see (input transformers that rewrite later cells, event hooks, patching of modules or
   builtins, code run from strings, reading the reference solution the sandboxed kernel holds
   for the hidden tests); ``autograder.grade`` flags such submissions in the
   gradebook for a person to review, once per submission: a regrade of the same notebook keeps
   the reviewer's decision.

This is a defence against the common tricks inside the student's own kernel; what keeps that
kernel from everything else is the sandbox (:mod:`autograder.sandbox`).
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
from collections.abc import MutableMapping
from pathlib import Path

import numpy

from autograder.course import nbgrader_meta

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
        if cell["cell_type"] != "code" or nbgrader_meta(cell):
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
#
# The scan reads the code, not the text: each code cell is turned into Python the way IPython runs
# it (magics become get_ipython() calls) and parsed, and only what the code *does* counts. A type
# annotation (``h_all: np.ndarray = None``), a keyword argument (``dtype=np.float64``), a
# comparison or any other use of numpy is not an assignment to numpy, so it is not flagged.

# What rebinding a module's attributes means, per module (the alias names it is known by).
_MODULES = {
    "numpy": "assigns to a numpy attribute",
    "builtins": "patches Python's builtins",
    "rnncourse": "patches the course's test helpers",
    "autograder": "patches the course's test helpers",
}
_DEFAULT_ALIASES = {"np": "numpy", "numpy": "numpy", "builtins": "builtins",
                    "rnncourse": "rnncourse", "autograder": "autograder"}
# Names whose mere use changes how IPython runs or reports later cells.
_HOOKS = {
    "input_transformers_post": "changes how later cells are read (input/AST transformers)",
    "input_transformers_cleanup": "changes how later cells are read (input/AST transformers)",
    "ast_transformers": "changes how later cells are read (input/AST transformers)",
    "set_custom_exc": "hooks into IPython's execution or error display",
    "custom_exceptions": "hooks into IPython's execution or error display",
    "showtraceback": "hooks into IPython's execution or error display",
    "_showtraceback": "hooks into IPython's execution or error display",
    "showsyntaxerror": "hooks into IPython's execution or error display",
    "settrace": "installs a trace or exception hook",
    "setprofile": "installs a trace or exception hook",
    "excepthook": "installs a trace or exception hook",
    "addaudithook": "installs a trace or exception hook",
    "__builtins__": "patches Python's builtins",
}
_HOOK_WORDS = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in _HOOKS) + r")\b")
_RUNS_STRINGS = {"exec", "eval", "compile"}
# A graded kernel can read the reference solution (autograder/sandbox.py); a submission's own code
# has no reason to name it or to import the modules that load it.
_REFERENCE_WORDS = re.compile(r"/grading\b|RNNCOURSE_SOURCE|load_reference")
_REFERENCE_MODULES = {"autograder.reference", "autograder.hidden"}
_READS_REFERENCE = "reads the reference solution of the hidden tests"
_MUTATORS = {"pop", "popitem", "update", "setdefault", "clear", "__setitem__", "__delitem__"}


@functools.cache
def _transformer():
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def _python_of(cell_source: str) -> str:
    """A cell's source as the Python IPython runs (magics and shell escapes become calls)."""
    if not any(ch in cell_source for ch in "%!?"):
        return cell_source  # plain Python: nothing for IPython to transform
    return _transformer().transform_cell(cell_source)


def _root(node: ast.AST) -> ast.AST:
    """The innermost object of an attribute or subscript chain: ``np`` in ``np.a.b[0]``."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases
        self.found: list[tuple[str, ast.AST]] = []

    def _module_of(self, node: ast.AST) -> str | None:
        """The protected module an expression is rooted at (``vars(np)`` counts as ``np``)."""
        root = _root(node)
        if (isinstance(root, ast.Call) and isinstance(root.func, ast.Name)
                and root.func.id == "vars" and root.args):
            root = _root(root.args[0])
        if isinstance(root, ast.Name):
            return self.aliases.get(root.id)
        return None

    def _is_sys_modules(self, node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "modules"
                and isinstance(node.value, ast.Name) and node.value.id == "sys")

    def _target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._target(elt)
            return
        if not isinstance(target, ast.Attribute | ast.Subscript | ast.Starred):
            return  # rebinding a plain name changes nothing outside this notebook's namespace
        module = self._module_of(target)
        if module:
            self.found.append((_MODULES[module], target))

    # -- statements that write ---------------------------------------------------------------

    def visit_Assign(self, node):
        for target in node.targets:
            self._target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        # `h_all: np.ndarray = None` binds a plain name; only the target matters, never the
        # annotation
        self._target(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Delete(self, node):
        for target in node.targets:
            self._target(target)
        self.generic_visit(node)

    def visit_For(self, node):
        self._target(node.target)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node):
        if node.optional_vars is not None:
            self._target(node.optional_vars)
        self.generic_visit(node)

    # -- names and calls -----------------------------------------------------------------------

    def visit_Attribute(self, node):
        if node.attr in _HOOKS:
            self.found.append((_HOOKS[node.attr], node))
        elif node.attr == "register" and (
                (isinstance(node.value, ast.Attribute) and node.value.attr == "events")
                or (isinstance(node.value, ast.Name) and node.value.id == "events")):
            self.found.append(("hooks into IPython's execution or error display", node))
        elif self._is_sys_modules(node):
            self.found.append(("edits sys.modules", node))
        self.generic_visit(node)

    def visit_Compare(self, node):
        # `"torch" in sys.modules` only reads it
        if (len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn)
                and self._is_sys_modules(node.comparators[0])):
            self.visit(node.left)
            return
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id == "__builtins__":
            self.found.append((_HOOKS["__builtins__"], node))

    # -- the reference the hidden tests compare with (autograder/sandbox.py) --------------------

    def visit_Constant(self, node):
        if isinstance(node.value, str) and _REFERENCE_WORDS.search(node.value):
            self.found.append((_READS_REFERENCE, node))

    def visit_Import(self, node):
        if any(item.name in _REFERENCE_MODULES for item in node.names):
            self.found.append((_READS_REFERENCE, node))

    def visit_ImportFrom(self, node):
        if node.level or not node.module:
            return
        names = {f"{node.module}.{item.name}" for item in node.names} | {node.module}
        if names & _REFERENCE_MODULES:
            self.found.append((_READS_REFERENCE, node))

    def visit_Call(self, node):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("setattr", "delattr") and node.args and self._module_of(node.args[0]):
            self.found.append(("patches a module with setattr", node))
        if name in _RUNS_STRINGS or name == "__import__":
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    self._nested(arg.value)
                elif name in _RUNS_STRINGS:
                    self.found.append(("runs code built at run time (exec/eval/compile)", node))
        if isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic"):
            for arg in node.args[1:]:  # the magic's arguments and body are code or text
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    self._nested(arg.value)
        self.generic_visit(node)

    def _nested(self, code: str) -> None:
        try:
            tree = ast.parse(_python_of(code))
        except (SyntaxError, ValueError):
            match = _HOOK_WORDS.search(code)  # not Python (a %config line, say): the hook names
            if match:
                self.found.append((_HOOKS[match.group(0)], ast.Constant(match.group(0))))
            return
        inner = _Scanner(self.aliases)
        inner.visit(tree)
        self.found.extend(inner.found)


def _aliases(trees) -> dict[str, str]:
    """Every name the notebook binds to a protected module (``import numpy as xp``,
    ``from numpy import testing``, ``import rnncourse.testing as T``)."""
    aliases = dict(_DEFAULT_ALIASES)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for item in node.names:
                    top = item.name.split(".")[0]
                    if top in _MODULES:
                        aliases[(item.asname or item.name).split(".")[0]] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                top = node.module.split(".")[0]
                if top in _MODULES:
                    for item in node.names:
                        if item.name != "*":
                            aliases[item.asname or item.name] = top
    return aliases


def _cell_source(cell) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def scan_notebook(nb: dict, skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Reasons to have a person look at this notebook's code (empty when nothing stands out).

    ``skip``: grade_ids of cells nbgrader replaces with the instructor's version before it runs
    them (the locked test cells), so what a student wrote there never runs.
    """
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if grade_id and grade_id in skip:
            continue
        try:
            tree = ast.parse(_python_of(_cell_source(cell)))
        except (SyntaxError, ValueError):
            continue  # IPython refuses to run a cell that does not parse
        cells.append((grade_id or f"cell {i}", tree))
    aliases = _aliases(tree for _, tree in cells)
    found = []
    for where, tree in cells:
        scanner = _Scanner(aliases)
        scanner.visit(tree)
        seen = set()
        for why, node in scanner.found:
            if why in seen:
                continue
            seen.add(why)
            text = ast.unparse(node) if not isinstance(node, ast.Constant) else str(node.value)
            found.append(f"{where}: {why} ({text.strip()[:60]!r})")
    return found


def scan_submission(path: Path, skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """:func:`scan_notebook` of a notebook file (nothing for a file that is not a notebook)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return []
    return scan_notebook(nb, skip) if isinstance(nb, dict) else []
