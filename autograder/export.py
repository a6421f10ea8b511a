"""Grades out of the gradebook: CSV per student and assignment, per graded cell, and a difficulty
summary with a bar chart of the tests that fail most.

``nbgrader export`` writes one row per student and assignment (nbgrader #938); the per-cell scores,
which say *what* a class got wrong, stay in the database. This reads them with nbgrader's own
SQLAlchemy models (``nbgrader.api.Gradebook``), so it works for any ``db_url`` nbgrader supports
(SQLite, PostgreSQL, ...), and writes to ``--out`` (default ``<course>/grades/``):

``grades_by_assignment.csv``
    student, assignment, submitted, timestamp, raw_score, late_penalty, score, max_score,
    needs_manual_grade, status, reason - every student times every assignment; a missing
    submission is ``submitted=False`` with score 0 and status ``not submitted``. ``status`` and
    ``reason`` come from the grading records ``make grade`` keeps (:mod:`autograder.intake`):
    ``graded`` (reason: the notes, e.g. which notebook was graded, the late penalty),
    ``invalid``, ``failed`` or ``timeout`` (reason: why it was not graded). A student whose
    submission could not be graded has a row too, with score 0, or with the previous
    submission's scores when one was graded before (the reason says so).
``grades_by_cell.csv``
    student, assignment, notebook, grade_id, kind (``test`` = autograded test cell, ``manual`` =
    answer graded by hand, ``task``), cell_type, auto_score, manual_score, extra_credit, score
    (nbgrader's final score: manual if set, else auto, plus extra credit), max_score,
    needs_manual_grade - one row per graded cell of every submission.
``cell_difficulty.csv``
    per graded cell: submissions, graded (not awaiting a manual grade), pending, full_marks,
    full_marks_share and mean_fraction (mean score / max_score) over the graded ones; sorted
    hardest first.
``cell_difficulty.png``
    horizontal bars: the share of students without full marks on each autograded test cell
    (``assignment/grade_id``), the cells that fail most at the top.

Usage: ``python -m autograder.export [--course DIR] [--out DIR] [--db-url URL] [--top N]``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from autograder.config import course_db

EPS = 1e-9


@dataclass(frozen=True)
class AssignmentRow:
    student: str
    assignment: str
    submitted: bool
    timestamp: str
    raw_score: float
    late_penalty: float
    score: float
    max_score: float
    needs_manual_grade: bool
    status: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CellRow:
    student: str
    assignment: str
    notebook: str
    grade_id: str
    kind: str
    cell_type: str
    auto_score: float | None
    manual_score: float | None
    extra_credit: float | None
    score: float
    max_score: float
    needs_manual_grade: bool


@dataclass(frozen=True)
class DifficultyRow:
    assignment: str
    notebook: str
    grade_id: str
    kind: str
    max_score: float
    submissions: int
    graded: int
    pending: int
    full_marks: int
    full_marks_share: float | None
    mean_fraction: float | None

    @property
    def label(self) -> str:
        return f"{self.assignment}/{self.grade_id}"


def _open_gradebook(db_url: str, course_id: str):
    """nbgrader's ``Gradebook``; refuses to conjure an empty SQLite file where none exists
    (``Gradebook`` creates the tables of a database it cannot find)."""
    from nbgrader.api import Gradebook
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            raise FileNotFoundError(f"no gradebook at {url.database} (db_url {db_url})")
    return Gradebook(db_url, course_id or "default_course")


def _float(value) -> float | None:
    return None if value is None else float(value)


def read_gradebook(db_url: str, course_id: str = "") -> tuple[list[AssignmentRow], list[CellRow]]:
    """Every (student, assignment) pair and every graded cell of every submission."""
    from nbgrader.api import (
        Assignment,
        BaseCell,
        Grade,
        Notebook,
        SolutionCell,
        Student,
        SubmittedAssignment,
        SubmittedNotebook,
    )

    with _open_gradebook(db_url, course_id) as gb:
        db = gb.db
        solution_cells = {
            (nb_id, name) for nb_id, name in db.query(SolutionCell.notebook_id, SolutionCell.name)
        }
        cells = []
        query = (
            db.query(
                SubmittedAssignment.student_id,
                Assignment.name,
                Notebook.name,
                Notebook.id,
                BaseCell.name,
                BaseCell.type,
                Grade.cell_type,
                Grade.auto_score,
                Grade.manual_score,
                Grade.extra_credit,
                Grade.score,
                Grade.max_score,
                Grade.needs_manual_grade,
            )
            .select_from(Grade)
            .join(SubmittedNotebook, Grade.notebook_id == SubmittedNotebook.id)
            .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
            .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
            .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
            .join(BaseCell, Grade.cell_id == BaseCell.id)
        )
        for (student, assignment, notebook, nb_id, grade_id, polytype, cell_type, auto, manual,
             extra, score, max_score, pending) in query:
            if polytype == "TaskCell":
                kind = "task"
            elif (nb_id, grade_id) in solution_cells:
                kind = "manual"
            else:
                kind = "test"
            cells.append(CellRow(
                student=student, assignment=assignment, notebook=notebook, grade_id=grade_id,
                kind=kind, cell_type=cell_type or "", auto_score=_float(auto),
                manual_score=_float(manual), extra_credit=_float(extra), score=float(score or 0),
                max_score=float(max_score or 0), needs_manual_grade=bool(pending),
            ))

        submitted = {}
        for (student, assignment, timestamp, score, max_score, penalty, pending) in (
            db.query(
                SubmittedAssignment.student_id,
                Assignment.name,
                SubmittedAssignment.timestamp,
                SubmittedAssignment.score,
                SubmittedAssignment.max_score,
                SubmittedAssignment.late_submission_penalty,
                SubmittedAssignment.needs_manual_grade,
            ).join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
        ):
            raw, penalty = float(score or 0), float(penalty or 0)
            submitted[student, assignment] = AssignmentRow(
                student=student, assignment=assignment, submitted=True,
                timestamp=timestamp.isoformat() if timestamp else "", raw_score=raw,
                late_penalty=penalty, score=raw - penalty, max_score=float(max_score or 0),
                needs_manual_grade=bool(pending),
            )
        assignments = [(a.name, float(a.max_score or 0)) for a in gb.assignments]
        students = sorted(s.id for s in db.query(Student))
        rows = [
            submitted.get((student, name)) or AssignmentRow(
                student=student, assignment=name, submitted=False, timestamp="", raw_score=0.0,
                late_penalty=0.0, score=0.0, max_score=max_score, needs_manual_grade=False,
            )
            for student in students
            for name, max_score in assignments
        ]
    order = {name: i for i, (name, _) in enumerate(assignments)}
    cells.sort(key=lambda c: (c.student, order.get(c.assignment, 0), c.notebook, c.grade_id))
    return rows, cells


def with_records(rows: list[AssignmentRow], records: dict[tuple[str, str], dict],
                 max_scores: dict[str, float] | None = None) -> list[AssignmentRow]:
    """``rows`` with the status and reason of each submission's grading record, plus a row for
    every student and assignment that only the records know (a submission that could not be
    graded never reaches the gradebook)."""
    from dataclasses import replace

    max_scores = dict(max_scores or {})
    by_key = {(r.student, r.assignment): r for r in rows}
    for r in rows:
        max_scores.setdefault(r.assignment, r.max_score)
    for (_, assignment), rec in records.items():
        if assignment not in max_scores and rec.get("max_score") is not None:
            max_scores[assignment] = float(rec["max_score"])
    students = sorted({s for s, _ in by_key} | {s for s, _ in records})
    order = list(dict.fromkeys([r.assignment for r in rows] + sorted(a for _, a in records)))
    out = []
    for student in students:
        for assignment in order:
            row = by_key.get((student, assignment))
            rec = records.get((student, assignment))
            if rec is not None and rec.get("status") == "graded" and not (row and row.submitted):
                rec = None  # a record of a grade the gradebook no longer has (it was reset)
            if row is None:
                row = AssignmentRow(
                    student=student, assignment=assignment, submitted=False, timestamp="",
                    raw_score=0.0, late_penalty=0.0, score=0.0,
                    max_score=max_scores.get(assignment, 0.0), needs_manual_grade=False)
            if rec is None:
                out.append(replace(row, status="graded" if row.submitted else "not submitted",
                                   reason=row.reason))
                continue
            stamp = row.timestamp or (rec.get("timestamp") or "")
            out.append(replace(row, submitted=True, timestamp=stamp, status=rec["status"],
                               reason=rec.get("message") or rec.get("reason") or ""))
    return out


def difficulty(cells: list[CellRow]) -> list[DifficultyRow]:
    """Per graded cell, how many students got full marks; hardest cells first.

    Grades still awaiting a human (``needs_manual_grade``) are counted as pending, not as zeros.
    """
    groups: dict[tuple[str, str, str], list[CellRow]] = defaultdict(list)
    for cell in cells:
        groups[cell.assignment, cell.notebook, cell.grade_id].append(cell)
    out = []
    for (assignment, notebook, grade_id), rows in groups.items():
        graded = [r for r in rows if not r.needs_manual_grade]
        max_score = max(r.max_score for r in rows)
        full = sum(r.score >= r.max_score - EPS for r in graded)
        share = full / len(graded) if graded else None
        mean = (
            sum(r.score / r.max_score for r in graded) / len(graded)
            if graded and max_score > 0 else None
        )
        out.append(DifficultyRow(
            assignment=assignment, notebook=notebook, grade_id=grade_id, kind=rows[0].kind,
            max_score=max_score, submissions=len(rows), graded=len(graded),
            pending=len(rows) - len(graded), full_marks=full, full_marks_share=share,
            mean_fraction=mean,
        ))
    out.sort(key=lambda d: (
        d.full_marks_share is None, d.full_marks_share or 0.0, d.mean_fraction or 0.0,
        d.assignment, d.notebook, d.grade_id,
    ))
    return out


def _write_csv(path: Path, rows: list, cls) -> Path:
    names = [f.name for f in fields(cls)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return path


def plot_difficulty(summary: list[DifficultyRow], path: Path, top: int = 25) -> Path:
    """A PNG bar chart of the autograded test cells that fail most (headless: Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tests = [d for d in summary if d.kind == "test" and d.full_marks_share is not None]
    tests.sort(key=lambda d: (d.full_marks_share, d.mean_fraction or 0.0, d.label))
    shown = tests[:top]
    fig = Figure(figsize=(8.0, 1.2 + 0.32 * max(len(shown), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if not shown:
        ax.text(0.5, 0.5, "no graded test cells yet", ha="center", va="center")
        ax.set_axis_off()
    else:
        fails = [1.0 - d.full_marks_share for d in shown]
        y = list(range(len(shown)))
        ax.barh(y, fails, color="#c0392b")
        ax.set_yticks(y, [d.label for d in shown])
        ax.invert_yaxis()  # the cell that fails most on top
        for yi, d, f in zip(y, shown, fails, strict=True):
            ax.text(min(f, 1.0) + 0.01, yi, f"{d.graded - d.full_marks}/{d.graded}",
                    va="center", fontsize=8)
        ax.set_xlim(0, 1.12)
        ax.set_xlabel("share of graded students without full marks")
        more = f" (the {top} hardest of {len(tests)})" if len(tests) > top else ""
        ax.set_title(f"Autograded tests that fail most{more}")
    fig.savefig(path, dpi=100)
    return path


def export(course_root: Path | None = None, out: Path | None = None, *, db_url: str | None = None,
           course_id: str | None = None, top: int = 25) -> dict[str, Path]:
    """Write the three CSVs and the PNG; returns ``{name: path}``."""
    from autograder.course import REPO_ROOT

    course_root = Path(course_root or REPO_ROOT).resolve()
    if db_url is None or course_id is None:
        cfg_url, cfg_course = course_db(course_root)
        db_url = db_url or cfg_url
        course_id = cfg_course if course_id is None else course_id
    out = Path(out) if out else course_root / "grades"
    out.mkdir(parents=True, exist_ok=True)
    from autograder.intake import assignment_info, read_records

    records = read_records(course_root)
    try:
        rows, cells = read_gradebook(db_url, course_id)
    except FileNotFoundError:
        if not records:
            raise
        rows, cells = [], []  # nothing graded yet; the records say why
    known = {r.assignment for r in rows}
    max_scores = {a: info.max_score for a in {a for _, a in records} - known
                  if (info := assignment_info(course_root, a)) is not None}
    rows = with_records(rows, records, max_scores)
    summary = difficulty(cells)
    return {
        "by_assignment": _write_csv(out / "grades_by_assignment.csv", rows, AssignmentRow),
        "by_cell": _write_csv(out / "grades_by_cell.csv", cells, CellRow),
        "difficulty": _write_csv(out / "cell_difficulty.csv", summary, DifficultyRow),
        "plot": plot_difficulty(summary, out / "cell_difficulty.png", top=top),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.export", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=None,
                        help="course folder with nbgrader_config.py (default: this repository)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: COURSE/grades)")
    parser.add_argument("--db-url", default=None,
                        help="gradebook URL, e.g. postgresql+psycopg2://user@host/db "
                        "(default: the course config's CourseDirectory.db_url)")
    parser.add_argument("--top", type=int, default=25, help="cells in the bar chart (default 25)")
    args = parser.parse_args(argv)
    written = export(args.course, args.out, db_url=args.db_url, top=args.top)
    for path in written.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
