"""How long does grading a class take? ``autograder.grade`` with one worker vs one per core, and
what the kernels' sandbox (autograder/sandbox.py) costs.

Builds a throw-away course with every assignment, gives each of ``--students`` synthetic students
one example submission per assignment (the solution, the blank notebook and the buggy and correct
variants of autograder/fixtures, in turn), and autogrades the whole class three times with the
course's grading command: sequentially (``--workers 1``), in parallel (one worker per core), and
in parallel without the sandbox (``--no-sandbox``), so that the sandbox's overhead per submission
is measured side by side. Prints a Markdown table with the seconds per student for the full
course and the speedup; ``--json`` also writes the figures for ``make bench``. A script, not a
test::

    python benchmarks/grading_throughput.py                 # 20 students, every assignment
    python benchmarks/grading_throughput.py --students 4 02_forward_pass
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from autograder.config import ASSIGNMENTS  # noqa: E402
from autograder.grade import grade_all  # noqa: E402
from autograder.grading import generate, make_course  # noqa: E402
from autograder.submissions import submissions_for, write_submission  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", default=ASSIGNMENTS)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rnncourse-bench-") as tmp:
        course = make_course(Path(tmp) / "course", REPO_ROOT / "source")
        for a in args.assignments:
            generate(course, a)
            subs = submissions_for(a, course / "source", course / "release")
            cycle = itertools.cycle(subs.values())
            for i in range(args.students):
                write_submission(course, f"student{i:02d}", a, next(cycle))
        runs = {}
        plan = (("sequential", 1, True), ("parallel", args.workers, True),
                ("parallel, no sandbox", args.workers, False))
        for label, workers, isolated in plan:
            shutil.rmtree(course / "autograded", ignore_errors=True)
            t0 = time.perf_counter()
            results = grade_all(course, args.assignments, workers=workers, progress=True,
                                isolated=isolated)
            seconds = time.perf_counter() - t0
            bad = [r for r in results if not r.ok]
            if bad:
                raise SystemExit(f"{len(bad)} submissions not graded, e.g. {bad[0]}")
            runs[label] = {"workers": workers, "sandbox": isolated, "seconds": seconds,
                           "per_student_s": seconds / args.students,
                           "per_submission_s": seconds / len(results)}

    seq, par, bare = runs["sequential"], runs["parallel"], runs["parallel, no sandbox"]
    speedup = seq["seconds"] / par["seconds"]
    # per submission, on one worker's time: wall time x workers / submissions
    overhead = (par["per_submission_s"] - bare["per_submission_s"]) * args.workers
    n = len(args.assignments)
    print(f"\n{args.students} students x {n} assignments = {args.students * n} submissions\n")
    print("| grading | workers | sandbox | wall time (s) | s per student (full course) | speedup |")
    print("|---|---:|---|---:|---:|---:|")
    for label, r in runs.items():
        print(f"| {label} | {r['workers']} | {'yes' if r['sandbox'] else 'no'} | "
              f"{r['seconds']:.0f} | {r['per_student_s']:.1f} | "
              f"{seq['seconds'] / r['seconds']:.2f} |")
    print(f"\n- sandbox overhead: {overhead:+.2f} s per submission (one worker's time; "
          f"{par['seconds'] / bare['seconds']:.2f}x the wall time without it)")
    print(f"\n- cores: {os.cpu_count()}; Python {platform.python_version()}, {platform.machine()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"students": args.students, "assignments": args.assignments,
                                         "runs": runs, "speedup": speedup,
                                         "sandbox_overhead_s": overhead}, indent=2))


if __name__ == "__main__":
    main()
