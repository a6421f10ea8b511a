"""Run the example submissions through the hidden tests in seconds, not minutes.

``nbgrader autograde`` starts a fresh kernel for every submission and spends about 1.5 s before
the first cell (the kernel, numpy, matplotlib) plus its gradebook work; for the ~230 fixture
submissions of ``autograder/fixtures/`` that was most of ``make test``. This module runs the very
notebook nbgrader would run, cell by cell, and scores it with nbgrader's own rules:

* the submission with the instructor's locked cells put back (test cells with their hidden tests,
  read-only cells), as nbgrader's ``OverwriteCells`` does from the gradebook;
* ordinary cells tagged ``skip-when-grading`` left out, as ``preprocessors.ExecuteGradedCells``
  does;
* each code cell run in an IPython shell with ``NBGRADER_EXECUTION=autograde`` in the notebook's
  release folder (companion modules beside it), its stderr and error kept as outputs;
* nbgrader's ``IgnorePattern`` (the course's pattern) and ``utils.determine_grade`` decide each
  graded cell's score.

A process imports the libraries once; for each assignment it runs the solution cell by cell; every
other submission is the solution up to its first edited cell, so just before that cell a forked
child takes the state over and runs the rest of that submission. No submission sees another's
state, none pays for the imports, and the cells they share run once.
``tests/test_grading.py`` checks every fixture with this, grades a sample of the same submissions
with the real nbgrader, and requires the two to agree cell for cell.

Command line (for course authors writing fixtures)::

    python -m autograder.fixturecheck 03_bptt [05_gru ...] [--release release] [--json out.json]

prints, for each fixture, the test cells it fails and whether that is what the TOML promises.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

from autograder.course import GRADING_ENV, IGNORE_STDERR_PATTERN, REPO_ROOT

for _name, _value in GRADING_ENV.items():  # as in the grading kernels; before numpy loads BLAS
    os.environ.setdefault(_name, _value)

import nbformat  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from autograder.preprocessors import skipped  # noqa: E402
from autograder.submissions import (  # noqa: E402
    grade_id,
    is_solution,
    load_variants,
    submissions_for,
)

# What the notebooks import, imported once before forking (each child would pay ~1 s otherwise).
PRELOAD = ("numpy", "matplotlib", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
           "ipywidgets", "tqdm.auto", "rnncourse", "rnncourse.testing", "rnncourse.gradcheck",
           "rnncourse.gradflow", "rnncourse.live", "rnncourse.optim", "autograder.integrity",
           "autograder.reference")
SUBMISSION_TIMEOUT_S = 300
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def without_hidden_tests(code: str) -> str:
    """A test cell's code as the student sees it: the hidden-test region removed."""
    out, hidden = [], False
    for line in code.splitlines():
        if line.strip() == HIDDEN[0]:
            hidden = True
        elif line.strip() == HIDDEN[1]:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out) + "\n"


def graded_notebook(source_nb, submission_nb, *, hidden: bool = True):
    """The notebook nbgrader executes: the submission with the instructor's locked cells back.

    Every cell that carries a grade_id of the source notebook and is not a solution cell (test
    cells, read-only cells) gets the source notebook's type and text, hidden tests included
    (without them if ``hidden`` is false: what the visible tests alone catch); solution cells
    keep what the student wrote; cells the student added stay.
    """
    instructor = {grade_id(c): c for c in source_nb.cells if grade_id(c)}
    nb = copy.deepcopy(submission_nb)
    for cell in nb.cells:
        theirs = instructor.get(grade_id(cell))
        if theirs is None or is_solution(theirs):
            continue
        cell.cell_type = theirs.cell_type
        cell.source = theirs.source if hidden else without_hidden_tests(theirs.source)
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return nb


class _Runner:
    """Runs notebook cells in ``shell`` and scores them as nbgrader's autograde would."""

    def __init__(self, shell):
        from nbgrader.preprocessors import IgnorePattern

        self.shell = shell
        self.ignore = IgnorePattern(enabled=True, pattern=IGNORE_STDERR_PATTERN)

    def run(self, nb, start: int, scores: dict, errors: list) -> dict:
        """Run ``nb.cells[start:]``, adding to the scores and errors of the cells before;
        ``{"scores": {grade_id: [score, max_score]} of the autograded cells, "errors": [...]}``."""
        for index in range(start, len(nb.cells)):
            self.run_cell(nb.cells[index], index, scores, errors)
        return {"scores": scores, "errors": errors}

    def run_cell(self, cell, index: int, scores: dict, errors: list) -> None:
        from IPython.utils.capture import capture_output
        from nbgrader.utils import determine_grade, is_grade

        if cell.cell_type == "code" and not skipped(cell):
            with capture_output(stdout=True, stderr=True, display=True) as captured:
                result = self.shell.run_cell(cell.source, store_history=True)
            cell.outputs = []
            if captured.stdout:
                cell.outputs.append(nbformat.v4.new_output(
                    "stream", name="stdout", text=captured.stdout))
            if captured.stderr:
                cell.outputs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=captured.stderr))
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename=type(error).__name__, evalue=str(error), traceback=[]))
                errors.append(f"cell {index} ({grade_id(cell) or 'ungraded'}): "
                              f"{type(error).__name__}: {str(error)[:1000]}")
            elif result.result is not None:  # nbgrader reads a number here as partial credit
                data, _ = self.shell.display_formatter.format(result.result)
                cell.outputs.append(nbformat.v4.new_output(
                    "execute_result", data=data, execution_count=result.execution_count))
            self.ignore.preprocess_cell(cell, {}, index)
        if is_grade(cell) and not is_solution(cell):  # the autograded test cells
            score, max_score = determine_grade(cell)
            scores[grade_id(cell)] = [score, max_score]


def _same_cell(a, b) -> bool:
    return a.cell_type == b.cell_type and a.source == b.source and a.metadata == b.metadata


def _first_difference(nb, reference) -> int:
    """The index of the first cell of ``nb`` that differs from ``reference``'s."""
    for index, (ours, theirs) in enumerate(zip(nb.cells, reference.cells, strict=False)):
        if not _same_cell(ours, theirs):
            return index
    return min(len(nb.cells), len(reference.cells))


def _in_child(work, timeout: float) -> dict:
    """``work()`` in a forked child, whose state dies with it: its JSON-able result, or
    ``{"error": ...}`` if it raised, died or ran out of time."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        status = 0
        try:
            payload = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            payload, status = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(write_end, "w") as out:
            json.dump(payload, out)
        os._exit(status)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"error": f"timed out after {timeout:.0f} s"}
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": f"the process died (wait status {status})"}
    return json.loads(b"".join(chunks))


def _run_all(solution, others: dict, workdir: Path, shell, timeout: float) -> dict:
    """Every submission's result, sharing the work the solution does.

    The solution runs cell by cell. Every other submission is the solution up to its first
    differing cell ``k`` (a fixture edits one cell, the blank release every solution cell): just
    before the solution runs cell ``k``, a forked child takes over the state so far (and the
    scores of the cells before ``k``) and runs that submission's cells from ``k`` on. What runs,
    and in which state, is what a fresh kernel would run; the shared prefix runs once.
    """
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    runner = _Runner(shell)
    starts: dict[int, list] = {}
    for student, nb in others.items():
        starts.setdefault(_first_difference(nb, solution), []).append((student, nb))
    results, scores, errors = {}, {}, []
    for index in range(len(solution.cells) + 1):
        for student, nb in starts.get(index, []):
            started = time.monotonic()
            results[student] = _in_child(
                lambda nb=nb, index=index: runner.run(nb, index, dict(scores), list(errors)),
                timeout)
            results[student]["seconds"] = round(time.monotonic() - started, 3)
        if index < len(solution.cells):
            runner.run_cell(solution.cells[index], index, scores, errors)
    printed = [[index, "".join(o.get("text", "") for o in cell.get("outputs", [])
                               if o.get("name") == "stdout")]
               for index, cell in enumerate(solution.cells) if cell.cell_type == "code"]
    results["solution"] = {"scores": scores, "errors": errors,
                           "printed": [[i, text] for i, text in printed if text]}
    return results


class _Shell(InteractiveShell):
    """IPython's shell as a kernel runs it, minus the kernel."""

    def enable_gui(self, gui=None):  # %matplotlib inline: no event loop to hook
        pass

    # Only whether a cell raised counts here, and run_cell records that; formatting the traceback
    # for display or for the history (IPython's ultratb reads the source around every frame)
    # took 0.3-0.6 s per failing cell.
    def showtraceback(self, *args, **kwargs):
        pass

    def _format_exception_for_storage(self, *args, **kwargs):
        return {}


def _prepared_shell():
    """An IPython shell in this process, the notebooks' libraries imported, nothing run yet."""
    import importlib

    from traitlets.config import Config

    os.environ["NBGRADER_EXECUTION"] = "autograde"
    os.environ.setdefault("MPLBACKEND", "Agg")
    config = Config()
    config.HistoryManager.enabled = False  # no history thread and no SQLite file to fork
    shell = _Shell.instance(config=config)
    for module in PRELOAD:
        importlib.import_module(module)
    return shell


def check(assignment: str, source_root: Path, release_root: Path,
          students: list[str] | None = None, timeout: float = SUBMISSION_TIMEOUT_S,
          *, hidden: bool = True) -> dict:
    """``{student: {"scores": {grade_id: [score, max]}, "seconds": s} or {"error": text}}`` for
    the solution, the blank release and every fixture of ``assignment`` (or only ``students``);
    with ``hidden=False``, graded by the visible tests alone."""
    source_nb = nbformat.read(Path(source_root) / assignment / f"{assignment}.ipynb",
                              as_version=4)
    subs = submissions_for(assignment, Path(source_root), Path(release_root))
    workdir = Path(release_root).resolve() / assignment
    shell = _prepared_shell()
    graded = {student: graded_notebook(source_nb, nb, hidden=hidden)
              for student, nb in subs.items()
              if student == "solution" or students is None or student in students}
    solution = graded.pop("solution")
    # One child runs them all (and forks one grandchild per submission), so this process stays
    # as it was: check() can run again, for another assignment.
    results = _in_child(lambda: _run_all(solution, graded, workdir, shell, timeout),
                        timeout * (len(graded) + 1))
    if "error" in results:
        raise RuntimeError(f"fixturecheck of {assignment}: {results['error']}")
    return {student: results[student] for student in subs
            if students is None or student in students}


def visible_recall(assignment: str, source_root: Path = REPO_ROOT / "source",
                   release_root: Path = REPO_ROOT / "release") -> tuple[list[str], list[str]]:
    """``(flagged, missed)``: the buggy fixtures of ``assignment``'s graded functions whose own
    test cells the visible tests alone fail, and those only the hidden tests catch. A student who
    passes every visible test loses points only for the missed ones. Wrong answers to quiz
    questions (cells that define no function) are left out: a visible check of an answer would
    give it away (try each option until the check passes)."""
    bugs = [v for v in load_variants(assignment, generated=False)
            if v.kind == "bug" and v.cell not in quiz_cells(assignment)]
    results = check(assignment, source_root, release_root, [v.name for v in bugs], hidden=False)
    flagged, missed = [], []
    for v in bugs:
        scores = results[v.name].get("scores", {})
        failed = {g for g, (score, top) in scores.items() if score < top}
        (flagged if "error" in results[v.name] or failed & set(v.fails) else missed).append(
            v.name)
    return flagged, missed


def quiz_cells(assignment: str) -> set[str]:
    """Solution cells that answer a question (constants) rather than define a function."""
    from autograder.submissions import answer_cells

    return {cell for cell, _, functions in answer_cells(assignment) if not functions}


def recall_table(assignments: list[str]) -> str:
    """The README's table: per assignment, the share of buggy fixtures the visible tests flag."""
    lines = ["| assignment | buggy fixtures | flagged by the visible tests | share |",
             "|---|---:|---:|---:|"]
    for assignment in assignments:
        flagged, missed = visible_recall(assignment)
        total = len(flagged) + len(missed)
        lines.append(f"| {assignment} | {total} | {len(flagged)} | "
                     f"{100 * len(flagged) / max(total, 1):.0f} % |")
        if missed:
            print(f"{assignment}: only the hidden tests catch {', '.join(missed)}",
                  file=sys.stderr)
    return "\n".join(lines)


def _report(assignment: str, results: dict) -> int:
    """Print what each submission fails against what the fixtures promise; the count of misses."""
    expected = {v.name: set(v.fails) for v in load_variants(assignment)}
    solution = results.get("solution", {}).get("scores", {})
    expected["solution"] = set()
    expected["blank"] = {g for g, (_, top) in solution.items() if top}
    wrong = 0
    for student, result in results.items():
        if "error" in result:
            wrong += 1
            print(f"ERROR {student}: {result['error']}")
            continue
        failed = {g for g, (score, top) in result["scores"].items() if score < top}
        ok = failed == expected.get(student, failed)
        wrong += not ok
        took = f" ({result['seconds']:.1f} s)" if "seconds" in result else ""
        print(f"{'ok   ' if ok else 'WRONG'} {student}{took}: fails {sorted(failed) or 'nothing'}"
              + ("" if ok else f", the fixture says {sorted(expected[student])}"))
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="+", metavar="assignment")
    parser.add_argument("--source", type=Path, default=REPO_ROOT / "source")
    parser.add_argument("--release", type=Path, default=REPO_ROOT / "release")
    parser.add_argument("--students", nargs="*", help="only these submissions")
    parser.add_argument("--json", type=Path,
                        help="write {assignment: results} here as JSON instead of a report")
    parser.add_argument("--visible", action="store_true",
                        help="print the share of buggy fixtures the visible tests alone catch")
    args = parser.parse_args(argv)
    if args.visible:
        print(recall_table(args.assignments))
        return 0
    everything, wrong = {}, 0
    for assignment in args.assignments:
        started = time.perf_counter()
        results = check(assignment, args.source, args.release, args.students)
        everything[assignment] = results
        if not args.json:
            misses = _report(assignment, results)
            wrong += misses
            print(f"{len(results)} submissions of {assignment} in "
                  f"{time.perf_counter() - started:.1f} s; {misses} not as promised")
    if args.json:
        args.json.write_text(json.dumps(everything))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
