"""Autograde a whole class in parallel, one submission at a time per worker, safely.

``make grade`` (``python -m autograder.grade``) grades every ``submitted/<student>/<assignment>/``
of the course with nbgrader's own autograder, ``--workers`` submissions at a time, and prints a
summary table. What it adds to ``nbgrader autograde``:

* **Intake.** Each submission is read once by :mod:`autograder.intake`, which decides what is
  graded (the named notebook, or the copy the student worked in), normalizes it (encoding,
  nbformat, cell ids, nbgrader metadata nbgrader would crash on, ``timestamp.txt`` in UTC) into a
  private copy, and gives every submission it cannot grade a one-line reason. The instructor's
  ``submitted/`` folder is only read.
* **A course that is ready.** A missing SQLite gradebook is created, and an assignment the
  gradebook does not know yet is recorded from ``source/`` (nbgrader ``generate_assignment`` into
  a scratch folder: ``release/`` is left alone), so a fresh clone grades without ``make release``.
* **Parallel and safe for SQLite.** Each worker is a separate process with a course folder of its
  own (``source/`` and the staged submissions linked, ``autograded/`` and, for SQLite, a copy of
  the gradebook its own), so no two processes ever write one SQLite file (nbgrader #174). The
  parent merges each finished submission into the course gradebook, one at a time, through
  nbgrader's Gradebook API: the automatic scores and comments of that submission only; manual
  grades already in the gradebook are kept, as ``nbgrader autograde`` keeps them. With a
  PostgreSQL ``db_url`` (large courses, see the README) the workers write to the server directly.
* **Bounded.** nbgrader interrupts a cell after ``Execute.timeout`` seconds and goes on with the
  notebook; on top of that every submission has a wall-clock limit (``--job-timeout``) after which
  its worker and kernel are killed (every process of that worker, found with psutil) and a fresh
  worker takes the next one, and the kernel's address space is limited (``--memory-limit``), so a
  memory blow-up ends in a ``MemoryError`` instead of taking the machine down. Outputs made while
  grading are bounded too (:func:`bound_outputs`): an oversized image or text is replaced by a
  line that says what was removed.
* **Never a hang.** Whatever happens to a worker (it cannot start, its process dies, it answers
  garbage, its thread raises), the submission it had gets a result that says so, and when no
  worker is left the submissions still waiting are reported as not graded.
* **Clear results.** Every submission ends as graded (the final score after any late penalty,
  with notes), invalid (not graded: the reason), failed or timeout. The same text is written to
  the submission's grading record (:mod:`autograder.intake`), which the export and the feedback
  show too. A submission that cannot be graded leaves the gradebook as it was; if an earlier
  submission was graded, the text says that the grades shown are that one's.
* **Reviews survive.** A submission the integrity scan flags has its points withheld for review;
  regrading the same submission (same notebook bytes) does not withhold them again, so a
  grader's decision stays.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autograder import distributed, intake, sandbox
from autograder.config import course_db, load_config
from autograder.course import COMPANIONS, GRADING_ENV, REPO_ROOT, nbgrader_meta

MAX_NOTEBOOK_BYTES = intake.MAX_NOTEBOOK_BYTES
DEFAULT_JOB_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_LIMIT_MB = 4096
# Outputs of the autograded notebook (and so of the feedback page): one output item (an image, a
# text) above MAX_OUTPUT_BYTES is replaced by a note; then, while a notebook's outputs together
# are above MAX_OUTPUTS_BYTES, the largest remaining ones are.
MAX_OUTPUT_BYTES = 2**20
MAX_OUTPUTS_BYTES = 8 * 2**20
TOKEN_VARIABLE = "RNNCOURSE_GRADING_WORKER"

WORKER_CONFIG = '''"""nbgrader config of a grading worker (made by autograder.grade; throw-away)."""
from traitlets.config.loader import PyFileConfigLoader

c = get_config()  # noqa: F821
c.merge(PyFileConfigLoader("nbgrader_config.py", path={course!r}).load_config())
c.CourseDirectory.root = {root!r}
if {db_url!r}:
    c.CourseDirectory.db_url = {db_url!r}
# The kernel's sandbox (autograder/sandbox.py): its own uid, and the job's limits as a backstop.
c.SandboxedKernelManager.enabled = {sandbox!r}
c.SandboxedKernelManager.uid = {uid!r}
c.SandboxedKernelManager.wall_s = {wall_s!r}
c.SandboxedKernelManager.cpu_s = {cpu_s!r}
c.SandboxedKernelManager.memory_mb = {memory_mb!r}
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
    score: float | None = None  # before the late penalty
    max_score: float | None = None
    notes: list[str] = field(default_factory=list)
    penalty: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "graded"

    @property
    def final(self) -> float | None:
        """The score after the late penalty."""
        return None if self.score is None else self.score - self.penalty


class Results(list):
    """The results of :func:`grade_all`, in job order, plus notes about the course itself
    (a gradebook created, an assignment recorded)."""

    notes: list[str]

    def __init__(self, items=(), notes=()):
        super().__init__(items)
        self.notes = list(notes)


# --- the course -----------------------------------------------------------------------------------


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


def _sqlite_path(db_url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database)
    return None


def _has_schema(db_url: str) -> bool:
    """Whether the database has nbgrader's tables (False for a missing SQLite file)."""
    from sqlalchemy import create_engine, inspect

    path = _sqlite_path(db_url)
    if path is not None and not path.is_file():
        return False
    engine = create_engine(db_url)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def ensure_gradebook(course_root: Path, db_url: str, course_id: str, assignments,
                     scratch: Path) -> tuple[list[str], dict[str, str]]:
    """Make the gradebook ready to grade ``assignments``: ``(notes, {assignment: why not})``.

    A missing SQLite file is created (nbgrader's Gradebook makes the schema). An assignment the
    gradebook does not have is recorded from ``source/`` as ``make release`` would, with nbgrader
    ``generate_assignment`` writing into ``scratch`` instead of ``release/``.
    """
    from nbgrader.api import Gradebook, MissingEntry

    notes, failed = [], {}
    path = _sqlite_path(db_url)
    if (path is not None and not path.is_file()) or not _has_schema(db_url):
        # In a child with the venv's bin/ on PATH: nbgrader runs `alembic` to stamp the schema.
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from nbgrader.api import Gradebook; "
             "Gradebook(sys.argv[1], sys.argv[2]).close()", db_url, course_id or "default_course"],
            env=_worker_env(None), capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            if path is not None:
                path.unlink(missing_ok=True)  # no half-made schema left behind
            raise RuntimeError("no gradebook, and creating one failed: " + _failure_reason(
                {"log": proc.stderr, "error": ""}))
        notes.append(f"created the gradebook {path or db_url} (there was none)")
    with Gradebook(db_url, course_id or "default_course") as gb:
        missing = []
        for assignment in sorted(set(assignments)):
            try:
                if not gb.find_assignment(assignment).notebooks:
                    missing.append(assignment)
            except MissingEntry:
                missing.append(assignment)
    for assignment in missing:
        source = Path(course_root) / "source" / assignment
        if COMPANIONS.get(assignment) and not (source / "course_layers.py").is_file():
            from autograder.companions import write_companion

            write_companion(Path(course_root) / "source", assignment)
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
             f"--CourseDirectory.release_directory={scratch / 'release'}"],
            cwd=course_root, env=_worker_env(None), capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            failed[assignment] = (f"the gradebook has no assignment {assignment} and recording "
                                  "it from source/ failed: " + _failure_reason(
                                      {"log": proc.stderr, "error": ""}))
        else:
            notes.append(f"recorded {assignment} in the gradebook from source/ (as make release "
                         "does; release/ untouched)")
    return notes, failed


# --- workers --------------------------------------------------------------------------------------

def _worker_env(memory_limit_mb: int | None, token: str | None = None) -> dict[str, str]:
    env = {**GRADING_ENV, **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    if memory_limit_mb:
        env["RNNCOURSE_MEMORY_LIMIT_MB"] = str(memory_limit_mb)
    if token:
        env[TOKEN_VARIABLE] = token  # inherited by every kernel the worker starts
    return env


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


class Worker:
    """One ``python -m autograder.grade --worker`` process and its own course folder."""

    def __init__(self, course_root: Path, base: Path, index: int, sqlite: bool,
                 memory_limit_mb: int | None, submitted: Path | None = None,
                 isolated: bool = True, job_timeout: float = DEFAULT_JOB_TIMEOUT_S):
        self.course_root = Path(course_root).resolve()
        self.index = index
        self.isolated = isolated
        self.job_timeout = job_timeout
        self.root = base / f"worker-{index}"
        self.sqlite = sqlite
        self.memory_limit_mb = memory_limit_mb
        self.submitted = Path(submitted) if submitted else self.course_root / "submitted"
        self.proc: subprocess.Popen | None = None
        self.token = uuid.uuid4().hex
        self.log = self.root / "worker.log"
        self._buffer = b""
        self._lock = threading.Lock()

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        links = {"source": self.course_root / "source", "submitted": self.submitted}
        for name, target in links.items():
            link = self.root / name
            if not link.exists():
                link.symlink_to(target, target_is_directory=True)
        db_url = ""
        if self.sqlite:
            db = self.root / "gradebook.db"
            shutil.copyfile(self.course_root / "gradebook.db", db)
            db_url = f"sqlite:///{db}"
        uid = sandbox.default_uid(self.index)
        (self.root / "nbgrader_config.py").write_text(WORKER_CONFIG.format(
            course=str(self.course_root), root=str(self.root), db_url=db_url,
            sandbox=self.isolated, uid=-1 if uid is None else uid,
            wall_s=self.job_timeout + 30, cpu_s=int(self.job_timeout) + 30,
            memory_mb=self.memory_limit_mb or 0))

    def start(self) -> None:
        self._buffer = b""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.grade", "--worker", str(self.root)],
                cwd=self.root, env=_worker_env(self.memory_limit_mb, self.token),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)

    def processes(self) -> list:
        """Every live process of this worker: its process tree, and any process (a kernel whose
        parent died, say) that carries this worker's token in its environment."""
        import psutil

        found = {}
        if self.proc is not None:
            try:
                top = psutil.Process(self.proc.pid)
                found[top.pid] = top
                for child in top.children(recursive=True):
                    found[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get(TOKEN_VARIABLE) == self.token:
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
        return list(found.values())

    def kill(self) -> None:
        """Kill the worker and everything it started (kernels run in sessions of their own)."""
        import psutil

        with self._lock:
            for proc in self.processes():
                try:
                    proc.kill()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
                for pipe in (self.proc.stdin, self.proc.stdout):
                    try:
                        if pipe:
                            pipe.close()
                    except OSError:
                        pass
            self.proc = None

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        tail = [ln.strip() for ln in text if ln.strip()][-lines:]
        return (": " + " | ".join(tail))[:400] if tail else ""

    def _read_line(self, deadline: float) -> bytes | None:
        """One line from the worker; ``b""`` at end of file, None when the deadline passed."""
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line + b"\n"

    def _gone(self, what: str) -> dict:
        try:
            code = self.proc.wait(timeout=5) if self.proc else None
        except subprocess.TimeoutExpired:  # its output closed, the process still there
            code = None
        self.kill()
        tail = self._log_tail()
        how = _exit_text(code) if code is not None else "its output closed"
        return {"success": False, "log": "", "error": f"the grading worker {what} ({how}){tail}"}

    def run(self, job: Job, timeout: float) -> dict:
        """Autograde one submission; ``{"success", "log", "error"}`` or ``{"timeout": True}``."""
        if self.proc is None or self.proc.poll() is not None:
            self.kill()
            self.start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        shutil.rmtree(self.root / "autograded" / job.student / job.assignment, ignore_errors=True)
        deadline = time.monotonic() + timeout
        try:
            self.proc.stdin.write(json.dumps({"assignment": job.assignment,
                                              "student": job.student}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:  # BrokenPipeError: it died before it took the job
            return self._gone("stopped before it took the submission")
        line = self._read_line(deadline)
        if line is None:
            self.kill()
            return {"timeout": True}
        if not line:
            return self._gone("stopped while grading")
        try:
            result = json.loads(line)
            if not isinstance(result, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            self.kill()
            return {"success": False, "log": "", "error": "the grading worker answered "
                    f"something that is not a result: {line[:200]!r}"}
        return result


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


    config = load_config(Path(root))
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    for line in sys.stdin:
        try:
            job = json.loads(line)
            result = api.autograde(job["assignment"], job["student"], force=True, create=True)
        except BaseException as err:  # noqa: BLE001 - whatever happens is this submission's result
            result = {"success": False, "error": f"{type(err).__name__}: {err}", "log": ""}
        out.write(json.dumps({k: result.get(k) for k in ("success", "log", "error")},
                             default=str) + "\n")
        out.flush()


def grade_packed(assignment: str, student: str, submission: bytes, course_files: dict,
                 settings: dict) -> dict:
    """A Dask task: autograde one submission on this worker (see autograder/distributed.py).

    ``course_files``: ``{"nbgrader_config.py": bytes, "gradebook.db": bytes (SQLite only)}``;
    ``settings``: ``job_timeout`` (s), ``memory_limit_mb``, ``isolated``, ``sqlite``, ``stop``
    (the name of the Dask Event that cancels the run). Returns ``{"result": {success, log,
    error} or {timeout}, "seconds", "autograded": bytes or None, "gradebook": bytes or None}``.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnncourse-dask-") as tmp:
        tmp = Path(tmp)
        course = tmp / "course"
        (course / "source").mkdir(parents=True)
        for name, data in course_files.items():
            (course / name).write_bytes(data)
        distributed.unpack(submission, tmp / "submitted" / student / assignment)
        worker = Worker(course, tmp, os.getpid() % 1000, settings["sqlite"],
                        settings["memory_limit_mb"], tmp / "submitted", settings["isolated"],
                        settings["job_timeout"])
        worker.prepare()
        done = threading.Event()
        distributed.watch_stop(settings["stop"], worker, done)
        try:
            result = worker.run(Job(assignment, student), settings["job_timeout"])
        finally:
            done.set()
            worker.kill()
        graded = worker.root / "autograded" / student / assignment
        gradebook = worker.root / "gradebook.db"
        return {"result": result, "seconds": time.perf_counter() - t0,
                "autograded": distributed.pack(graded) if graded.is_dir() else None,
                "gradebook": gradebook.read_bytes() if settings["sqlite"] else None}


# --- merging into the course gradebook ------------------------------------------------------------

def merge_submission(main_db: str, worker_db: str, job: Job) -> None:
    """Copy one autograded submission's automatic scores and comments into the course gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(worker_db) as wgb, Gradebook(main_db) as gb:
        wsub = wgb.find_submission(job.assignment, job.student)
        gb.update_or_create_student(job.student)
        gb.update_or_create_submission(job.assignment, job.student, timestamp=wsub.timestamp)
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


def has_manual_grades(db_url: str, job: Job) -> bool:
    """Whether a person (or an earlier :func:`withhold`) has set manual scores on a submission."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission(job.assignment, job.student)
        except MissingEntry:
            return False
        return any(g.manual_score is not None for nb in sub.notebooks for g in nb.grades)


def submission_total(db_url: str, job: Job) -> tuple[float, float]:
    return submission_state(db_url, job)[:2]


def submission_state(db_url: str, job: Job) -> tuple[float, float, float, float] | None:
    """``(score before the penalty, max_score, late penalty, seconds late)`` of a submission in
    the gradebook, None when it has none."""
    from nbgrader.api import Gradebook, MissingEntry

    if not _has_schema(db_url):
        return None  # no gradebook yet (and Gradebook() would create one)
    with Gradebook(db_url) as gb:
        try:
            sub = gb.find_submission(job.assignment, job.student)
        except MissingEntry:
            return None
        return (float(sub.score), float(sub.max_score),
                float(sub.late_submission_penalty or 0), float(sub.total_seconds_late or 0))


def timed_out_cells(notebook: Path) -> list[str]:
    """The cells of an autograded notebook that nbgrader interrupted (grade_id or cell number)."""
    nb = json.loads(notebook.read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError":
                out.append(nbgrader_meta(cell).get("grade_id")
                           or f"cell {i}")
    return out


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def _describe(mime: str, value) -> str:
    """``a 3000x3000 image/png`` for a PNG, else the MIME type."""
    if mime == "image/png" and isinstance(value, str):
        try:
            head = base64.b64decode(value[:64] + "=" * (-len(value[:64]) % 4))
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24],
                                                                                     "big")
                return f"a {width}x{height} PNG image"
        except ValueError:
            pass
    return f"a {mime} output"


def _output_size(output: dict) -> int:
    return len(json.dumps(output))


def _removed(what: str, size: int) -> dict:
    return {"output_type": "stream", "name": "stdout",
            "text": f"[output removed when grading: {what} of {_size(size)}; outputs over "
                    f"{_size(MAX_OUTPUT_BYTES)} are not kept]\n"}


def bound_outputs(notebook: Path, max_output: int = MAX_OUTPUT_BYTES,
                  max_total: int = MAX_OUTPUTS_BYTES) -> list[str]:
    """Replace the oversized outputs of an autograded notebook by a line that says what was
    removed (which the feedback shows); notes for the summary."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    removed = []
    sized = []
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs") or []
        for k, output in enumerate(outputs):
            size = _output_size(output)
            if size > max_output:
                data = output.get("data") or {}
                big = max(data, key=lambda m: len(json.dumps(data[m])), default=None)
                what = (_describe(big, data[big]) if big
                        else f"a {output.get('output_type', 'output')} output")
                outputs[k] = _removed(what, size)
                removed.append((what, size))
            else:
                sized.append((size, cell, k))
    total = sum(s for s, _, _ in sized)
    for size, cell, k in sorted(sized, key=lambda t: -t[0]):
        if total <= max_total:
            break
        output = cell["outputs"][k]
        what = f"a {output.get('output_type', 'output')} output"
        cell["outputs"][k] = _removed(what, size)
        removed.append((what, size))
        total -= size
    if not removed:
        return []
    notebook.chmod(0o644)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    listed = ", ".join(f"{w} of {_size(s)}" for w, s in removed[:3])
    more = f" and {len(removed) - 3} more" if len(removed) > 3 else ""
    return [f"{len(removed)} output(s) of {notebook.name} made while grading were too large "
            f"and removed ({listed}{more}; limit {_size(max_output)} each)"]


_EXCEPTION_LINE = re.compile(r"^\s*((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit|Interrupt)"
                             r"\b.*)$")


def _failure_reason(result: dict) -> str:
    """One line saying why nbgrader did not grade a submission, from its log and error."""
    text = (result.get("log") or "") + "\n" + (result.get("error") or "")
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return "the kernel died (the notebook crashed Python, e.g. os._exit, a segfault or memory)"
    if result.get("error", "").startswith("the grading worker"):
        return result["error"]
    m = re.search(r"Inconsistent checksums for cell (\S+)", text)
    if m:
        return (f"nbgrader could not put back the instructor's version of cell {m.group(1)} "
                "(its type or metadata was changed)")
    m = re.search(r"Duplicate grade id: (\S+)", text)
    if m:
        return f"graded cell {m.group(1)} occurs more than once (a copied graded cell)"
    m = re.search(r"No assignment with ID '([^']+)' exists", text)
    if m:
        return f"the gradebook has no assignment {m.group(1)} (run make release)"
    if "Invalid timestamp string" in text:
        return "nbgrader cannot read timestamp.txt"
    if "No notebooks were matched" in text:
        return "nbgrader found no notebook to grade (an id or file name it cannot match)"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    raised = [m.group(1) for ln in lines if (m := _EXCEPTION_LINE.match(ln))
              and "Traceback" not in ln]
    if raised:
        return f"nbgrader failed: {raised[-1].strip()}"[:300]
    boring = ("Please see the", "There was an error processing")
    errors = [ln for ln in lines if ("ERROR" in ln or "Error" in ln)
              and not any(b in ln for b in boring)]
    return (errors or lines or ["nbgrader failed without a message"])[-1].strip()[:300]


# --- the run --------------------------------------------------------------------------------------

def grade_all(course_root: Path, assignments=None, students=None, workers: int | None = None,
              job_timeout: float = DEFAULT_JOB_TIMEOUT_S,
              memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
              progress: bool = True, isolated: bool = True,
              scheduler: str | None = None) -> Results:
    """Autograde every submission (of ``assignments``/``students`` if given); see the module doc.

    SQLAlchemy's SAWarnings, which nbgrader's Gradebook API raises on every merge, are noise in
    the instructor's terminal (they interleave with the progress bar); they are silenced here.
    With ``scheduler`` (a Dask scheduler's address) the submissions are graded on that cluster's
    workers (:mod:`autograder.distributed`) instead of ``workers`` local processes.
    """
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SAWarning)
        return _grade_all(course_root, assignments, students, workers, job_timeout,
                          memory_limit_mb, progress, isolated, scheduler)


def _grade_all(course_root: Path, assignments, students, workers: int | None,
               job_timeout: float, memory_limit_mb: int | None, progress: bool,
               isolated: bool, scheduler: str | None) -> Results:
    from tqdm.auto import tqdm

    course_root = Path(course_root).resolve()
    main_db, course_id = course_db(course_root)
    sqlite = main_db.startswith("sqlite")
    course_tz = intake.course_timezone(load_config(course_root))
    jobs = find_jobs(course_root, assignments, students)
    results: dict[Job, JobResult] = {}
    subs: dict[Job, intake.Submission] = {}
    infos: dict[str, intake.AssignmentInfo | None] = {}
    todo: queue.Queue[Job] = queue.Queue()
    course_notes: list[str] = []
    why = sandbox.unavailable() if isolated else "--no-sandbox"
    if why and jobs:
        course_notes.append(f"STUDENT CODE WAS NOT ISOLATED: kernels ran with your rights ({why})")
    bar = tqdm(total=len(jobs), desc="autograding", unit="submission", disable=not progress)

    with tempfile.TemporaryDirectory(prefix="rnncourse-grading-") as tmp:
        tmp = Path(tmp)
        stage = tmp / "submitted"
        stage.mkdir()
        for job in jobs:
            if job.assignment not in infos:
                infos[job.assignment] = intake.assignment_info(course_root, job.assignment)
            try:
                sub = intake.take(course_root, job.assignment, job.student, stage,
                                  course_tz=course_tz, info=infos[job.assignment])
            except Exception as err:  # noqa: BLE001 - one submission's problem, not the run's
                sub = intake.Submission(job.assignment, job.student, "invalid",
                                        f"could not be read: {type(err).__name__}: {err}")
            subs[job] = sub
            if not sub.ok:
                results[job] = _not_graded(course_root, main_db, sub, "invalid", sub.reason)
                bar.update(1)
        ready = [job for job in jobs if job not in results]
        if ready:
            try:
                notes, failed = ensure_gradebook(
                    course_root, main_db, course_id, {j.assignment for j in ready}, tmp)
                course_notes += notes
            except Exception as err:  # noqa: BLE001 - reported for every submission
                failed = {j.assignment: f"the gradebook {main_db} cannot be used: "
                          f"{type(err).__name__}: {err}" for j in ready}
            for job in ready:
                if job.assignment in failed:
                    results[job] = _not_graded(course_root, main_db, subs[job], "failed",
                                               failed[job.assignment])
                    bar.update(1)
                else:
                    todo.put(job)
        if scheduler and not todo.empty():
            _run_dask(course_root, main_db, sqlite, todo, subs, results, job_timeout,
                      memory_limit_mb, tmp, stage, bar, isolated, scheduler)
        else:
            _run_workers(course_root, main_db, sqlite, todo, subs, results, workers,
                         job_timeout, memory_limit_mb, tmp, stage, bar, isolated)
    bar.close()
    out = []
    for job in jobs:
        if job not in results:  # cannot happen; never lose a submission silently
            results[job] = _not_graded(course_root, main_db, subs[job], "failed",
                                       "not graded: its grading worker was lost")
        out.append(results[job])
    return Results(out, course_notes)


def _run_workers(course_root, main_db, sqlite, todo, subs, results, workers, job_timeout,
                 memory_limit_mb, tmp, stage, bar, isolated) -> None:
    pending = set(todo.queue)
    if not pending:
        return
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(pending)))
    done: queue.Queue[tuple[Job, dict, float, Worker, threading.Event]] = queue.Queue()
    problems: list[str] = []  # why workers stopped for good
    stop = threading.Event()
    pool = [Worker(course_root, tmp, i, sqlite, memory_limit_mb, stage, isolated, job_timeout)
            for i in range(n_workers)]

    def serve(worker: Worker, index: int) -> None:
        try:
            worker.prepare()
        except BaseException as err:  # noqa: BLE001 - reported, never a hang
            problems.append(f"worker {index} could not start: {type(err).__name__}: {err}")
            return
        try:
            while not stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                try:
                    result = worker.run(job, job_timeout)
                except BaseException as err:  # noqa: BLE001 - this submission's result
                    worker.kill()
                    result = {"success": False, "log": "", "error": "the grading worker failed: "
                              f"{type(err).__name__}: {err}"}
                merged = threading.Event()  # the worker's files stay put until merged
                done.put((job, result, time.perf_counter() - t0, worker, merged))
                while not merged.wait(1.0):
                    if stop.is_set():
                        return
        except BaseException as err:  # noqa: BLE001
            problems.append(f"worker {index} stopped: {type(err).__name__}: {err}")
        finally:
            worker.kill()

    threads = [threading.Thread(target=serve, args=(w, i), daemon=True)
               for i, w in enumerate(pool)]
    try:
        for t in threads:
            t.start()
        # The merges happen here, in one thread: gradebook writes are serialized.
        while pending:
            try:
                job, result, seconds, worker, merged = done.get(timeout=0.5)
            except queue.Empty:
                if any(t.is_alive() for t in threads) or not done.empty():
                    continue
                why = "; ".join(dict.fromkeys(problems)) or "every grading worker stopped"
                for job in sorted(pending, key=lambda j: (j.assignment, j.student)):
                    results[job] = _not_graded(course_root, main_db, subs[job], "failed",
                                               f"not graded: {why}")
                    bar.update(1)
                pending.clear()
                break
            pending.discard(job)
            try:
                results[job] = _record(course_root, main_db, sqlite, worker, job, result,
                                       seconds, job_timeout, subs[job])
            finally:
                merged.set()
                bar.update(1)
    finally:
        stop.set()
        for w in pool:
            w.kill()
        for t in threads:
            t.join(timeout=10)


def _run_dask(course_root, main_db, sqlite, todo, subs, results, job_timeout, memory_limit_mb,
              tmp, stage, bar, isolated, scheduler) -> None:
    """The jobs of ``todo`` graded on a Dask cluster, merged here one at a time."""
    jobs = list(todo.queue)
    files = {}
    if (course_root / "nbgrader_config.py").is_file():
        files["nbgrader_config.py"] = (course_root / "nbgrader_config.py").read_bytes()
    if sqlite:
        files["gradebook.db"] = _sqlite_path(main_db).read_bytes()
    settings = {"job_timeout": job_timeout, "memory_limit_mb": memory_limit_mb,
                "isolated": isolated, "sqlite": sqlite}

    def finish(job, remote, result, seconds):
        results[job] = _record(course_root, main_db, sqlite, remote, job, result, seconds,
                               job_timeout, subs[job])
        bar.update(1)

    def fail(job, reason, seconds):
        results[job] = _not_graded(course_root, main_db, subs[job], "failed", reason, seconds)
        bar.update(1)

    try:
        distributed.run_on_dask(scheduler, grade_packed, jobs, stage, files, settings, finish,
                                fail, tmp)
    except (OSError, TimeoutError) as err:
        for job in jobs:
            if job not in results:
                fail(job, f"not graded: the Dask scheduler {scheduler} cannot be reached: "
                     f"{type(err).__name__}: {err}", 0.0)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _late_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours / 24:.1f} days"


def _not_graded(course_root: Path, main_db: str, sub: intake.Submission, status: str,
                reason: str, seconds: float = 0.0) -> JobResult:
    """The result and grading record of a submission that was not graded this time."""
    job = Job(sub.assignment, sub.student)
    old = intake.read_record(course_root, sub.student, sub.assignment) or {}
    previous = None
    try:
        previous = submission_state(main_db, job)
    except Exception:  # noqa: BLE001 - no gradebook yet: nothing graded before
        previous = None
    notes = list(sub.notes)
    score = max_score = None
    penalty = 0.0
    if previous is not None:
        score, max_score, penalty = previous[0], previous[1], previous[2]
        when = (old.get("graded") or {}).get("at")
        notes.append(f"the grades shown are the previous submission's ({score - penalty:g}/"
                     f"{max_score:g}{', graded ' + when if when else ''})")
    text = intake.message(reason, notes)
    intake.write_record(course_root, {
        **{k: old.get(k) for k in ("graded", "withheld")},
        **intake.submission_dict(sub),
        "status": status, "reason": reason, "notes": notes, "message": text, "at": _now(),
        "score": score, "max_score": max_score, "penalty": penalty,
    })
    return JobResult(job, status, text, seconds, score, max_score, notes, penalty)


def _record(course_root: Path, main_db: str, sqlite: bool, worker, job: Job, result: dict,
            seconds: float, job_timeout: float, sub: intake.Submission) -> JobResult:
    """:func:`_finish`, and a clear result if recording the grades fails: one submission's
    problem, never the run's. ``worker``: a local :class:`Worker` or the files of a Dask task
    (:class:`autograder.distributed.RemoteFiles`), anything with the folder ``root``."""
    try:
        return _finish(course_root, main_db, sqlite, worker, job, result, seconds, job_timeout,
                       sub)
    except Exception as err:  # noqa: BLE001
        return _not_graded(course_root, main_db, sub, "failed", "could not record the grades: "
                           f"{type(err).__name__}: {err}", seconds)


def _finish(course_root: Path, main_db: str, sqlite: bool, worker: Worker, job: Job,
            result: dict, seconds: float, job_timeout: float,
            sub: intake.Submission) -> JobResult:
    if result.get("timeout"):
        return _not_graded(course_root, main_db, sub, "timeout",
                           f"stopped after {job_timeout:g} s (the whole submission's limit); "
                           "its worker and kernel were killed", seconds)
    graded = worker.root / "autograded" / job.student / job.assignment
    if not result.get("success") or not graded.exists():
        return _not_graded(course_root, main_db, sub, "failed", _failure_reason(result), seconds)
    notes = list(sub.notes)
    for nb in sorted(graded.glob("*.ipynb")):
        notes += bound_outputs(nb)
    if sqlite:
        merge_submission(main_db, f"sqlite:///{worker.root / 'gradebook.db'}", job)
    dest = course_root / "autograded" / job.student / job.assignment
    if dest.exists():
        for p in dest.rglob("*"):  # nbgrader leaves its outputs read-only
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(dest)
    shutil.copytree(graded, dest)
    notes += [f"cell {c} timed out" for nb in sorted(graded.glob("*.ipynb"))
              for c in timed_out_cells(nb)]
    old = intake.read_record(course_root, job.student, job.assignment) or {}
    withheld = old.get("withheld")
    if sub.flags:
        if withheld == sub.fingerprint and has_manual_grades(main_db, job):
            notes.append("flagged for review, unchanged since it was withheld: the review in "
                         "the gradebook is kept: " + "; ".join(sub.flags))
        else:
            withhold(main_db, job, sub.flags)
            withheld = sub.fingerprint
            notes.append("flagged for review, points withheld: " + "; ".join(sub.flags))
    score, max_score, penalty, late = submission_state(main_db, job)
    if late > 0:
        notes.append(f"submitted {_late_text(late)} after the due date: late penalty "
                     f"{penalty:g} ({score:g}/{max_score:g} before the penalty)")
    text = intake.message("", notes)
    now = _now()
    intake.write_record(course_root, {
        **intake.submission_dict(sub),
        "status": "graded", "reason": "", "notes": notes, "message": text, "at": now,
        "score": score, "max_score": max_score, "penalty": penalty, "withheld": withheld,
        "graded": {"at": now, "fingerprint": sub.fingerprint, "message": text},
    })
    return JobResult(job, "graded", text, seconds, score, max_score, notes, penalty)


def format_results(results: list[JobResult]) -> str:
    from autograder.grading import format_table

    table: dict[str, dict[str, tuple[float, float]]] = {}
    for r in results:
        if r.ok:
            table.setdefault(r.job.assignment, {})[r.job.student] = (r.final, r.max_score)
    lines = [f"note: {n}" for n in getattr(results, "notes", [])]
    if lines:
        lines.append("")
    if table:
        lines.append(format_table(table))
    failed = [r for r in results if not r.ok]
    noted = [r for r in results if r.ok and r.notes]
    for title, group in ((f"Not graded ({len(failed)}):", failed),
                         (f"Graded, with notes ({len(noted)}):", noted)):
        if group:
            lines += ["", title]
            lines += [f"{r.job.student} / {r.job.assignment}: {r.status}: {r.message}"
                      for r in group]
    return "\n".join(lines)


CTRL_C_DEADLINE_S = 30


def _end_soon_after_ctrl_c(deadline_s: float = CTRL_C_DEADLINE_S) -> None:
    """Ctrl-C raises KeyboardInterrupt as usual (on its way out the run stops every running
    grade: local workers, or the Dask tasks through their stop Event), and the process ends
    ``deadline_s`` seconds later whatever is still waiting (a Dask client closing, a thread at
    interpreter exit), so ``make grade`` never hangs after Ctrl-C. A second Ctrl-C ends it at
    once. Written here because neither Python nor Dask bounds the time a shutdown may take."""

    def handler(signum, frame):
        def hard_exit():
            time.sleep(deadline_s)
            print(f"make grade: still shutting down {deadline_s:.0f} s after Ctrl-C; exiting",
                  file=sys.stderr, flush=True)
            os._exit(130)

        threading.Thread(target=hard_exit, daemon=True).start()
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


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
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="grade on a Dask cluster (e.g. tcp://10.0.0.5:8786) instead of "
                        "local workers; see autograder/distributed.py")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run kernels without the sandbox (only to measure its cost; "
                        "student code then runs with your rights)")
    parser.add_argument("--worker", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    t0 = time.perf_counter()
    _end_soon_after_ctrl_c()
    try:
        results = grade_all(Path(args.course), args.assignments or None, args.student,
                            args.workers, args.job_timeout, args.memory_limit or None,
                            isolated=not args.no_sandbox, scheduler=args.scheduler)
    except KeyboardInterrupt:
        print("make grade: interrupted (Ctrl-C); the submissions graded before it are in the "
              "gradebook, the others were stopped and not recorded", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a clear line, not a traceback, for the instructor
        print(f"make grade: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(format_results(results))
    n_ok = sum(r.ok for r in results)
    print(f"\n{n_ok}/{len(results)} submissions graded in {time.perf_counter() - t0:.0f} s")
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
