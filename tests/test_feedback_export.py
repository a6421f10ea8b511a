"""Feedback without the hidden tests, and the grade export, on a small real course.

One throw-away course of assignment 02_forward_pass is generated and autograded once for this
module with four submissions: the solution, the blank release and two fixture bugs -
``exercise_1_in_log10``, which fails test_exercise_1 inside its hidden tests (so nbgrader's
traceback quotes a hidden line), and ``rnn_cell_wrong_transpose``, which fails the visible part of
test_rnn_cell_forward. Every nbgrader step is the real command line with the course's config.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder import feedback as fb
from autograder import preprocessors as pp
from autograder.config import REPO_ROOT
from autograder.grading import (
    CONFIG_TEMPLATE,
    autograde,
    generate,
    make_course,
    nbgrader,
    read_scores,
    totals,
)
from autograder.submissions import (
    load_variants,
    solution_submission,
    variant_submission,
    write_submission,
)

A = "02_forward_pass"
BUG_HIDDEN = "exercise_1_in_log10"  # fails in the hidden region of test_exercise_1
BUG_VISIBLE = "rnn_cell_wrong_transpose"  # fails the visible tests of test_rnn_cell_forward
BUGS = (BUG_HIDDEN, BUG_VISIBLE)
STUDENTS = ("solution", "blank", *BUGS)
BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

pytestmark = pytest.mark.grading


# -- helpers ---------------------------------------------------------------------------------------


class _Text(HTMLParser):
    """The text a reader sees: every text node outside <style> and <script>, entities decoded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def norm(text: str) -> str:
    """Whitespace-insensitive form: syntax highlighting splits a line into many <span>s."""
    return " ".join(text.split())


def html_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return norm("".join(parser.parts))


def secret_lines(source_nb: Path) -> set[str]:
    """Every non-blank line (stripped) between the hidden-test markers of the source notebook,
    except lines that also occur outside any hidden region (in markdown, visible tests or the
    solution code): those are public, so finding them in the feedback proves nothing (e.g. a
    hidden `raise AssertionError("cache must be ...")` repeating a visible one). No line is dropped
    for being short: what remains is specific (the shortest in 02_forward_pass has 13 characters),
    and a short line that matched by chance would fail the test, not weaken it."""
    inside, outside = set(), set()
    for cell in nbformat.read(source_nb, as_version=4).cells:
        hidden = False
        for line in cell.source.split("\n"):
            if BEGIN in line:
                hidden = True
            elif END in line:
                hidden = False
            else:
                (inside if hidden else outside).add(line.strip())
    return {line for line in inside - outside if line}


def leaked(text: str, secrets: set[str]) -> list[str]:
    return sorted(line for line in secrets if norm(line) in text)


def graded_test_cells(nb_path: Path) -> dict[str, dict]:
    nb = nbformat.read(nb_path, as_version=4)
    return {
        c.metadata.nbgrader.grade_id: c for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")
    }


def copy_course(course: Path, dest: Path, students, *, with_feedback=False, extra_config=""):
    """A second course folder sharing the graded state of ``students`` (gradebook included)."""
    dest.mkdir(parents=True)
    shutil.copy2(course / "gradebook.db", dest / "gradebook.db")
    shutil.copytree(course / "source" / A, dest / "source" / A)
    for student in students:
        shutil.copytree(course / "autograded" / student, dest / "autograded" / student)
        if with_feedback:
            shutil.copytree(course / "feedback" / student, dest / "feedback" / student)
    (dest / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(root=str(dest)) + extra_config)
    return dest


def unprivileged_prefix() -> list[str] | None:
    """A command prefix under which file permissions bind, as for an instructor who is not root
    (nbgrader #1211 shows only then): none when not root, else setpriv dropping the capabilities
    that let root write read-only files. ``None`` when that is impossible here."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def run_nbgrader(prefix: list[str], root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    return subprocess.run([*prefix, sys.executable, "-m", "nbgrader", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


# -- the course, graded once -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """``(course root, {student: {grade_id: CellScore}})``."""
    root = make_course(tmp_path_factory.mktemp("feedback_export") / "course", REPO_ROOT / "source")
    generate(root, A)
    # Only the submissions used here (submissions_for would build every fixture variant).
    src = nbformat.read(root / "source" / A / f"{A}.ipynb", as_version=4)
    rel = nbformat.read(root / "release" / A / f"{A}.ipynb", as_version=4)
    variants = {v.name: v for v in load_variants(A)}
    subs = {"solution": solution_submission(src, rel), "blank": rel}
    subs.update({bug: variant_submission(src, rel, variants[bug]) for bug in BUGS})
    for student in STUDENTS:
        write_submission(root, student, A, subs[student])
    # A student who also hands in their own HTML export of the notebook (nbgrader #1211).
    (root / "submitted" / BUG_VISIBLE / A / f"{A}.html").write_text("<html>my export</html>")
    proc = autograde(root, A)
    scores = read_scores(root, A)
    assert set(scores) == set(STUDENTS), proc.stdout[-2000:] + proc.stderr[-3000:]
    return root, scores


@pytest.fixture(scope="module")
def feedback(course):
    """``{student: feedback HTML}`` from ``autograder.feedback.generate`` (plain nbgrader CLI with
    --force; the preprocessor comes from the course config)."""
    root, _ = course
    return fb.generate(root, A)


@pytest.fixture(scope="module")
def secrets(course):
    root, _ = course
    return secret_lines(root / "source" / A / f"{A}.ipynb")


def failed_cells(scores, student):
    return {g: c for g, c in scores[student].items() if c.score < c.max_score}


# -- (a) feedback without hidden tests -------------------------------------------------------------


def test_there_are_hidden_lines_to_look_for(secrets):
    assert len(secrets) >= 20, "hidden tests of 02_forward_pass not found"
    # For the record: the shortest are specific lines such as `_lengths[0] = _T`; a generic one
    # (`)`, `else:`) occurs outside the hidden regions too and is excluded as public.
    assert not secrets & {")", "]", "else:", "try:"}


def test_the_hidden_bug_fails_inside_the_hidden_tests(course, secrets):
    """Precondition of the next test: nbgrader's own traceback for BUG_HIDDEN quotes a hidden line,
    so hiding the test cell's source alone would not be enough."""
    root, scores = course
    assert set(failed_cells(scores, BUG_HIDDEN)) == {"test_exercise_1"}
    cell = graded_test_cells(root / "autograded" / BUG_HIDDEN / A / f"{A}.ipynb")["test_exercise_1"]
    traceback = norm(ANSI.sub("", "\n".join(
        line for out in cell.outputs if out.output_type == "error" for line in out.traceback
    )))
    assert leaked(traceback, secrets), "the bug no longer fails inside the hidden tests"


def test_feedback_has_no_hidden_test_line(course, feedback, secrets):
    root, scores = course
    assert set(feedback) == set(STUDENTS)
    for student, page in feedback.items():
        text = html_text(page)
        assert not leaked(text, secrets), f"{student}'s feedback shows hidden test lines"
        assert norm(pp.HIDDEN_NOTE) in text


@pytest.mark.parametrize("student", BUGS)
def test_feedback_says_which_cell_failed_and_why(course, feedback, student):
    root, scores = course
    failed = failed_cells(scores, student)
    expected = {v.name: set(v.fails) for v in load_variants(A)}[student]
    assert set(failed) == expected
    text = html_text(feedback[student])
    graded = graded_test_cells(root / "autograded" / student / A / f"{A}.ipynb")
    for grade_id, cell in failed.items():
        assert cell.score == 0
        # nbgrader's own heading and score, and the preprocessor's verdict in the output
        assert norm(f"Grade cell: {grade_id} Score: 0.0 / {cell.max_score:.1f}") in text
        assert f"Test cell {grade_id} failed: 0 / {cell.max_score:g} points." in text
        errors = [o for o in graded[grade_id].outputs if o.output_type == "error"]
        assert errors, f"{grade_id} has no error output"
        message = norm(f"{errors[0].ename}: {errors[0].evalue}")
        assert message in text, f"the assertion message of {grade_id} is missing: {message}"
        assert "AssertionError" in message


def test_feedback_is_written_despite_a_submitted_html_file(course, feedback):
    """The student's own ``02_forward_pass.html`` is not what they get back (nbgrader #1211)."""
    root, _ = course
    assert (root / "autograded" / BUG_VISIBLE / A / f"{A}.html").is_file()
    text = html_text(feedback[BUG_VISIBLE])
    assert "my export" not in text and "Grade cell: test_rnn_cell_forward" in text


# -- (b) controls: each protection removed ---------------------------------------------------------


def test_control_without_the_preprocessor_hidden_lines_show(course, feedback, secrets, tmp_path):
    root, _ = course
    control = copy_course(root, tmp_path / "control", [BUG_HIDDEN], extra_config=(
        "from autograder.preprocessors import HideHiddenTests\n"
        "c.GenerateFeedback.preprocessors = [\n"
        "    p for p in c.GenerateFeedback.preprocessors if p is not HideHiddenTests\n"
        "]\n"
    ))
    page = fb.generate(control, A, BUG_HIDDEN)[BUG_HIDDEN]
    text = html_text(page)
    shown = leaked(text, secrets)
    assert len(shown) > len(secrets) // 2, "nbgrader's feedback should show the hidden tests"
    assert norm(pp.HIDDEN_NOTE) not in text


def test_control_html_in_submission_breaks_plain_generate_feedback(course, feedback, tmp_path):
    """nbgrader #1211 for an instructor who is not root: plain ``generate_feedback`` writes no
    feedback for a submission holding ``<notebook>.html``; ``feedback_args`` does."""
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv: file permissions do not bind here")
    root, _ = course
    copy = copy_course(root, tmp_path / "html", [BUG_VISIBLE])
    page = copy / "feedback" / BUG_VISIBLE / A / f"{A}.html"

    plain = run_nbgrader(prefix, copy, "generate_feedback", A, "--force")
    assert plain.returncode != 0 and "PermissionError" in plain.stderr, plain.stderr[-2000:]
    assert not page.exists()

    fixed = run_nbgrader(prefix, copy, *fb.feedback_args(copy, A))
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert "Grade cell: test_rnn_cell_forward" in html_text(page)


def test_control_regrade_needs_force(course, feedback, tmp_path):
    """nbgrader #1201: after a regrade, ``generate_feedback`` without --force keeps the old
    feedback; ``autograder.feedback.generate`` rewrites it."""
    from nbgrader.api import Gradebook

    root, _ = course
    copy = copy_course(root, tmp_path / "regrade", [BUG_HIDDEN], with_feedback=True)
    page = copy / "feedback" / BUG_HIDDEN / A / f"{A}.html"
    assert "Test cell test_exercise_1 failed: 0 / 1 points." in html_text(page)

    with Gradebook(f"sqlite:///{copy / 'gradebook.db'}", "rnn-course") as gb:
        gb.find_grade("test_exercise_1", A, A, BUG_HIDDEN).manual_score = 0.5
        gb.db.commit()

    plain = nbgrader(copy, "generate_feedback", A)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "Skipping existing assignment" in plain.stderr
    assert "Test cell test_exercise_1 failed: 0 / 1 points." in html_text(page), "not stale?"

    fb.generate(copy, A)
    text = html_text(page)
    assert "Test cell test_exercise_1 failed: 0.5 / 1 points." in text
    assert norm("Grade cell: test_exercise_1 Score: 0.5 / 1.0") in text


# -- the preprocessor on its own -------------------------------------------------------------------


def _meta(grade_id, *, solution, grade, points=0, score=None):
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution,
            "schema_version": 3, "task": False}
    if grade:
        meta["points"] = points
    if score is not None:
        meta["score"] = score
    return {"nbgrader": meta}


def test_preprocessor_scrubs_every_output():
    """Outputs that quote hidden lines in other ways than nbgrader's traceback: a student's print
    of the calling test (inspect.stack()), an HTML repr, and a test cell that failed silently."""
    secret = 'assert f(2) == 4, "f(2) should be 4"'
    nb = nbformat.from_dict({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "code", "id": "a", "execution_count": 1, "outputs": [],
             "source": "def f(x):\n    return x",
             "metadata": _meta("f", solution=True, grade=False)},
            {"cell_type": "code", "id": "b", "execution_count": 2,
             "source": f'assert f(1) == 1, "f(1)"\n{BEGIN}\n{secret}\n_unused = 12345\n{END}',
             "metadata": _meta("test_f", solution=False, grade=True, points=2, score=0.0),
             "outputs": [
                 {"output_type": "stream", "name": "stdout",
                  "text": f"called from:\n    {secret}\nok so far\n"},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"text/html": f"<pre>\n{html.escape(secret)}\n</pre>",
                           "text/plain": "x"}},
                 {"output_type": "error", "ename": "AssertionError", "evalue": "f(2) should be 4",
                  "traceback": [
                      "\x1b[31m----\x1b[39m", "AssertionError   Traceback (most recent call last)",
                      f"\x1b[36mCell\x1b[39m In[2], line 3\n\x1b[32m----> 3\x1b[39m {secret}\n",
                      "\x1b[36mCell\x1b[39m In[1], line 2, in f\n----> 2     return x\n",
                      "\x1b[31mAssertionError\x1b[39m: f(2) should be 4",
                  ]},
             ]},
            {"cell_type": "code", "id": "c", "execution_count": 3, "outputs": [],
             "source": f'print("checks")\n{BEGIN}\n_x = 1\n{END}',
             "metadata": _meta("test_quiet", solution=False, grade=True, points=1, score=0.0)},
        ],
    })
    nb, _ = pp.HideHiddenTests().preprocess(nb, {})
    _, test, quiet = nb.cells
    assert secret not in test.source and "12345" not in test.source
    assert test.source == f'assert f(1) == 1, "f(1)"\n{pp.HIDDEN_NOTE}'
    stream, display, error = test.outputs
    assert stream.text == f"called from:\n{pp.REMOVED_LINE}\nok so far\n"
    assert display.data["text/html"] == f"<pre>\n{pp.REMOVED_LINE}\n</pre>"
    assert display.data["text/plain"] == "x"
    shown = ANSI.sub("", "\n".join(error.traceback))
    assert secret not in shown and "In[2]" not in shown
    assert shown.startswith("Test cell test_f failed: 0 / 2 points.")
    assert "It went wrong in your code:" in shown and "----> 2     return x" in shown
    assert shown.endswith("AssertionError: f(2) should be 4")
    assert quiet.source == f'print("checks")\n{pp.HIDDEN_NOTE}'
    assert "Test cell test_quiet failed: 0 / 1 points. It raised no error" in quiet.outputs[0].text


def test_preprocessor_leaves_a_students_own_marker_line_alone():
    """Only the cells nbgrader put back from the gradebook (locked) hold hidden tests; a line of
    the student's own that mentions the marker hides nothing of their cell (issue 13, item 10)."""
    mine = f"def f(x):\n    # {BEGIN} is what I call the tests I cannot see\n    return x  # mine"
    nb = nbformat.from_dict({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "code", "id": "a", "execution_count": 1, "outputs": [],
             "source": mine, "metadata": _meta("f", solution=True, grade=False)},
            {"cell_type": "code", "id": "b", "execution_count": 2, "outputs": [],
             "source": "print('scratch')\n# " + BEGIN + "\nprint('also mine')",
             "metadata": {}},
            {"cell_type": "code", "id": "c", "execution_count": 3, "outputs": [],
             "source": f"assert f(1) == 1\n{BEGIN}\nassert f(2) == 2\n{END}",
             "metadata": _meta("test_f", solution=False, grade=True, points=1, score=1.0)},
        ],
    })
    nb.cells[2].metadata.nbgrader["locked"] = True
    nb, _ = pp.HideHiddenTests().preprocess(nb, {})
    assert nb.cells[0].source == mine
    assert nb.cells[1].source.endswith("print('also mine')")
    assert nb.cells[2].source == f"assert f(1) == 1\n{pp.HIDDEN_NOTE}"


def test_grading_notes_are_shown_at_the_top_of_the_feedback(tmp_path):
    """The grading record's reason and notes (autograder/intake.py) become the first cell."""
    from traitlets.config import Config

    from autograder.intake import write_record

    write_record(tmp_path, {"student": "kim", "assignment": A, "status": "invalid",
                            "reason": "02_forward_pass.ipynb is not valid notebook JSON",
                            "notes": ["the grades shown are the previous submission's (3/20)"]})
    c = Config()
    c.CourseDirectory.root = str(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb, _ = pp.GradingNotes(config=c).preprocess(
        nb, {"nbgrader": {"student": "kim", "assignment": A}})
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Grading notes" in first.source
    assert ("Your latest submission could not be graded: 02_forward_pass.ipynb is not valid "
            "notebook JSON") in first.source
    assert "the grades shown are the previous submission&#x27;s (3/20)" in first.source


# -- (c) export ------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def exported(course, tmp_path_factory):
    """``python -m autograder.export --course ... --out ...`` (its main(), in this process)."""
    from autograder.export import main

    root, _ = course
    out = tmp_path_factory.mktemp("grades")
    assert main(["--course", str(root), "--out", str(out)]) == 0
    return out


def test_export_cells_equal_the_gradebook(course, exported):
    _, scores = course
    rows = read_csv(exported / "grades_by_cell.csv")
    got = {(r["student"], r["grade_id"]): r for r in rows}
    assert len(got) == len(rows), "duplicate (student, cell) rows"
    want = {(s, g): c for s, cells in scores.items() for g, c in cells.items()}
    assert set(got) == set(want)
    for key, cell in want.items():
        row = got[key]
        assert (row["assignment"], row["notebook"]) == (A, A)
        assert float(row["score"]) == cell.score and float(row["max_score"]) == cell.max_score
        assert row["needs_manual_grade"] == str(cell.needs_manual_grade)
        assert float(row["auto_score"]) == cell.score and row["manual_score"] == ""
        assert row["kind"] == "test" and row["cell_type"] == "code"


def test_export_totals_match(course, exported):
    _, scores = course
    rows = {r["student"]: r for r in read_csv(exported / "grades_by_assignment.csv")}
    cells = read_csv(exported / "grades_by_cell.csv")
    assert set(rows) == set(STUDENTS) and all(r["assignment"] == A for r in rows.values())
    for student, (score, max_score) in totals(scores).items():
        row = rows[student]
        assert row["submitted"] == "True"
        assert float(row["score"]) == float(row["raw_score"]) == score
        assert float(row["max_score"]) == max_score
        assert sum(float(c["score"]) for c in cells if c["student"] == student) == score
    assert float(rows["solution"]["score"]) == float(rows["solution"]["max_score"]) > 0
    assert float(rows["blank"]["score"]) == 0


def test_difficulty_ranks_the_broken_cells_last(course, exported):
    _, scores = course
    rows = [r for r in read_csv(exported / "cell_difficulty.csv") if r["kind"] == "test"]
    share = {r["grade_id"]: float(r["full_marks_share"]) for r in rows}
    assert set(share) == set(scores["solution"])
    broken = {g for v in load_variants(A) if v.name in BUGS for g in v.fails}
    assert broken == {"test_exercise_1", "test_rnn_cell_forward"}
    # solution and the other bug pass a broken cell, the blank and its bug fail it: 2 of 4
    assert all(share[g] == 0.5 for g in broken)
    assert all(share[g] == 0.75 for g in set(share) - broken)  # only the blank fails these
    assert {r["grade_id"] for r in rows[: len(broken)]} == broken, "hardest cells come first"
    for r in rows:
        assert int(r["submissions"]) == int(r["graded"]) == len(STUDENTS)


def test_difficulty_plot_is_a_png(exported):
    from PIL import Image

    path = exported / "cell_difficulty.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width >= 400 and img.height >= 200
