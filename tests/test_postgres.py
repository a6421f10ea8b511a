"""The gradebook on a real PostgreSQL server: the path for large courses (README, "Grading").

The test starts its own throw-away server (Debian's ``postgresql`` package, installed by
``make system-deps``) on a free loopback port, points a course's ``db_url`` at it, and grades the
submissions of assignment 2 that tests/test_grading.py grades with nbgrader and SQLite (the
solution, the blank release, a bug, an alternative) with two workers writing to the server at
once. The results must be what the fixtures promise, exactly as with the SQLite gradebook.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from autograder.config import REPO_ROOT
from autograder.grade import grade_all
from autograder.grading import generate, make_course, read_scores
from autograder.submissions import (
    load_variants,
    nbgrader_sample,
    submissions_for,
    write_submission,
)

A = "02_forward_pass"
BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install -e .[test])")
    if not BINDIRS or not os.path.exists(os.path.join(BINDIRS[-1], "initdb")):
        pytest.skip("PostgreSQL server binaries not found (Debian: make system-deps)")
    bindir = BINDIRS[-1]
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="rnncourse-pg-"))
    base.chmod(0o755)
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as Debian's postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to drop to the postgres user")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], **run)
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w",
                    "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"], **run)
    try:
        import psycopg2

        for _ in range(50):
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                        dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE gradebook")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_course(postgres_url, tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("pg") / "course", REPO_ROOT / "source")
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(f"c.CourseDirectory.db_url = {postgres_url!r}\n")
    generate(course, A)
    subs = submissions_for(A, course / "source", course / "release")
    for student in nbgrader_sample(A):
        write_submission(course, student, A, subs[student])
    results = grade_all(course, [A], workers=2, progress=False)
    return course, results


def test_gradebook_is_on_the_server(pg_course, postgres_url):
    import psycopg2

    course, _ = pg_course
    assert not (course / "gradebook.db").exists()
    url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM submitted_assignment")
        assert cur.fetchone()[0] == len(nbgrader_sample(A))


def test_every_submission_graded_as_the_fixtures_promise(pg_course):
    course, results = pg_course
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    scores = read_scores(course, A)
    assert all(c.score == c.max_score for c in scores["solution"].values())
    assert all(c.score == 0 for c in scores["blank"].values())
    sample = [v for v in load_variants(A) if v.name in nbgrader_sample(A)]
    assert {v.kind for v in sample} == {"bug", "alternative"}
    for v in sample:
        failed = sorted(g for g, c in scores[v.name].items() if c.score < c.max_score)
        assert failed == sorted(v.fails if v.kind == "bug" else []), v.name
