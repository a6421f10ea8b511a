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
import sys
from pathlib import Path

from autograder.preprocessors import notes_html

# -- running nbgrader ------------------------------------------------------------------------------


def feedback_args(course_root: Path, assignment: str, student: str | None = None) -> list[str]:
    """The ``nbgrader`` arguments :func:`generate` runs: ``generate_feedback <assignment> --force``
    and ``--CourseDirectory.ignore`` items, the course's own list plus ``<notebook>.html`` for each
    notebook of ``assignment`` (the names the feedback is written to; nbgrader #1211)."""
    from nbgrader.coursedir import CourseDirectory

    from autograder.config import load_config

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
