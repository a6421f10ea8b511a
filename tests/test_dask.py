"""``make grade --scheduler``: grading on Dask distributed (autograder/distributed.py).

A real cluster on loopback: a ``dask scheduler`` and two separately started ``dask worker``
processes (each with its nanny, as on a cluster's machines). A class of assignment 2 is graded on
the cluster, and every cell's score must be the one local grading gave the same submissions (the
session's ``graded_course``, graded through ``make grade``'s command); then the class is graded
again on the cluster while the worker grading a slow submission is killed, and the result must
still be complete and identical. A task that kills its worker every time ends as a clear
failure for that submission, not an endless retry.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time

import pytest
from ctrl_c import ctrl_c, start_grading

from autograder.config import REPO_ROOT
from autograder.grade import grade_all
from autograder.grading import make_course, read_scores
from autograder.submissions import find_cell, nbgrader_sample, submissions_for, write_submission

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed")

A = "02_forward_pass"
SLOW = "slow_but_right"
# The functions below that run on the workers travel by value: the workers cannot import tests/.
pytest.importorskip("cloudpickle").register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from autograder.distributed import loopback_cluster

    with loopback_cluster(2, tmp_path_factory.mktemp("dask"),
                          env={"PYTHONPATH": str(REPO_ROOT)}) as address:
        yield address


@pytest.fixture(scope="module")
def classes(cluster, generated_courses, tmp_path_factory):
    """The sample of assignment 2 that the session grades locally, and a slow but correct
    submission, graded twice on the cluster: as it is, and with the worker that grades the slow
    submission killed meanwhile."""
    base = tmp_path_factory.mktemp("classes")
    release = generated_courses[A] / "release"
    courses = {}
    for name in ("dask", "killed"):
        course = make_course(base / name, REPO_ROOT / "source")
        shutil.copytree(release, course / "release")  # generated once, by the session
        subs = submissions_for(A, course / "source", course / "release")
        for student in nbgrader_sample(A):
            write_submission(course, student, A, subs[student])
        slow = subs["solution"]
        cell = find_cell(slow, "rnn_forward", solution=True)
        cell.source += "\n\nimport time\ntime.sleep(12)  # a slow but correct notebook\n"
        write_submission(course, SLOW, A, slow)
        courses[name] = course
    results = {"dask": grade_all(courses["dask"], [A], progress=False, scheduler=cluster)}
    killed: list[str] = []
    thread = threading.Thread(target=_kill_worker_grading, args=(cluster, SLOW, killed))
    thread.start()
    results["killed"] = grade_all(courses["killed"], [A], progress=False, scheduler=cluster)
    thread.join(timeout=300)
    return courses, results, killed


@pytest.fixture(scope="module")
def graded_locally(graded_course):
    """Every cell's score of local grading: the session's sample, and the solution's for the
    slow submission (its one change is a sleep)."""
    local = dict(graded_course[0][A])
    local[SLOW] = local["solution"]
    return local


def _executing(dask_worker) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def _kill_worker_grading(address: str, student: str, killed: list[str]) -> None:
    """Kill (SIGKILL) the Dask worker process that is grading ``student``, once."""
    import psutil

    with distributed.Client(address) as client:
        for _ in range(600):
            running = client.run(_executing)
            for worker, keys in running.items():
                if any(f"-{student}-" in k for k in keys):
                    time.sleep(3)  # well inside the notebook
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    psutil.Process(pid).kill()
                    killed.append(worker)
                    return
            time.sleep(0.2)


def test_a_class_graded_on_dask_scores_as_graded_locally(classes, graded_locally):
    courses, results, _ = classes
    assert all(r.ok for r in results["dask"]), [r for r in results["dask"] if not r.ok]
    dask = read_scores(courses["dask"], A)
    assert dask == graded_locally
    assert sum(c.score for c in dask[SLOW].values()) == 20


def test_a_worker_killed_mid_grade_loses_nothing_and_counts_nothing_twice(classes,
                                                                          graded_locally):
    courses, results, killed = classes
    assert killed, "no worker was caught grading the slow submission"
    assert all(r.ok for r in results["killed"]), [r for r in results["killed"] if not r.ok]
    assert len(results["killed"]) == len(graded_locally)
    assert read_scores(courses["killed"], A) == graded_locally


def test_a_task_that_kills_every_worker_is_reported_not_retried_forever(cluster, tmp_path):
    from autograder.distributed import run_on_dask
    from autograder.grade import Job

    def fatal(*args):  # what a submission that crashes the worker's Python does to it
        os._exit(1)

    job = Job(A, "worker_killer")
    (tmp_path / "stage" / job.student / A).mkdir(parents=True)
    failed, finished = [], []
    run_on_dask(cluster, fatal, [job], tmp_path / "stage", {}, {},
                lambda *a: finished.append(a), lambda j, why, s: failed.append((j, why)),
                tmp_path)
    assert not finished
    assert failed and failed[0][0] == job and "killed Dask workers repeatedly" in failed[0][1]


def test_an_unreachable_scheduler_fails_every_submission_with_the_reason(tmp_path,
                                                                         generated_courses):
    import dask

    course = make_course(tmp_path / "course", REPO_ROOT / "source")
    shutil.copytree(generated_courses[A] / "release", course / "release")
    subs = submissions_for(A, course / "source", course / "release")
    write_submission(course, "ada", A, subs["solution"])
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):  # Dask's own setting
        results = grade_all(course, [A], progress=False, scheduler="tcp://127.0.0.1:9")
    assert [r.status for r in results] == ["failed"]
    assert "cannot be reached" in results[0].message
    shutil.rmtree(course)


def _grading_processes(dask_worker) -> list[int]:
    """The grading processes (``autograder.grade --worker``) and kernels under this Dask worker."""
    import psutil

    found = []
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            line = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "autograder.grade" in line or "ipykernel" in line:
            found.append(p.pid)
    return found


def test_ctrl_c_stops_every_running_grade_on_the_workers(cluster, generated_courses, tmp_path):
    """Ctrl-C on the instructor's side (SIGINT to ``make grade --scheduler``) while both workers
    grade a notebook that would run for minutes: the command ends, and within seconds no grading
    process or kernel is left on either worker."""
    course = make_course(tmp_path / "course", REPO_ROOT / "source")
    shutil.copytree(generated_courses[A] / "release", course / "release")
    subs = submissions_for(A, course / "source", course / "release")
    for student in ("stuck_a", "stuck_b"):
        nb = subs["solution"]
        cell = find_cell(nb, "rnn_forward", solution=True)
        cell.source += "\n\nimport time\ntime.sleep(300)  # still running at Ctrl-C\n"
        write_submission(course, student, A, nb)
    grade = start_grading(course, A, "--scheduler", cluster)
    with distributed.Client(cluster) as client:
        for _ in range(600):  # until both workers run a kernel of a stuck notebook
            if all(client.run(_grading_processes).values()):
                break
            assert grade.poll() is None, grade.communicate()[0][-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("the stuck notebooks never started on both workers")
        time.sleep(2)
        output = ctrl_c(grade)
        for _ in range(40):
            left = client.run(_grading_processes)
            if not any(left.values()):
                break
            time.sleep(0.5)
        assert not any(left.values()), f"still running after Ctrl-C: {left}\n{output[-2000:]}"
        assert not any(client.processing().values()), "tasks still running on the cluster"
