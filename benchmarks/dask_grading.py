"""Grading throughput on Dask distributed: 1 and 2 Dask workers vs plain ``nbgrader autograde``.

Builds a throw-away course with ``--students`` synthetic students per assignment (the solution,
the blank notebook and the fixtures' variants, in turn) and grades the same class three times,
side by side in one run: plain sequential ``nbgrader autograde <assignment>`` (nbgrader's own
command, one kernel at a time), and ``python -m autograder.grade --scheduler`` on a loopback Dask
cluster (autograder/distributed.py: a ``dask scheduler`` and separate ``dask worker`` processes)
with 1 and with 2 workers. Every run starts from the same gradebook; the Dask runs include
sending each submission's bytes and merging the results. Prints a Markdown table; ``--json``
writes the figures for ``make bench``. A script, not a test::

    python benchmarks/dask_grading.py --students 6 02_forward_pass
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from autograder.distributed import loopback_cluster  # noqa: E402
from autograder.grade import grade_all  # noqa: E402
from autograder.grading import generate, make_course, nbgrader  # noqa: E402
from autograder.submissions import submissions_for, write_submission  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", default=["02_forward_pass", "03_bptt"])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    runs = {}
    with tempfile.TemporaryDirectory(prefix="rnncourse-dask-bench-") as tmp:
        tmp = Path(tmp)
        course = make_course(tmp / "course", REPO_ROOT / "source")
        for a in args.assignments:
            generate(course, a)
            cycle = itertools.cycle(submissions_for(a, course / "source",
                                                    course / "release").values())
            for i in range(args.students):
                write_submission(course, f"student{i:02d}", a, next(cycle))
        pristine = (course / "gradebook.db").read_bytes()
        n = args.students * len(args.assignments)

        def fresh():
            shutil.rmtree(course / "autograded", ignore_errors=True)
            (course / "gradebook.db").write_bytes(pristine)

        fresh()
        t0 = time.perf_counter()
        for a in args.assignments:
            proc = nbgrader(course, "autograde", a, "--force")
            if proc.returncode != 0:
                raise SystemExit(f"nbgrader autograde {a} failed:\n{proc.stderr[-2000:]}")
        runs["nbgrader autograde, sequential"] = {"workers": 1,
                                                  "seconds": time.perf_counter() - t0}
        for workers in (1, 2):
            fresh()
            env = {"PYTHONPATH": str(REPO_ROOT)}
            with loopback_cluster(workers, tmp / f"cluster{workers}", env=env) as address:
                t0 = time.perf_counter()
                results = grade_all(course, args.assignments, progress=True, scheduler=address)
                seconds = time.perf_counter() - t0
            bad = [r for r in results if not r.ok]
            if bad:
                raise SystemExit(f"{len(bad)} submissions not graded, e.g. {bad[0]}")
            runs[f"Dask, {workers} worker{'s' if workers > 1 else ''}"] = {
                "workers": workers, "seconds": seconds}
    base = runs["nbgrader autograde, sequential"]["seconds"]
    for r in runs.values():
        r["per_submission_s"] = r["seconds"] / n
        r["speedup"] = base / r["seconds"]
    print(f"\n{args.students} students x {len(args.assignments)} assignments = {n} submissions\n")
    print("| grading | workers | wall time (s) | s per submission | vs nbgrader autograde |")
    print("|---|---:|---:|---:|---:|")
    for label, r in runs.items():
        print(f"| {label} | {r['workers']} | {r['seconds']:.0f} | {r['per_submission_s']:.1f} | "
              f"{r['speedup']:.2f}x |")
    print(f"\n- cores: {os.cpu_count()}; the Dask workers run on this machine (loopback), one "
          "thread each; every grade is sandboxed (autograder/sandbox.py)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"students": args.students,
                                         "assignments": args.assignments, "runs": runs},
                                        indent=2))


if __name__ == "__main__":
    main()
