"""The grading kernel's sandbox (autograder/sandbox.py), tested on a kernel of its own.

The end-to-end checks (a class of hostile submissions graded with ``grade_all``) are in
tests/test_hostile.py; here one sandboxed kernel is started the way nbgrader starts it and asked
what it can see and do. Each check prints what it found, so a failure says what leaked. The
kernel tests skip (with the reason) where bubblewrap cannot make a sandbox; CI installs it
(``make system-deps``).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import socket
import textwrap
import threading
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.config import REPO_ROOT
from autograder.course import nbgrader_meta
from autograder.reference import write_kernel_source

SECRET = "rnncourse-grader-secret-4242"


def test_kernel_modules_are_closed_under_their_imports():
    """A hidden test imports autograder.hidden; everything it imports of autograder must be in
    the sandbox, and nothing else of autograder (fixtures, grading code) is."""
    folder = REPO_ROOT / "autograder"
    for name in sandbox.KERNEL_MODULES:
        tree = ast.parse((folder / name).read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            for mod in mods:
                if mod.startswith("autograder."):
                    assert f"{mod.split('.')[1]}.py" in sandbox.KERNEL_MODULES, (name, mod)
    assert "fixtures" not in sandbox.KERNEL_MODULES


def test_kernel_reference_has_solutions_and_helpers_but_no_tests_or_answers(tmp_path):
    write_kernel_source("02_forward_pass", tmp_path)
    write_kernel_source("04_vanishing_gradients", tmp_path)
    for a in ("02_forward_pass", "04_vanishing_gradients"):
        nb = json.loads((tmp_path / a / f"{a}.ipynb").read_text())
        text = json.dumps(nb)
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" in text
        assert all(c["cell_type"] == "code" for c in nb["cells"])
        assert not any(nbgrader_meta(c).get("grade") for c in nb["cells"])
    source = json.loads((REPO_ROOT / "source" / "04_vanishing_gradients" /
                         "04_vanishing_gradients.ipynb").read_text())
    manual = [c for c in source["cells"] if nbgrader_meta(c).get("solution")
              and c["cell_type"] == "markdown"]
    assert manual, "04 has written answers (model answers in markdown solution cells)"
    kept = (tmp_path / "04_vanishing_gradients" / "04_vanishing_gradients.ipynb").read_text()
    for cell in manual:
        assert json.dumps("".join(cell["source"]))[1:60] not in kept


def test_missing_tool_is_reported(monkeypatch):
    sandbox.unavailable.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    try:
        assert "bubblewrap" in sandbox.unavailable()
    finally:
        sandbox.unavailable.cache_clear()


def test_kernel_environment_keeps_only_what_kernels_need():
    env = sandbox.kernel_environment({"NBGRADER_EXECUTION": "autograde", "AWS_KEY": SECRET,
                                      "PGPASSWORD": SECRET, "OMP_NUM_THREADS": "1"}, True)
    assert SECRET not in json.dumps(env)
    assert env["NBGRADER_EXECUTION"] == "autograde" and env["OMP_NUM_THREADS"] == "1"
    assert env["RNNCOURSE_SOURCE"] == sandbox.REFERENCE_DIR


# --- one sandboxed kernel -------------------------------------------------------------------------

PROBE = '''
import glob, json, os, socket
found = {}
def attempt(name, fn):
    try:
        found[name] = ("ok", repr(fn())[:300])
    except BaseException as err:
        found[name] = ("blocked", type(err).__name__)
attempt("uid", os.getuid)
attempt("cwd", lambda: (os.getcwd(), sorted(os.listdir("."))))
attempt("write_own", lambda: open("mine.txt", "w").write("ok"))
attempt("write_given", lambda: open("given.txt", "a").write("more"))
attempt("repo", lambda: os.listdir(REPO))
attempt("source", lambda: open(REPO + "/source/02_forward_pass/02_forward_pass.ipynb").read(9))
attempt("fixtures", lambda: os.listdir(REPO + "/autograder/fixtures"))
attempt("grader_code", lambda: open(REPO + "/autograder/grade.py").read(9))
attempt("outside", lambda: os.listdir(OUTSIDE))
attempt("write_outside", lambda: open(OUTSIDE + "/planted.txt", "w").write("x"))
attempt("write_venv", lambda: open(os.path.dirname(os.__file__) + "/planted.py", "w"))
attempt("reference", lambda: sorted(os.listdir(os.environ["RNNCOURSE_SOURCE"])))
attempt("helpers", lambda: __import__("autograder.hidden").hidden.begin.__name__)
attempt("pids", lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
attempt("environ_all", lambda: [open(f).read() for f in glob.glob("/proc/[0-9]*/environ")])
attempt("env", lambda: dict(os.environ))
attempt("socket", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=3))
attempt("home_tmp", lambda: open(os.path.expanduser("~/x"), "w").write("ok"))
print(json.dumps(found))
'''


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    why = sandbox.unavailable()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("submission")
    (work / "given.txt").write_text("from the submission\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "classmate.ipynb").write_text("{}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    accepted = []

    def accept():
        for _ in range(40):
            try:
                accepted.append(listener.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = (f"REPO = {str(REPO_ROOT)!r}\nOUTSIDE = {str(outside)!r}\n"
            f"PORT = {listener.getsockname()[1]}\n" + textwrap.dedent(PROBE))
    os.environ["RNNCOURSE_TEST_SECRET"] = SECRET
    try:
        out, interrupted, scratch = asyncio.run(_run(work, code))
    finally:
        del os.environ["RNNCOURSE_TEST_SECRET"]
        listener.close()
    thread.join(timeout=30)
    return dict(found=json.loads(out), work=work, outside=outside, accepted=accepted,
                interrupted=interrupted, scratch=scratch)


async def _run(work: Path, code: str):
    km = sandbox.SandboxedKernelManager(kernel_name="python3")
    km.assignment = "02_forward_pass"
    await km.start_kernel(cwd=str(work))
    scratch = km._scratch
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=120)
        chunks = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                chunks.append(msg["content"]["text"])

        await kc.execute_interactive(code, timeout=120, output_hook=hook)
        # an endless cell, stopped the way nbgrader stops one at its cell timeout
        loop = kc.execute("while True:\n    pass")
        await asyncio.sleep(2)
        await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == loop
        stopped = reply["content"].get("ename") == "KeyboardInterrupt"
        for _ in range(5):  # ipykernel aborts requests that arrive just after an error
            await asyncio.sleep(1)
            after = await kc.execute_interactive("print('alive')", timeout=60)
            if after["content"]["status"] != "aborted":
                break
        return "".join(chunks), stopped and after["content"]["status"] == "ok", scratch
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def _ok(probe, name):
    status, value = probe["found"][name]
    assert status == "ok", (name, value)
    return value


def _blocked(probe, name):
    status, value = probe["found"][name]
    assert status == "blocked", f"{name} was possible in the sandbox: {value}"


def test_kernel_works_in_its_own_folder(probe):
    assert "given.txt" in _ok(probe, "cwd") and "/home/student/02_forward_pass" in _ok(probe, "cwd")
    _ok(probe, "write_own")
    _ok(probe, "write_given")
    _ok(probe, "home_tmp")
    assert (probe["work"] / "given.txt").read_text().endswith("more")
    assert "02_forward_pass" in _ok(probe, "reference")  # the hidden tests' reference
    _ok(probe, "helpers")


def test_kernel_runs_as_an_unprivileged_user(probe):
    assert _ok(probe, "uid") != "0"


@pytest.mark.parametrize("name", ["source", "fixtures", "grader_code", "outside"])
def test_kernel_cannot_read_the_course_or_other_students(probe, name):
    _blocked(probe, name)


def test_kernel_sees_of_the_repository_only_the_packages_it_imports(probe):
    status, value = probe["found"]["repo"]
    if status == "ok":  # the repository's folder exists when the packages or venv live in it
        assert set(ast.literal_eval(value)) <= {"autograder", "rnncourse", "data", ".venv"}, value


@pytest.mark.parametrize("name", ["write_outside", "write_venv"])
def test_kernel_cannot_write_outside_its_folder(probe, name):
    _blocked(probe, name)
    assert not (probe["outside"] / "planted.txt").exists()


def test_kernel_has_no_network(probe):
    _blocked(probe, "socket")
    assert probe["accepted"] == []


def test_kernel_sees_no_other_process_and_not_the_graders_environment(probe):
    pids = ast.literal_eval(_ok(probe, "pids"))
    assert max(pids) < 50, pids  # a PID namespace of its own: bwrap, the kernel, its threads
    text = json.dumps(probe["found"])
    assert SECRET not in text
    assert "RNNCOURSE_TEST_SECRET" not in text


def test_kernel_is_interrupted_like_an_unsandboxed_one(probe):
    assert probe["interrupted"]  # nbgrader's cell timeout interrupts the cell, not the kernel


def test_kernel_leaves_no_scratch_behind(probe):
    assert not probe["scratch"].exists()


def test_grading_without_the_sandbox_still_grades_and_says_so_loudly(tmp_path):
    from autograder.grade import format_results, grade_all
    from autograder.grading import generate, make_course, read_scores
    from autograder.submissions import submissions_for, write_submission

    a = "01_notation"
    course = make_course(tmp_path / "course", REPO_ROOT / "source")
    generate(course, a)
    write_submission(course, "ada", a,
                     submissions_for(a, course / "source", course / "release")["solution"])
    results = grade_all(course, [a], workers=1, progress=False, isolated=False)
    assert [r.status for r in results] == ["graded"]
    assert all(c.score == c.max_score for c in read_scores(course, a)["ada"].values()
               if not c.needs_manual_grade)
    assert format_results(results).startswith("note: STUDENT CODE WAS NOT ISOLATED")


def test_every_assignments_reference_loads_from_what_its_kernel_gets(tmp_path):
    """A sandboxed kernel's $RNNCOURSE_SOURCE holds its assignment and the earlier ones it
    builds on, nothing else; the reference and the helper cells must load from that alone."""
    import subprocess
    import sys

    from autograder.config import ASSIGNMENTS

    for a in ASSIGNMENTS:
        write_kernel_source(a, tmp_path / a)
        code = (f"from autograder.hidden import begin\nns = {{'np': __import__('numpy')}}\n"
                f"ref = begin(ns, {a!r})\nassert ref.__file__.startswith({str(tmp_path)!r})")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "RNNCOURSE_SOURCE": str(tmp_path / a)})
        assert proc.returncode == 0, (a, proc.stderr[-800:])


def test_the_kernels_private_tmp_hides_nothing_it_needs(tmp_path, monkeypatch):
    """A course, a venv or the kernel's sockets may live under /tmp (a clone in /tmp, say): the
    kernel's private /tmp must be mounted before them, or it hides them."""
    venv = str(tmp_path / "clone" / ".venv")  # as if the course were cloned into /tmp
    monkeypatch.setattr(sandbox, "_python_mounts", lambda made: ["--ro-bind", venv, venv])
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("x")
    cmd = sandbox.kernel_command(["python"], workdir=work, inside="/home/student/a",
                                 ipc=tmp_path / "ipc", reference=tmp_path / "ref", env={},
                                 limits=sandbox.Limits(), uid=None)
    tmpfs = [i for i, a in enumerate(cmd) if a == "--tmpfs" and cmd[i + 1] == "/tmp"]
    under_tmp = [i for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind", "--dir")
                 and cmd[i + (1 if a == "--dir" else 2)].startswith("/tmp/")]
    assert str(tmp_path).startswith("/tmp/") and under_tmp  # pytest's tmp_path is in /tmp
    assert len(tmpfs) == 1 and tmpfs[0] < min(under_tmp)
