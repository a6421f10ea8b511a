"""The preprocessors the course adds to nbgrader, one per concern, in one module (as nbgrader keeps
its own in ``nbgrader.preprocessors``); :func:`autograder.config.configure` installs them.

* :class:`ExecuteGradedCells` (autograde): nbgrader's Execute minus the demonstration cells a
  grade does not depend on. An autograded notebook runs every cell, but only the solution and
  test cells decide the grade; training runs, animations and big figures only make grading slow.
  Ordinary code cells (no nbgrader metadata, so never a solution or a test) tagged
  ``skip-when-grading`` are left unexecuted under ``nbgrader autograde`` and ``nbgrader validate``
  (and JupyterLab's Validate button, through the Validator's own Execute, see the config), so the
  two always run the same cells: a definition a student puts in such a cell and uses in a graded
  one fails validation exactly as it fails grading. Each skipped cell gets one line of output
  saying so. In JupyterLab and nbval the cells run as usual. ``Execute.timeout`` and the other
  Execute settings apply unchanged.
* :class:`HideHiddenTests` (feedback): the hidden tests' source, and the tracebacks and output
  lines that quote them, removed from the feedback (nbgrader #917, #1363). What it keeps and why
  is in :mod:`autograder.feedback`, with the command that generates feedback.
* :class:`GradingNotes` (feedback): the submission's grading record (:mod:`autograder.intake`) at
  the top of the feedback.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import Execute, GetGrades, NbGraderPreprocessor
from traitlets import Integer, Unicode, default

from autograder.course import nbgrader_meta

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



# -- autograde and validate: the demonstration cells -----------------------------------------

SKIP_TAG = "skip-when-grading"
SKIP_NOTE = ("[not run when grading: a demonstration cell (tag skip-when-grading). Anything it "
             "defines is not available to the graded cells; define what they need in your "
             "answer cells.]\n")


def skipped(cell) -> bool:
    return (cell.get("cell_type") == "code" and not nbgrader_meta(cell)
            and SKIP_TAG in cell.get("metadata", {}).get("tags", []))


class ExecuteGradedCells(Execute):
    """Execute every cell except the tagged demonstration cells (see the module docstring), in a
    kernel that :class:`autograder.sandbox.SandboxedKernelManager` starts in the sandbox."""

    _assignment = ""

    def __init__(self, *args, **kwargs):
        from autograder.sandbox import SandboxedKernelManager

        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, *args, **kwargs):
        self._assignment = ((resources or {}).get("nbgrader") or {}).get("assignment", "")
        return super().preprocess(nb, resources, *args, **kwargs)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if self._assignment and km.has_trait("assignment"):
            km.assignment = self._assignment  # whose reference the sandbox gets
        return km

    def preprocess_cell(self, cell, resources, index):
        if skipped(cell):
            cell.outputs = [new_output("stream", name="stdout", text=SKIP_NOTE)]
            cell.execution_count = None
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
