"""``make demo``: autograde the bundled example students and print their grades.

The repository root is the course folder (``nbgrader_config.py`` lives there), so this is the
instructor's own workflow: ``make release`` has run ``nbgrader generate_assignment``; here the
example submissions go into ``submitted/``, ``make grade``'s parallel grader
(``autograder.grade``, nbgrader's autograder in one worker per core) grades them into the SQLite
gradebook ``gradebook.db``, and the table below is read back from that gradebook.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from pathlib import Path

from autograder.course import ASSIGNMENTS, REPO_ROOT
from autograder.grade import format_results, grade_all
from autograder.grading import format_table, read_scores, totals
from autograder.submissions import load_variants, submissions_for, write_submission


def roster(assignment: str) -> dict[str, str]:
    """Example students and which submission each hands in for ``assignment``."""
    variants = load_variants(assignment)
    bugs = [v.name for v in variants if v.kind == "bug"]
    alts = [v.name for v in variants if v.kind == "alternative"]
    cast = {"ada": "solution", "blaise": "blank"}
    if bugs:
        cast["carl"] = bugs[0]
    if len(bugs) > 1:
        cast["dora"] = bugs[1]
    if alts:
        cast["emmy"] = alts[0]
    return cast


def main(root: Path = REPO_ROOT) -> int:
    start = time.perf_counter()
    results, casts = {}, {}
    for assignment in ASSIGNMENTS:
        casts[assignment] = cast = roster(assignment)
        subs = submissions_for(assignment, root / "source", root / "release")
        for student, which in cast.items():
            shutil.rmtree(root / "submitted" / student / assignment, ignore_errors=True)
            write_submission(root, student, assignment, subs[which])
    students = sorted({s for c in casts.values() for s in c})
    print(f"autograding {len(ASSIGNMENTS)} assignments for {len(students)} example students ...",
          flush=True)
    graded = grade_all(root, ASSIGNMENTS, students=students)
    failed = [r for r in graded if not r.ok]
    if failed:
        print(format_results(failed), file=sys.stderr)
        return 1
    pending: dict[str, dict[str, float]] = {}
    for assignment, cast in casts.items():
        scores = read_scores(root, assignment)
        results[assignment] = {s: t for s, t in totals(scores).items() if s in cast}
        pending[assignment] = {s: sum(c.max_score for c in cells.values() if c.needs_manual_grade)
                               for s, cells in scores.items() if s in cast}
    print()
    print("Example students:")
    for student in sorted({s for c in casts.values() for s in c}):
        handed = {c[student] for c in casts.values() if student in c}
        if handed <= {"solution", "blank"}:
            what = {"solution": "the instructor's solution", "blank": "the untouched release"}
            print(f"  {student:7s} {what[handed.pop()]} in every assignment")
            continue
        what = ", ".join(f"{a.split('_')[0]}:{c[student]}" for a, c in casts.items()
                         if student in c)
        print(textwrap.fill(what, 100, initial_indent=f"  {student:7s} ",
                            subsequent_indent=" " * 10))
    print()
    print(format_table(results, pending))
    print(f"\nGradebook: {root / 'gradebook.db'}  ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
