"""Feedback students can learn from, without giving the hidden tests away.

``nbgrader generate_feedback`` renders each autograded notebook to HTML as it was graded: the test
cells with their hidden tests put back (nbgrader #917, #1363) and the full IPython tracebacks, which
quote the failing source lines, hidden ones included. :class:`HideHiddenTests` is an nbconvert
preprocessor that the course config (:func:`autograder.config.configure`) adds to nbgrader's
feedback pipeline, right after ``GetGrades``, so a plain ``nbgrader generate_feedback`` (or the
formgrader's button) applies it. In the notebook it renders, for every autograded test cell:

* the ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region of the source becomes one line,
  ``# hidden tests: not shown``; the visible tests stay as the student had them. Only locked
  cells (those nbgrader put back from the gradebook) are split: a line of a student's own cell
  that mentions the marker hides nothing;
* an error output keeps the exception name and message (the assertion message says what was wrong)
  and loses its traceback, which is replaced by the graded cell's id and score::

      Test cell test_softmax failed: 0 / 2 points.
      (The test's traceback is not shown: it would quote the hidden tests.)
      AssertionError: softmax(Z, axis=1) (rows sum to 1) differs from the expected value at ...

  Frames of the traceback that are in the student's own cells (an exception raised by their
  function) are kept, after the line "It went wrong in your code:";

* a test cell that lost points without raising (e.g. it wrote to stderr) gets a note saying so.

In every cell, any line of output (text, tracebacks of the student's own cells, HTML) that
contains a line of a hidden test is replaced by ``[hidden test line removed]``, so a student's code
that printed the test calling it (``inspect.stack()``) shows nothing either. Lines that also occur
outside the hidden regions (``)``, ``else:``, a visible check repeated in the hidden part) are not
secret and are left alone. Images and other binary outputs are not inspected: a student who runs
code during grading can always encode what they read; hidden tests are a deterrent, not a vault.

:func:`generate` runs ``nbgrader generate_feedback`` for an assignment the way this course needs it:

* always with ``--force``. Without it nbgrader skips every student whose ``feedback/`` folder
  exists, so after a regrade (a re-run of autograde, or a manual grade in the formgrader) the old
  feedback, with the old scores, stays in place (nbgrader #1201; only the web API forces);
* with ``<notebook>.html`` added to ``CourseDirectory.ignore``. nbgrader copies every non-notebook
  file of the autograded submission into the feedback folder before it renders the notebook; a
  student who handed in ``02_forward_pass.html`` (File > Save and Export as HTML) gets that file
  copied read-only (autograded files are 444) exactly where the feedback is written, and the write
  fails with a permission error for every user but root, so no feedback is produced for them
  (nbgrader #1211). Ignoring those names leaves the student's own export out of the feedback folder.

:class:`GradingNotes` (also in the course's feedback pipeline) puts the notes of the
submission's grading record at the top (``make grade`` writes it, :mod:`autograder.intake`):
which notebook was graded, what was normalized, outputs removed, the late penalty, a flag for
review, and, when the latest submission could not be graded, why, and that the feedback is the
previous submission's. :func:`generate` also writes a page with the reason for each submission
``make grade`` could not grade at all.

Instructors who call plain ``nbgrader generate_feedback`` get the hidden tests removed (the
preprocessor is in the config) but should pass ``--force`` after any regrade themselves.
"""

from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor
from traitlets import Integer, Unicode, default

HIDDEN_NOTE = "# hidden tests: not shown"
REMOVED_LINE = "[hidden test line removed]"
NO_TRACEBACK = "(The test's traceback is not shown: it would quote the hidden tests.)"
# A hidden line at least this long is looked for inside output lines (a traceback line is the
# source line behind a line number and an arrow); shorter ones only as a whole output line, so
# that a hidden `x = 1` does not blank every output line that happens to contain it.
MIN_SUBSTRING = 8

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The header of a traceback frame in a notebook cell: "Cell In[12], line 3" (IPython 8+) or
# "Input In [12], in <cell line: 3>()" (IPython 7.x).
_CELL_FRAME = re.compile(r"\s*(?:Cell In\[|Input In \[)(\d+)\]")


def _is_test_cell(cell) -> bool:
    """An autograded test cell: graded, and not an answer the student writes."""
    return bool(utils.is_grade(cell)) and not utils.is_solution(cell)


def _points(value) -> str:
    return f"{float(value):g}"


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests from the notebook that ``generate_feedback`` renders (see module doc).

    The delimiters default to ``ClearHiddenTests``'s, so a course that changed them there need
    not repeat itself.
    """

    begin_test_delimeter = Unicode(help="Marks the start of a hidden test region").tag(config=True)
    end_test_delimeter = Unicode(help="Marks the end of a hidden test region").tag(config=True)
    note = Unicode(HIDDEN_NOTE, help="Shown instead of a hidden test region").tag(config=True)
    min_substring = Integer(
        MIN_SUBSTRING, help="Hidden lines this long are removed wherever they occur in an output"
    ).tag(config=True)

    # Filled in by preprocess(): the hidden lines that occur nowhere else in the notebook.
    _secret: frozenset[str] = frozenset()
    _long_secrets: tuple[str, ...] = ()

    @default("begin_test_delimeter")
    def _default_begin(self):
        return self.config.ClearHiddenTests.get("begin_test_delimeter", "BEGIN HIDDEN TESTS")

    @default("end_test_delimeter")
    def _default_end(self):
        return self.config.ClearHiddenTests.get("end_test_delimeter", "END HIDDEN TESTS")

    # -- source ---------------------------------------------------------------------------------

    def split_hidden(self, source: str) -> tuple[str, list[str]]:
        """``(source with each hidden region replaced by the note, the hidden lines)``."""
        kept, hidden, inside = [], [], False
        for line in source.split("\n"):
            # nbgrader refused nested or unterminated regions when it made the assignment; should
            # one get here anyway, everything from a BEGIN to the next END (or the end of the
            # cell) is hidden, never shown.
            if self.begin_test_delimeter in line:
                if not inside:
                    indent = line[: len(line) - len(line.lstrip())]
                    kept.append(indent + self.note)
                inside = True
            elif self.end_test_delimeter in line:
                inside = False
            elif inside:
                hidden.append(line)
            else:
                kept.append(line)
        return "\n".join(kept), hidden

    # -- outputs --------------------------------------------------------------------------------

    def _leaks(self, line: str) -> bool:
        plain = _ANSI.sub("", line).strip()
        if not plain:
            return False
        for form in {plain, html.unescape(plain)}:  # text/html outputs escape quotes and <>
            if form in self._secret or any(s in form for s in self._long_secrets):
                return True
        return False

    def scrub(self, text: str) -> str:
        """``text`` with every line that quotes a hidden test replaced by a marker."""
        if not self._secret or not text:
            return text
        lines = text.split("\n")
        return "\n".join(REMOVED_LINE if self._leaks(line) else line for line in lines)

    def _scrub_output(self, output) -> None:
        kind = output.get("output_type")
        if kind == "stream":
            output["text"] = self.scrub(output.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            data = output.get("data", {})
            for mime in list(data):
                if mime.startswith("text/"):
                    value = data[mime]
                    text = "".join(value) if isinstance(value, list) else value
                    data[mime] = self.scrub(text)
        elif kind == "error":
            output["evalue"] = self.scrub(output.get("evalue", ""))
            output["traceback"] = [self.scrub(t) for t in output.get("traceback", [])]

    def _your_frames(self, cell, traceback: list[str]) -> list[str]:
        """The frames of a traceback that run the student's own cells (not this test cell, not
        a library file, not the reference solution), hidden lines scrubbed."""
        frames = []
        for chunk in traceback:
            m = _CELL_FRAME.match(_ANSI.sub("", chunk))
            if m and int(m.group(1)) != cell.get("execution_count"):
                frames.append(self.scrub(chunk))
        return frames

    def _test_cell_outputs(self, cell) -> None:
        meta = cell.metadata.nbgrader
        grade_id = meta.get("grade_id", "?")
        score, points = meta.get("score"), meta.get("points")
        known = score is not None and points is not None
        lost = known and float(score) < float(points)
        if not known:
            verdict = f"Test cell {grade_id} failed."
        elif lost:
            verdict = f"Test cell {grade_id} failed: {_points(score)} / {_points(points)} points."
        else:  # a grader gave the points by hand although the test raised
            verdict = f"Test cell {grade_id}: {_points(score)} / {_points(points)} points."
        errors = 0
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                self._scrub_output(output)
                continue
            errors += 1
            ename = self.scrub(output.get("ename", "Error"))
            evalue = self.scrub(output.get("evalue", ""))
            yours = self._your_frames(cell, output.get("traceback", []))
            output["ename"], output["evalue"] = ename, evalue
            output["traceback"] = [
                verdict,
                NO_TRACEBACK + (" It went wrong in your code:" if yours else ""),
                *yours,
                f"\x1b[0;31m{ename}\x1b[0m: {evalue}" if evalue else f"\x1b[0;31m{ename}\x1b[0m",
            ]
        if lost and not errors:
            cell.setdefault("outputs", []).append(new_output(
                "stream", name="stdout",
                text=f"{verdict} It raised no error: a test cell also scores 0 when it writes to "
                "stderr or is interrupted.\n",
            ))

    # -- nbconvert ------------------------------------------------------------------------------

    def preprocess(self, nb, resources):
        hidden, public = set(), set()
        for cell in nb.cells:
            # Hidden tests exist only in the cells nbgrader put back from the gradebook, the
            # locked ones; a student's own line that mentions the marker hides nothing.
            if utils.is_locked(cell):
                source, lines = self.split_hidden(cell.source)
            else:
                source, lines = cell.source, []
            if lines:
                cell.source = source
                hidden.update(line.strip() for line in lines)
            public.update(line.strip() for line in source.split("\n"))
        # Lines that occur outside the hidden regions as well are not secret.
        self._secret = frozenset(line for line in hidden - public if line)
        self._long_secrets = tuple(line for line in self._secret if len(line) >= self.min_substring)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if _is_test_cell(cell):
                self._test_cell_outputs(cell)
            else:
                for output in cell.get("outputs", []):
                    self._scrub_output(output)
        return nb, resources


class GradingNotes(NbGraderPreprocessor):
    """Put the notes of the submission's grading record (``make grade``, see
    :mod:`autograder.intake`) at the top of the feedback: which notebook was graded, what was
    normalized, outputs removed, the late penalty, a flag for review, and, when the latest
    submission could not be graded, why, and that this feedback is the previous submission's."""

    def preprocess(self, nb, resources):
        from autograder.intake import read_record

        info = resources.get("nbgrader", {})
        root = self.config.CourseDirectory.get("root") or os.getcwd()
        record = read_record(Path(root), info.get("student", ""), info.get("assignment", ""))
        if record:
            cell = notes_cell(record)
            if cell is not None:
                nb.cells.insert(0, cell)
        return nb, resources


def notes_items(record: dict) -> list[str]:
    """The lines of a grading record shown to the student (each text as the summary has it)."""
    items = []
    if record.get("status") != "graded" and record.get("reason"):
        items.append("Your latest submission could not be graded: " + record["reason"])
    items += list(record.get("notes") or [])
    return items


def notes_html(record: dict) -> str:
    items = notes_items(record)
    if not items:
        return ""
    lis = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return ('<div class="grading-notes" style="border: 1px solid #d9a400; background: #fff8e1; '
            'padding: 0.5em 1em; margin: 0.5em 0 1em 0;">'
            f"<strong>Grading notes</strong><ul>{lis}</ul></div>")


def notes_cell(record: dict):
    from nbformat.v4 import new_markdown_cell

    text = notes_html(record)
    return new_markdown_cell(text) if text else None


def feedback_preprocessors() -> list:
    """nbgrader's feedback preprocessors with :class:`HideHiddenTests` after ``GetGrades`` (it
    needs the scores ``GetGrades`` writes into the cells' metadata) and :class:`GradingNotes`."""
    return [GetGrades, HideHiddenTests, GradingNotes, CSSHTMLHeaderPreprocessor]


# -- running nbgrader ------------------------------------------------------------------------------


def feedback_args(course_root: Path, assignment: str, student: str | None = None) -> list[str]:
    """The ``nbgrader`` arguments :func:`generate` runs: ``generate_feedback <assignment> --force``
    and ``--CourseDirectory.ignore`` items, the course's own list plus ``<notebook>.html`` for each
    notebook of ``assignment`` (the names the feedback is written to; nbgrader #1211)."""
    from nbgrader.coursedir import CourseDirectory

    from autograder.export import load_config

    ignore = list(CourseDirectory(config=load_config(course_root)).ignore)
    for folder in ("source", "release"):
        for nb in sorted((Path(course_root) / folder / assignment).glob("*.ipynb")):
            if f"{nb.stem}.html" not in ignore:
                ignore.append(f"{nb.stem}.html")
    args = ["generate_feedback", assignment, "--force"]
    args += [f"--CourseDirectory.ignore={item}" for item in ignore]
    # one argument, so that an id such as "-ab" is not read as an option
    return args + ([f"--student={student}"] if student else [])


NOT_GRADED_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 50em; margin: 2em auto;">
<h1>{title}</h1>
{notes}
</body></html>
"""


def write_not_graded(course_root: Path, assignment: str, student: str, record: dict) -> list[Path]:
    """A feedback page for a submission that could not be graded and has no autograded notebook:
    the reason, for each notebook of the assignment. ``timestamp.txt`` and
    ``submission_secret.txt`` of the submission go beside it, as nbgrader's own feedback has them,
    so that ``nbgrader release_feedback`` can deliver it."""
    import shutil

    root = Path(course_root)
    names = sorted(p.stem for p in (root / "source" / assignment).glob("*.ipynb")) or [assignment]
    folder = root / "feedback" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for name in names:
        page = folder / f"{name}.html"
        if page.exists():
            page.chmod(0o644)
        page.write_text(NOT_GRADED_PAGE.format(
            title=html.escape(f"{assignment} / {name}: not graded"), notes=notes_html(record)),
            encoding="utf-8")
        pages.append(page)
    for extra in ("timestamp.txt", "submission_secret.txt"):
        src = root / "submitted" / student / assignment / extra
        if src.is_file():
            shutil.copyfile(src, folder / extra)
    return pages


def generate(course_root: Path, assignment: str, student: str | None = None) -> dict[str, Path]:
    """``nbgrader generate_feedback`` for ``assignment`` (one ``student`` or all of them), with
    :func:`feedback_args`, and a page with the reason for every submission ``make grade`` could
    not grade that has no autograded notebook (:func:`write_not_graded`).

    Returns ``{student: feedback HTML}``; raises if nbgrader fails or a feedback file is missing.
    """
    from autograder.grading import nbgrader
    from autograder.intake import read_records

    root = Path(course_root)
    if student is None:
        graded = sorted((root / "autograded").glob(f"*/{assignment}/*.ipynb"))
    else:  # not a pattern: the id is a folder name, whatever characters it has
        graded = sorted((root / "autograded" / student / assignment).glob("*.ipynb"))
    out, missing, log = {}, [], ""
    if graded:
        proc = nbgrader(root, *feedback_args(root, assignment, student))
        log = proc.stderr
        if proc.returncode != 0:
            raise RuntimeError(f"generate_feedback {assignment} failed:\n{proc.stderr[-4000:]}")
    for nb in graded:
        name = nb.parent.parent.name
        page = root / "feedback" / name / assignment / f"{nb.stem}.html"
        if page.is_file():
            out[name] = page
        else:
            missing.append(str(page))
    if missing:
        raise RuntimeError(f"no feedback in {missing}; nbgrader said:\n{log[-4000:]}")
    for (who, which), record in read_records(root).items():
        if which != assignment or (student is not None and who != student) or who in out:
            continue
        if record.get("status") != "graded":
            out[who] = write_not_graded(root, assignment, who, record)[0]
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m autograder.feedback",
        description="Feedback HTML without hidden tests for every autograded student.",
    )
    parser.add_argument("assignment")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder")
    parser.add_argument("--student", help="only this student")
    args = parser.parse_args(argv)
    written = generate(args.course, args.assignment, args.student)
    for student, page in written.items():
        print(f"{student}: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
