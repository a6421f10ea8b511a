"""``make grade`` on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

The engine is `Dask distributed <https://distributed.dask.org>`_: its scheduler hands out tasks,
re-runs a task whose worker died on another worker, and gives up on a task that killed
``distributed.scheduler.allowed-failures`` workers (3 by default) with ``KilledWorker``. One task
(:func:`autograder.grade.grade_packed`) gets a submission's *bytes* (its staged
folder as a tar archive, after :mod:`autograder.intake` on the instructor's machine) and the
course's ``nbgrader_config.py`` (and, for SQLite, a copy of the gradebook, sent once), and
grades it on the Dask worker exactly as a local worker does: :class:`autograder.grade.Worker`, a
``python -m autograder.grade --worker`` process with nbgrader's autograde, the kernel in the
sandbox (:mod:`autograder.sandbox`), the job's wall-clock and memory limits. It sends back the
autograded folder (a tar archive) and, for SQLite, the worker's gradebook; the instructor's side
merges them into the course gradebook one at a time, as for local workers. With a PostgreSQL
gradebook the workers write to the server themselves.

Nothing is merged before a task has finished, so a worker that dies mid-grade loses nothing and
counts nothing twice: the scheduler runs the task again elsewhere and only that run is merged.
Ctrl-C on the instructor's side sets a Dask ``Event`` that every running task watches: each kills
its grading process and kernel (every process of it, psutil), so nothing is left running.

A Dask worker needs what a local worker needs: this repository installed (``pip install -e .``,
for ``autograder`` and ``rnncourse``, and the source notebooks of the assignments it grades for
the hidden tests' reference), the Python packages of ``pyproject.toml``, and ``bwrap`` for the
sandbox (``make system-deps``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

STOP_EVENT_PREFIX = "rnncourse-stop-"
INTERRUPTED_CLOSE_S = 10  # seconds the client may take to close after Ctrl-C


def pack(folder: Path) -> bytes:
    """The files under ``folder`` as an uncompressed tar archive (bytes); symlinks are left out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Extract an archive made by :func:`pack` into ``dest`` (regular files only)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


def watch_stop(name: str, worker, done: threading.Event) -> None:
    """Kill ``worker`` (its process and kernel) when the instructor's side sets Event ``name``.

    Call it in the task's own thread: the Event gets the worker's client explicitly there
    (``get_client``), because the watching thread is outside the worker's context, where an
    Event without a client raises "not properly initialized" on every wait."""
    try:
        from distributed import Event, get_client

        event = Event(name, client=get_client())
    except Exception:  # noqa: BLE001 - not in a Dask worker (called directly): nothing to watch
        return

    def watch():
        while not done.is_set():
            try:
                if event.wait(timeout=1):
                    worker.kill()
                    return
            except Exception:  # noqa: BLE001 - the scheduler went away: the job limit still holds
                return

    threading.Thread(target=watch, daemon=True).start()


def course_copy(files: dict) -> dict:
    """The course's files, as a Dask task's result (see :func:`run_on_dask`)."""
    return files


class RemoteFiles:
    """What :func:`autograder.grade._finish` reads of a worker: a folder with ``autograded/``
    and ``gradebook.db``, here unpacked from a task's result on the instructor's side."""

    def __init__(self, base: Path, job, out: dict):
        self.root = Path(base) / f"remote-{uuid.uuid4().hex[:8]}"
        self.root.mkdir(parents=True)
        if out.get("autograded") is not None:
            unpack(out["autograded"], self.root / "autograded" / job.student / job.assignment)
        if out.get("gradebook") is not None:
            (self.root / "gradebook.db").write_bytes(out["gradebook"])


def run_on_dask(scheduler: str, task, jobs, stage: Path, course_files: dict, settings: dict,
                finish, fail, tmp: Path) -> None:
    """Send every job to the cluster at ``scheduler`` as ``task(assignment, student, submission
    bytes, course_files, settings)`` (:func:`autograder.grade.grade_packed`) and hand each
    finished one to ``finish(job, remote_files, result, seconds)`` (or ``fail(job, reason,
    seconds)``), one at a time, in this thread: the gradebook writes stay serialized.

    Raises OSError (or TimeoutError) when the scheduler cannot be reached within Dask's own
    connect timeout, ``distributed.comm.timeouts.connect`` (30 s by default; set it with
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s`` or ``dask.config.set``)."""
    from distributed import Client, Event, as_completed
    from distributed.scheduler import KilledWorker

    run = uuid.uuid4().hex
    settings = {**settings, "stop": STOP_EVENT_PREFIX + run}
    client = Client(scheduler)  # timeout: distributed.comm.timeouts.connect
    futures = {}
    try:
        # A task, not scattered data: if every worker holding the files dies, the scheduler
        # computes them again from its one copy (scattered data would be lost with them).
        shared = client.submit(course_copy, course_files, key=f"course-files-{run}", pure=False)
        for job in jobs:
            data = pack(stage / job.student / job.assignment)
            future = client.submit(task, job.assignment, job.student, data, shared,
                                   settings, key=f"grade-{job.assignment}-{job.student}-{run}",
                                   pure=False)
            futures[future] = job
        started = time.perf_counter()
        for future in as_completed(futures):
            job = futures.pop(future)
            try:
                out = future.result()
            except KilledWorker:
                fail(job, "not graded: its grading killed Dask workers repeatedly (the "
                     "scheduler's allowed-failures); grade it alone to see why",
                     time.perf_counter() - started)
                continue
            except Exception as err:  # noqa: BLE001 - this submission's result
                fail(job, f"the Dask task failed: {type(err).__name__}: {err}",
                     time.perf_counter() - started)
                continue
            finish(job, RemoteFiles(tmp, job, out), out["result"], out["seconds"])
    except BaseException:  # Ctrl-C or an error here: stop every running grade
        Event(settings["stop"], client=client).set()
        client.cancel(list(futures))
        # Closing may wait on the cancelled tasks' results: not for long (the default is twice
        # the connect timeout, 60 s).
        with contextlib.suppress(Exception):
            client.close(timeout=INTERRUPTED_CLOSE_S)
        raise
    client.close()


@contextlib.contextmanager
def loopback_cluster(workers: int, folder: Path, env: dict | None = None) -> Iterator[str]:
    """A Dask cluster on this machine made of separate processes, as on real machines: one
    ``dask scheduler`` and ``workers`` ``dask worker`` processes (one thread each, with their
    nannies), started with the ``dask`` command of this Python. Yields the scheduler's address;
    stops every process on exit. Logs go to ``folder``. For the tests and ``make bench``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, **(env or {})}
    info = folder / "scheduler.json"
    info.unlink(missing_ok=True)
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              env=env, stderr=open(folder / "scheduler.log", "w"))]
    try:
        for _ in range(600):
            if info.exists():
                break
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        for i in range(workers):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--name",
                 f"w{i}"], env=env, stderr=open(folder / f"worker{i}.log", "w")))
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        # The workers first, while the scheduler can still take their goodbyes (stopped
        # together, each worker waits out its reconnection attempts).
        for group in (procs[1:], procs[:1]):
            for p in group:
                p.terminate()
            for p in group:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
