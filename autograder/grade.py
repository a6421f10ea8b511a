"""Autograde a whole class in parallel, one submission at a time per worker, safely.

``make grade`` (``python -m autograder.grade``) grades every ``submitted/<student>/<assignment>/``
of the course with nbgrader's own autograder, ``--workers`` submissions at a time, and prints a
summary table. What it adds to ``nbgrader autograde``:

* **Parallel and safe for SQLite.** Each worker is a separate process with a course folder of its
  own (``source/`` and ``submitted/`` linked, ``autograded/`` and, for SQLite, a copy of the
  gradebook its own), so no two processes ever write one SQLite file (nbgrader #174). The parent
  merges each finished submission into the course gradebook, one at a time, through nbgrader's
  Gradebook API: the automatic scores and comments of that submission only; manual grades already
  in the gradebook are kept, as ``nbgrader autograde`` keeps them. With a PostgreSQL ``db_url``
  (large courses, see the README) the workers write to the server directly.
* **Bounded.** nbgrader interrupts a cell after ``Execute.timeout`` seconds and goes on with the
  notebook; on top of that every submission has a wall-clock limit (``--job-timeout``) after which
  its worker and kernel are killed as a process group and a fresh worker takes the next one, and
  the kernel's address space is limited (``--memory-limit``), so a memory blow-up ends in a
  ``MemoryError`` instead of taking the machine down.
* **Clear results.** A submission that cannot be graded (missing or renamed notebook, invalid JSON,
  wrong nbformat, oversized file, kernel death, timeout) gets a one-line reason in the summary and
  leaves the gradebook as it was; every other student is graded normally.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import GRADING_ENV
from autograder.integrity import scan_submission

REPO = Path(__file__).resolve().parent.parent
MAX_NOTEBOOK_BYTES = 50 * 2**20
DEFAULT_JOB_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_LIMIT_MB = 4096

WORKER_CONFIG = '''"""nbgrader config of a grading worker (made by autograder.grade; throw-away)."""
from traitlets.config.loader import PyFileConfigLoader

c = get_config()  # noqa: F821
c.merge(PyFileConfigLoader("nbgrader_config.py", path={course!r}).load_config())
c.CourseDirectory.root = {root!r}
if {db_url!r}:
    c.CourseDirectory.db_url = {db_url!r}
'''


@dataclass(frozen=True)
class Job:
    assignment: str
    student: str


@dataclass
class JobResult:
    job: Job
    status: str  # "graded", "invalid", "failed", "timeout"
    message: str = ""
    seconds: float = 0.0
    score: float | None = None
    max_score: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "graded"


# --- the course -----------------------------------------------------------------------------------

def db_url_of(course_root: Path) -> str:
    """The gradebook URL the course's ``nbgrader_config.py`` sets (SQLite by default)."""
    from autograder.export import course_db

    return course_db(course_root)[0]


def expected_notebooks(course_root: Path, assignment: str) -> list[str]:
    return sorted(p.name for p in (Path(course_root) / "source" / assignment).glob("*.ipynb"))


def find_jobs(course_root: Path, assignments=None, students=None) -> list[Job]:
    """Every ``submitted/<student>/<assignment>/`` folder, in a stable order."""
    submitted = Path(course_root) / "submitted"
    jobs = []
    for sdir in sorted(p for p in submitted.glob("*") if p.is_dir()):
        if students and sdir.name not in students:
            continue
        for adir in sorted(p for p in sdir.glob("*") if p.is_dir()):
            if assignments and adir.name not in assignments:
                continue
            jobs.append(Job(adir.name, sdir.name))
    return jobs


def precheck(course_root: Path, job: Job) -> str | None:
    """Why nbgrader cannot grade this submission, or None when it can."""
    folder = Path(course_root) / "submitted" / job.student / job.assignment
    wanted = expected_notebooks(course_root, job.assignment)
    if not wanted:
        return f"no assignment {job.assignment!r} in source/"
    for name in wanted:
        path = folder / name
        if not path.exists():
            found = sorted(p.name for p in folder.glob("*.ipynb"))
            hint = (f"; found {', '.join(found)} (renamed? nbgrader grades only {name})"
                    if found else "")
            return f"notebook {name} is missing{hint}"
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return (f"{name} is {size / 2**20:.0f} MB, over the "
                    f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MB limit (clear the outputs, submit again)")
        try:
            raw = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return f"{name} is not valid notebook JSON ({err})"
        if not isinstance(raw, dict) or raw.get("nbformat") != 4:
            version = raw.get("nbformat") if isinstance(raw, dict) else None
            return f"{name} has nbformat {version!r}; this course uses nbformat 4"
        import nbformat

        try:
            nbformat.validate(nbformat.from_dict(raw))
        except nbformat.ValidationError as err:
            return f"{name} is not a valid nbformat 4 notebook ({str(err).splitlines()[0]})"
    return None


# --- workers --------------------------------------------------------------------------------------

def _worker_env(memory_limit_mb: int | None) -> dict[str, str]:
    env = {**GRADING_ENV, **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    if memory_limit_mb:
        env["RNNCOURSE_MEMORY_LIMIT_MB"] = str(memory_limit_mb)
    return env


class Worker:
    """One ``python -m autograder.grade --worker`` process and its own course folder."""

    def __init__(self, course_root: Path, base: Path, index: int, sqlite: bool,
                 memory_limit_mb: int | None):
        self.course_root = Path(course_root).resolve()
        self.root = base / f"worker-{index}"
        self.sqlite = sqlite
        self.memory_limit_mb = memory_limit_mb
        self.proc: subprocess.Popen | None = None

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in ("source", "submitted"):
            link = self.root / name
            if not link.exists():
                link.symlink_to(self.course_root / name, target_is_directory=True)
        db_url = ""
        if self.sqlite:
            db = self.root / "gradebook.db"
            shutil.copyfile(self.course_root / "gradebook.db", db)
            db_url = f"sqlite:///{db}"
        (self.root / "nbgrader_config.py").write_text(WORKER_CONFIG.format(
            course=str(self.course_root), root=str(self.root), db_url=db_url))

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.grade", "--worker", str(self.root)],
            cwd=self.root, env=_worker_env(self.memory_limit_mb), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)

    def kill(self) -> None:
        """Kill the worker and everything it started (kernels run in sessions of their own)."""
        if self.proc and self.proc.poll() is None:
            for pid in [*_descendants(self.proc.pid), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        self.proc = None

    def run(self, job: Job, timeout: float) -> dict:
        """Autograde one submission; ``{"success", "log", "error"}`` or ``{"timeout": True}``."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        shutil.rmtree(self.root / "autograded" / job.student / job.assignment, ignore_errors=True)
        self.proc.stdin.write(json.dumps({"assignment": job.assignment,
                                          "student": job.student}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return {"timeout": True}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"success": False, "error": f"grading worker exited with code {code}", "log": ""}
        return json.loads(line)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (children first found, deepest last)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def worker_main(root: str) -> None:
    """The worker process: one JSON job per stdin line, one JSON result per stdout line."""
    limit = os.environ.get("RNNCOURSE_MEMORY_LIMIT_MB")
    if limit:
        import resource

        nbytes = int(limit) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))  # inherited by every kernel
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by nbgrader or its libraries stays off the result channel
    os.chdir(root)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.export import load_config

    config = load_config(Path(root))
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            result = api.autograde(job["assignment"], job["student"], force=True, create=True)
        except BaseException as err:  # noqa: BLE001 - whatever happens is this submission's result
            result = {"success": False, "error": f"{type(err).__name__}: {err}", "log": ""}
        out.write(json.dumps({k: result.get(k) for k in ("success", "log", "error")}) + "\n")
        out.flush()


# --- merging into the course gradebook ------------------------------------------------------------

def merge_submission(main_db: str, worker_db: str, job: Job) -> None:
    """Copy one autograded submission's automatic scores and comments into the course gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(worker_db) as wgb, Gradebook(main_db) as gb:
        wsub = wgb.find_submission(job.assignment, job.student)
        gb.update_or_create_student(job.student)
        kwargs = {"timestamp": wsub.timestamp} if wsub.timestamp else {}
        gb.update_or_create_submission(job.assignment, job.student, **kwargs)
        for wnb in wsub.notebooks:
            nb = gb.find_submission_notebook(wnb.name, job.assignment, job.student)
            nb.late_submission_penalty = wnb.late_submission_penalty
            for wgrade in wnb.grades:
                grade = gb.find_grade(wgrade.name, wnb.name, job.assignment, job.student)
                grade.auto_score = wgrade.auto_score
                # as nbgrader's SaveAutoGrades: a manual grade or no automatic score needs review
                grade.needs_manual_grade = (grade.manual_score is not None
                                            or wgrade.auto_score is None)
            for wcomment in wnb.comments:
                comment = gb.find_comment(wcomment.name, wnb.name, job.assignment, job.student)
                comment.auto_comment = wcomment.auto_comment
        gb.db.commit()


def withhold(db_url: str, job: Job, reasons: list[str]) -> None:
    """Flag a submission for review and withhold its points until a person has looked at it.

    nbgrader's own means: the notebook is flagged, every grade is set to a manual score of 0 with
    a comment that says why, and marked as needing manual grading; a grader who finds the code
    harmless sets the scores back in the formgrader.
    """
    from nbgrader.api import Gradebook

    note = "Points withheld until reviewed: " + "; ".join(reasons)
    with Gradebook(db_url) as gb:
        for nb in gb.find_submission(job.assignment, job.student).notebooks:
            nb.flagged = True
            for grade in nb.grades:
                grade.manual_score = 0.0
                grade.needs_manual_grade = True
            for comment in nb.comments:
                comment.manual_comment = note
        gb.db.commit()


def submission_total(db_url: str, job: Job) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        sub = gb.find_submission(job.assignment, job.student)
        return float(sub.score), float(sub.max_score)


def timed_out_cells(notebook: Path) -> list[str]:
    """The cells of an autograded notebook that nbgrader interrupted (grade_id or cell number)."""
    nb = json.loads(notebook.read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError":
                out.append(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                           or f"cell {i}")
    return out


def _failure_reason(result: dict) -> str:
    text = (result.get("log") or "") + "\n" + (result.get("error") or "")
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return "the kernel died (the notebook crashed Python, e.g. os._exit, a segfault or memory)"
    if "inconsistent" in text.lower() or "checksum" in text.lower():
        return "nbgrader refused the notebook: a graded cell's type or metadata was changed"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    return (errors or lines or ["nbgrader failed without a message"])[-1].strip()[:300]


# --- the run --------------------------------------------------------------------------------------

def grade_all(course_root: Path, assignments=None, students=None, workers: int | None = None,
              job_timeout: float = DEFAULT_JOB_TIMEOUT_S,
              memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
              progress: bool = True) -> list[JobResult]:
    """Autograde every submission (of ``assignments``/``students`` if given); see the module doc."""
    from tqdm.auto import tqdm

    course_root = Path(course_root).resolve()
    main_db = db_url_of(course_root)
    sqlite = main_db.startswith("sqlite")
    jobs = find_jobs(course_root, assignments, students)
    results: dict[Job, JobResult] = {}
    todo: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        reason = precheck(course_root, job)
        if reason:
            results[job] = JobResult(job, "invalid", reason)
        else:
            todo.put(job)
    n_workers = max(1, min(workers or os.cpu_count() or 1, todo.qsize() or 1))
    done: queue.Queue[tuple[Job, dict, float, Worker, threading.Event]] = queue.Queue()
    bar = tqdm(total=len(jobs), desc="autograding", unit="submission", disable=not progress)
    bar.update(len(results))

    with tempfile.TemporaryDirectory(prefix="rnncourse-grading-") as tmp:
        pool = [Worker(course_root, Path(tmp), i, sqlite, memory_limit_mb)
                for i in range(n_workers)]

        def serve(worker: Worker) -> None:
            worker.prepare()
            try:
                while True:
                    try:
                        job = todo.get_nowait()
                    except queue.Empty:
                        return
                    t0 = time.perf_counter()
                    result = worker.run(job, job_timeout)
                    merged = threading.Event()  # the worker's files stay put until merged
                    done.put((job, result, time.perf_counter() - t0, worker, merged))
                    merged.wait()
            finally:
                worker.kill()

        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in pool]
        for t in threads:
            t.start()
        pending = len(jobs) - len(results)
        # The merges happen here, in one thread: gradebook writes are serialized.
        while pending:
            job, result, seconds, worker, merged = done.get()
            pending -= 1
            try:
                results[job] = _finish(course_root, main_db, sqlite, worker, job, result,
                                       seconds, job_timeout)
            except Exception as err:  # noqa: BLE001 - one submission's problem, not the run's
                results[job] = JobResult(job, "failed", f"could not record the grades: "
                                         f"{type(err).__name__}: {err}", seconds)
            merged.set()
            bar.update(1)
        for t in threads:
            t.join()
    bar.close()
    return [results[j] for j in jobs]


def _finish(course_root: Path, main_db: str, sqlite: bool, worker: Worker, job: Job,
            result: dict, seconds: float, job_timeout: float) -> JobResult:
    if result.get("timeout"):
        return JobResult(job, "timeout", f"stopped after {job_timeout:g} s (the whole submission's "
                         "limit); its worker and kernel were killed", seconds)
    graded = worker.root / "autograded" / job.student / job.assignment
    if not result.get("success") or not graded.exists():
        return JobResult(job, "failed", _failure_reason(result), seconds)
    if sqlite:
        merge_submission(main_db, f"sqlite:///{worker.root / 'gradebook.db'}", job)
    dest = course_root / "autograded" / job.student / job.assignment
    if dest.exists():
        for p in dest.rglob("*"):  # nbgrader leaves its outputs read-only
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(dest)
    shutil.copytree(graded, dest)
    notes = [f"cell {c} timed out" for nb in sorted(graded.glob("*.ipynb"))
             for c in timed_out_cells(nb)]
    submitted = course_root / "submitted" / job.student / job.assignment
    flags = [f for nb in sorted(submitted.glob("*.ipynb")) for f in scan_submission(nb)]
    if flags:
        withhold(main_db, job, flags)
        notes.append("flagged for review, points withheld: " + "; ".join(flags))
    score, max_score = submission_total(main_db, job)
    return JobResult(job, "graded", "; ".join(notes), seconds, score, max_score, notes)


def format_results(results: list[JobResult]) -> str:
    from autograder.grading import format_table

    table: dict[str, dict[str, tuple[float, float]]] = {}
    for r in results:
        if r.ok:
            table.setdefault(r.job.assignment, {})[r.job.student] = (r.score, r.max_score)
    lines = [format_table(table)] if table else []
    problems = [r for r in results if not r.ok or r.notes]
    if problems:
        lines.append("")
        lines += [f"{r.job.student} / {r.job.assignment}: {r.status}: {r.message}"
                  for r in problems]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*", help="assignments to grade (default: all)")
    parser.add_argument("--course", default=".", help="course folder (default: .)")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel workers (default: one per core)")
    parser.add_argument("--job-timeout", type=float, default=DEFAULT_JOB_TIMEOUT_S,
                        help="wall-clock seconds per submission before it is killed")
    parser.add_argument("--memory-limit", type=int, default=DEFAULT_MEMORY_LIMIT_MB,
                        help="address-space limit of each kernel in MB (0: none)")
    parser.add_argument("--worker", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    t0 = time.perf_counter()
    results = grade_all(Path(args.course), args.assignments or None, args.student, args.workers,
                        args.job_timeout, args.memory_limit or None)
    print(format_results(results))
    n_ok = sum(r.ok for r in results)
    print(f"\n{n_ok}/{len(results)} submissions graded in {time.perf_counter() - t0:.0f} s")
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
