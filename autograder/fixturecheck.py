"""Run the example submissions through the hidden tests in seconds, not minutes.

``nbgrader autograde`` starts a fresh kernel for every submission and spends about 1.5 s before
the first cell (the kernel, numpy, matplotlib) plus its gradebook work; for the ~230 fixture
submissions of ``autograder/fixtures/`` that was most of ``make test``. This module runs the very
notebook nbgrader would run, cell by cell, and scores it with nbgrader's own rules:

* the submission with the instructor's locked cells put back (test cells with their hidden tests,
  read-only cells), as nbgrader's ``OverwriteCells`` does from the gradebook;
* ordinary cells tagged ``skip-when-grading`` left out, as ``autograder.execute`` does;
* each code cell run in an IPython shell with ``NBGRADER_EXECUTION=autograde`` in the notebook's
  release folder (companion modules beside it), its stderr and error kept as outputs;
* nbgrader's ``IgnorePattern`` (the course's pattern) and ``utils.determine_grade`` decide each
  graded cell's score.

Every submission runs in a child forked from one process per assignment that has already
imported the libraries, so no submission sees another's state and none pays for the imports.
``tests/test_grading.py`` grades a sample of the same submissions with the real nbgrader and
checks the two agree cell for cell; ``tests/test_fixtures.py`` checks every fixture with this.

Command line (for course authors writing fixtures)::

    python -m autograder.fixturecheck 03_bptt [--release release] [--json out.json]

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

from autograder.config import GRADING_ENV, IGNORE_STDERR_PATTERN, REPO_ROOT

for _name, _value in GRADING_ENV.items():  # as in the grading kernels; before numpy loads BLAS
    os.environ.setdefault(_name, _value)

import nbformat  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from autograder.execute import skipped  # noqa: E402
from autograder.submissions import load_variants, submissions_for  # noqa: E402

# What the notebooks import, imported once before forking (each child would pay ~1 s otherwise).
PRELOAD = ("numpy", "matplotlib", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
           "ipywidgets", "tqdm.auto", "rnncourse", "rnncourse.testing", "rnncourse.gradcheck",
           "rnncourse.gradflow", "rnncourse.live", "rnncourse.optim", "autograder.integrity",
           "autograder.reference")
SUBMISSION_TIMEOUT_S = 300


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def graded_notebook(source_nb, submission_nb):
    """The notebook nbgrader executes: the submission with the instructor's locked cells back.

    Every cell that carries a grade_id of the source notebook and is not a solution cell (test
    cells, read-only cells) gets the source notebook's type and text, hidden tests included;
    solution cells keep what the student wrote; cells the student added stay.
    """
    instructor = {_meta(c)["grade_id"]: c for c in source_nb.cells if _meta(c).get("grade_id")}
    nb = copy.deepcopy(submission_nb)
    for cell in nb.cells:
        theirs = instructor.get(_meta(cell).get("grade_id"))
        if theirs is None or _meta(theirs).get("solution"):
            continue
        cell.cell_type = theirs.cell_type
        cell.source = theirs.source
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return nb


def _execute(nb, workdir: Path, shell) -> dict:
    """Run ``nb`` in ``shell``: ``{"scores": {grade_id: [score, max_score]} of its autograded
    cells, "errors": [the cells that raised, and what]}``."""
    from IPython.utils.capture import capture_output
    from nbgrader.preprocessors import IgnorePattern
    from nbgrader.utils import determine_grade, is_grade, is_solution

    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    ignore = IgnorePattern(enabled=True, pattern=IGNORE_STDERR_PATTERN)
    scores, errors = {}, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not skipped(cell):
            with capture_output(stdout=True, stderr=True, display=True) as captured:
                result = shell.run_cell(cell.source, store_history=True)
            cell.outputs = []
            if captured.stderr:
                cell.outputs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=captured.stderr))
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename=type(error).__name__, evalue=str(error), traceback=[]))
                errors.append(f"cell {index} ({_meta(cell).get('grade_id', 'ungraded')}): "
                              f"{type(error).__name__}: {str(error)[:200]}")
            elif result.result is not None:  # nbgrader reads a number here as partial credit
                data, _ = shell.display_formatter.format(result.result)
                cell.outputs.append(nbformat.v4.new_output(
                    "execute_result", data=data, execution_count=result.execution_count))
            ignore.preprocess_cell(cell, {}, index)
        if is_grade(cell) and not is_solution(cell):  # the autograded test cells
            score, max_score = determine_grade(cell)
            scores[_meta(cell)["grade_id"]] = [score, max_score]
    return {"scores": scores, "errors": errors}


def _fork_and_run(nb, workdir: Path, shell, timeout: float) -> dict:
    """``_execute`` in a forked child; the child's state dies with it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        status = 0
        try:
            payload = _execute(nb, workdir, shell)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            payload, status = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(write_end, "w") as out:
            json.dump(payload, out)
        os._exit(status)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end) as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(0.0, left))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"error": f"timed out after {timeout:.0f} s"}
            chunk = pipe.read()
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": f"the submission's process died (wait status {status})"}
    return json.loads("".join(chunks))


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
          students: list[str] | None = None, timeout: float = SUBMISSION_TIMEOUT_S) -> dict:
    """``{student: {"scores": {grade_id: [score, max]}} or {"error": text}}`` for the
    solution, the blank release and every fixture of ``assignment`` (or only ``students``)."""
    source_nb = nbformat.read(Path(source_root) / assignment / f"{assignment}.ipynb",
                              as_version=4)
    subs = submissions_for(assignment, Path(source_root), Path(release_root))
    workdir = Path(release_root).resolve() / assignment
    shell = _prepared_shell()
    here = os.getcwd()
    try:
        return {student: _fork_and_run(graded_notebook(source_nb, nb), workdir, shell, timeout)
                for student, nb in subs.items() if students is None or student in students}
    finally:
        os.chdir(here)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--source", type=Path, default=REPO_ROOT / "source")
    parser.add_argument("--release", type=Path, default=REPO_ROOT / "release")
    parser.add_argument("--students", nargs="*", help="only these submissions")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = check(args.assignment, args.source, args.release, args.students)
    if args.json:
        args.json.write_text(json.dumps(results))
        return 0
    expected = {v.name: set(v.fails) for v in load_variants(args.assignment)}
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
        print(f"{'ok   ' if ok else 'WRONG'} {student}: fails {sorted(failed) or 'nothing'}"
              + ("" if ok else f", the fixture says {sorted(expected[student])}"))
    print(f"{len(results)} submissions of {args.assignment} in "
          f"{time.perf_counter() - started:.1f} s; {wrong} not as promised")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
