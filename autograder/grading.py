"""Course folders and nbgrader's command line: make a course folder, generate its release (``make
release``), autograde it, read the scores back per student and per graded cell.

Which is which: this module drives a course folder (``make release``, ``make demo``, the tests);
:mod:`autograder.grade` is ``make grade``, the parallel grader itself. :func:`autograde` runs that
same command, so tests and instructors share one autograde path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.course import ASSIGNMENTS, GRADING_ENV, REPO_ROOT

CONFIG_TEMPLATE = '''"""nbgrader config of a course folder made by make_course()."""
from autograder.config import configure

c = get_config()  # noqa: F821
configure(c, {root!r})
'''


def _command_env() -> dict[str, str]:
    """The environment of the course's commands: the repository importable, the kernels' BLAS
    settings, and the venv's bin first (nbgrader shells out to `alembic` for the gradebook
    schema: it must find the venv's one)."""
    env = {**GRADING_ENV, **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    return env


def nbgrader(course_root: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in ``course_root`` with the same interpreter as this process."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course_root,
        env=_command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_course(root: Path, source: Path) -> Path:
    """A fresh course folder at ``root`` whose ``source/`` is a copy of ``source``."""
    import shutil

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, root / "source", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (root / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(root=str(root)))
    return root


def generate(course_root: Path, assignment: str) -> None:
    """``nbgrader generate_assignment``, after writing the assignment's companion module."""
    from autograder.companions import write_companion

    write_companion(Path(course_root) / "source", assignment)
    proc = nbgrader(course_root, "generate_assignment", assignment, "--force")
    if proc.returncode != 0:
        raise RuntimeError(f"generate_assignment {assignment} failed:\n{proc.stderr[-4000:]}")


def autograde(course_root: Path, assignment: str, workers: int = 1) -> subprocess.CompletedProcess:
    """Autograde every submitted student of ``assignment`` the way instructors do: ``make
    grade``'s command (``python -m autograder.grade``, intake, isolated workers, the merge into the
    gradebook), so the tests and the instructors share one autograde path. Its exit code is 1
    when a submission could not be graded; the summary is on stdout."""
    return subprocess.run(
        [sys.executable, "-m", "autograder.grade", assignment, "--course", str(course_root),
         "--workers", str(workers)],
        cwd=course_root, env=_command_env(), capture_output=True, text=True, timeout=3600)


@dataclass(frozen=True)
class CellScore:
    score: float
    max_score: float
    needs_manual_grade: bool


def read_scores(course_root: Path, assignment: str) -> dict[str, dict[str, CellScore]]:
    """``{student: {grade_id: CellScore}}`` from the course's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.config import db_url_of

    db_url = db_url_of(course_root)  # what the course's nbgrader_config.py says (SQLite or not)
    out: dict[str, dict[str, CellScore]] = {}
    with Gradebook(db_url) as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission_notebook(assignment, assignment, student.id)
            except MissingEntry:
                continue
            out[student.id] = {
                g.name: CellScore(float(g.score), float(g.max_score), bool(g.needs_manual_grade))
                for g in sub.grades
            }
    return out


def totals(scores: dict[str, dict[str, CellScore]]) -> dict[str, tuple[float, float]]:
    return {
        student: (sum(c.score for c in cells.values()), sum(c.max_score for c in cells.values()))
        for student, cells in scores.items()
    }


def format_table(results: dict[str, dict[str, tuple[float, float]]],
                 pending: dict[str, dict[str, float]] | None = None) -> str:
    """A plain-text table for a terminal of 100 columns: one row per student, one column per
    assignment (headed by its number, named in a legend above), plus the total.

    results: ``{assignment: {student: (score, max_score)}}``.
    pending: ``{assignment: {student: points}}`` of written answers still to be graded by hand;
    such cells get a ``*`` and a footnote, so a pending point does not read as a lost one.
    """
    import textwrap

    assignments = [a for a in ASSIGNMENTS if a in results]
    students = sorted({s for per in results.values() for s in per})
    pending = pending or {}
    head = ["student", *(a.split("_")[0] for a in assignments), "total"]
    rows, waiting = [], 0.0
    for student in students:
        row, got, cap, open_ = [student], 0.0, 0.0, 0.0
        for a in assignments:
            score, max_score = results[a].get(student, (0.0, 0.0))
            todo = pending.get(a, {}).get(student, 0.0)
            row.append((f"{score:g}/{max_score:g}" + ("*" if todo else "")) if max_score else "-")
            got, cap, open_ = got + score, cap + max_score, open_ + todo
        row.append(f"{got:g}/{cap:g}" + ("*" if open_ else ""))
        waiting += open_
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    legend = ", ".join(f"{a.split('_', 1)[0]} {a.split('_', 1)[-1].replace('_', ' ')}"
                       for a in assignments)
    lines = textwrap.wrap(f"Assignments: {legend}", 100)
    lines += ["", fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    if waiting:
        lines += ["", "* includes written answers still to be graded by hand in the formgrader "
                  "(they count 0 until then)"]
    return "\n".join(lines)


def release(root: Path | None = None) -> None:
    """``make release``: regenerate ``release/`` for every assignment of the course."""
    root = Path(root or REPO_ROOT)
    for assignment in ASSIGNMENTS:
        generate(root, assignment)
        print(f"release/{assignment} generated", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["release"]:
        sys.exit("usage: python -m autograder.grading release")
    release()
