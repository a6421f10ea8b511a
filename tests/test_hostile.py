"""Grading that survives hostile and broken submissions (autograder/grade.py, integrity.py).

One throw-away course of assignment 2 (20 points) is graded with ``grade_all`` the way an
instructor runs ``make grade``: first two ordinary students, then a class with every kind of
trouble below (the first two must keep their grades), then a re-run and a late submission. Each
test checks one protection; each fails if that protection is removed (the comments say which
setting or code it relies on).
"""

from __future__ import annotations

import copy
import json
import os
import socket

import nbformat
import pytest
from nbgrader.utils import compute_checksum

from autograder import sandbox
from autograder.config import REPO_ROOT
from autograder.grade import grade_all
from autograder.grading import generate, make_course, read_scores
from autograder.submissions import find_cell, load_variants, solution_submission, variant_submission

A = "02_forward_pass"
CELL_TIMEOUT_S = 5
JOB_TIMEOUT_S = 45
MEMORY_LIMIT_MB = 2048
FULL = 20.0


# A loopback service on the grader's machine that a submission must not reach.
LISTENER = socket.create_server(("127.0.0.1", 0))
LISTENER.settimeout(0.2)


def _cell(nb, grade_id, solution=None):
    return find_cell(nb, grade_id, solution)


def _append(nb, grade_id, code):
    cell = _cell(nb, grade_id, solution=True)
    cell.source = cell.source + "\n\n" + code + "\n"
    return nb


def _build(src, rel):
    """{student: notebook or raw bytes or (filename, notebook)} for the whole class."""
    sol = solution_submission(src, rel)
    bug = {v.name: v for v in load_variants(A)}
    softmax_bug = lambda: variant_submission(src, rel, bug["softmax_sums_over_axis_0"])  # noqa: E731

    def sigmoid_bug():  # sigmoid(-z): the branches of the stable formula swapped
        nb = copy.deepcopy(sol)
        cell = _cell(nb, "sigmoid", solution=True)
        good = "np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))"
        assert good in cell.source
        cell.source = cell.source.replace(good, "np.where(z >= 0, e / (1.0 + e), 1.0 / (1.0 + e))")
        return nb

    s = {}
    # a runaway loop inside a function that one test calls: that cell times out, the rest count
    nb = copy.deepcopy(sol)
    cell = _cell(nb, "sigmoid", solution=True)
    cell.source = cell.source.replace('"""\n', '"""\n    while True:\n        pass\n', 1)
    s["loop_in_function"] = nb
    # the same loop, deaf to the interrupt nbgrader sends at the cell timeout
    s["loop_ignoring_interrupts"] = _append(copy.deepcopy(sol), "sigmoid", (
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"))
    # the kernel dies
    s["os_exit"] = _append(copy.deepcopy(sol), "sigmoid", "import os\nos._exit(1)")
    s["segfault"] = _append(copy.deepcopy(sol), "sigmoid", "import ctypes\nctypes.string_at(0)")
    # 6 GB asked for step by step: the kernel's address-space limit stops it with a MemoryError
    # (np.empty does not touch the pages, so without the limit this test fails fast and harmlessly)
    s["memory_blowup"] = _append(copy.deepcopy(sol), "softmax", (
        "def _eat():\n    hog = []\n    for _ in range(48):\n"
        "        hog.append(np.empty(2**24))\n    return len(hog)\n\n\n_eat()"))
    # the tests the student has, edited or deleted, and their metadata changed
    nb = softmax_bug()
    _cell(nb, "test_softmax").source = "# I trust my softmax\npass"
    s["edited_test_cell"] = nb
    nb = softmax_bug()
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                != "test_softmax"]
    s["deleted_test_cell_bug"] = nb
    nb = copy.deepcopy(sol)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                != "test_sigmoid"]
    s["deleted_test_cell_ok"] = nb
    nb = softmax_bug()
    _cell(nb, "test_softmax").metadata["nbgrader"]["points"] = 100
    s["edited_points"] = nb
    nb = softmax_bug()
    test = _cell(nb, "test_softmax")
    test.cell_type = "markdown"
    del test["outputs"], test["execution_count"]
    s["test_cell_made_markdown"] = nb
    nb = softmax_bug()  # the test emptied and nbgrader's checksum forged to match the edit
    test = _cell(nb, "test_softmax")
    test.source = "pass"
    test.metadata["nbgrader"]["checksum"] = compute_checksum(test)
    s["forged_checksum"] = nb
    # tricks against the tests
    s["patched_numpy"] = _append(softmax_bug(), "softmax", (
        "np.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None"))
    s["overwrote_helpers"] = _append(sigmoid_bug(), "sigmoid", (
        "check_close = check_scalar = check_equal = check_pair = lambda *a, **k: None"))
    s["swallowed_errors"] = _append(softmax_bug(), "softmax", (
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)"))
    s["blanked_later_cells"] = _append(softmax_bug(), "softmax", (
        "get_ipython().input_transformers_post.append(lambda lines: [])"))
    # broken files
    s["invalid_json"] = b'{"cells": [ this is not json'
    old = json.loads(nbformat.writes(sol))
    old["nbformat"] = 3
    s["nbformat_3"] = json.dumps(old).encode()
    s["renamed"] = ("02_forward_pass (1).ipynb", copy.deepcopy(sol))
    nb = copy.deepcopy(sol)
    _cell(nb, "softmax", solution=True).outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text="x" * (60 * 2**20))]
    s["huge_file"] = nb
    nb = copy.deepcopy(sol)
    _cell(nb, "softmax", solution=True).outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text="y" * (5 * 2**20))]
    s["big_outputs"] = nb
    # noise on stderr in a correct answer: a warning and a progress bar in a graded call
    s["noisy_but_right"] = _append(copy.deepcopy(sol), "sigmoid", (
        "_quiet_sigmoid = sigmoid\n\n\ndef sigmoid(z):\n"
        "    import sys\n    import warnings\n\n    from tqdm import tqdm\n\n"
        "    warnings.warn('a harmless warning', RuntimeWarning, stacklevel=1)\n"
        "    for _ in tqdm(range(3), file=sys.stderr):\n        pass\n"
        "    return _quiet_sigmoid(z)"))
    return s, sol, softmax_bug()


# --- submissions that try to get out of their sandbox (issue 14) ---------------------------------
# Each is the solution with extra code in its softmax cell that tries something and prints LEAK
# (with what it got) if it worked; each must still get full marks. `{course}`, `{repo}` and `{port}`
# are filled in: a determined student knows the course's layout from its README.
TRIES = """
def _try(what, fn):
    try:
        got = fn()
    except BaseException as err:
        print("blocked:", what, type(err).__name__)
    else:
        print("LEAK:", what, repr(got)[:2000])
"""
ESCAPES = {
    # the issue's curious student: classmates' work, the gradebook, the instructor's notebooks
    "peeking": TRIES + """
import glob, os, sqlite3
_try("list ../../../submitted", lambda: os.listdir("../../../submitted"))
_try("list the course's submitted/", lambda: os.listdir("{course}/submitted"))
_try("read a classmate", lambda: open("{course}/submitted/ada/{a}/{a}.ipynb").read())
_try("query the gradebook", lambda: sqlite3.connect("file:{course}/gradebook.db?mode=ro",
     uri=True).execute("SELECT * FROM student").fetchall())
_try("../../../gradebook.db", lambda: open("../../../gradebook.db", "rb").read(100))
_try("source notebooks", lambda: [open(p).read() for p in glob.glob("{course}/source/*/*.ipynb")]
     or 1 / 0)
_try("../../../source", lambda: os.listdir("../../../source"))
_try("the repository's source", lambda: open("{repo}/source/{a}/{a}.ipynb").read())
_try("the fixtures", lambda: os.listdir("{repo}/autograder/fixtures"))
""",
    "writer": TRIES + """
_try("append to the gradebook", lambda: open("{course}/gradebook.db", "ab").write(b"x"))
_try("plant in the course", lambda: open("{course}/planted.txt", "w").write("x"))
_try("plant in a classmate's folder",
     lambda: open("{course}/submitted/ada/{a}/planted.txt", "w").write("x"))
_try("plant in the repository", lambda: open("{repo}/planted.txt", "w").write("x"))
_try("plant in ../..", lambda: open("../../planted.txt", "w").write("x"))
""",
    "network": TRIES + """
import socket
_try("connect to the grader's machine", lambda: socket.create_connection(("127.0.0.1", {port}),
     timeout=3))
_try("connect to the internet", lambda: socket.create_connection(("pypi.org", 443), timeout=3))
""",
    # processes that fork until something stops them; the children keep trying
    "fork_bomb": """
import os, time
def _bomb():
    made = 0
    try:
        while True:
            if os.fork() == 0:
                while True:
                    try:
                        os.fork()
                    except OSError:
                        time.sleep(0.2)
            made += 1
    except OSError as err:
        print(f"fork bomb stopped after {{made}} processes: {{type(err).__name__}}")
_bomb()
""",
    "proc_and_env": TRIES + """
import glob, os
# the grader's processes (its own sandbox's bwrap is visible, and its command line lists the mounts)
_try("the grader's processes", lambda: [
     c for c in (open(p).read() for p in glob.glob("/proc/[0-9]*/cmdline"))
     if any(w in c for w in ("autograder.grade", "pytest", "nbgrader", "jupyter"))] or 1 / 0)
for _path in glob.glob("/proc/[0-9]*/environ"):
    try:
        print(_path, open(_path).read())
    except OSError as err:
        print(_path, type(err).__name__)
print(dict(os.environ))
""",
}
SECRET = "grader-secret-7f3a"  # in the grader's environment while it grades


def _escapes(sol, course, port):
    out = {}
    for student, code in ESCAPES.items():
        filled = code.replace("{course}", str(course)).replace("{repo}", str(REPO_ROOT))
        filled = filled.replace("{a}", A).replace("{port}", str(port))
        out[student] = _append(copy.deepcopy(sol), "softmax", filled.replace("{{", "{")
                               .replace("}}", "}"))
    return out


def _write(course, student, content):
    folder = course / "submitted" / student / A
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        (folder / f"{A}.ipynb").write_bytes(content)
    elif isinstance(content, tuple):
        nbformat.write(content[1], folder / content[0])
    else:
        nbformat.write(content, folder / f"{A}.ipynb")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The course after each grading round, and what each round returned."""
    os.environ["RNNCOURSE_CELL_TIMEOUT"] = str(CELL_TIMEOUT_S)
    os.environ["RNNCOURSE_TEST_SECRET"] = SECRET
    try:
        course = make_course(tmp_path_factory.mktemp("hostile") / "course", REPO_ROOT / "source")
        generate(course, A)
        src = nbformat.read(course / "source" / A / f"{A}.ipynb", as_version=4)
        rel = nbformat.read(course / "release" / A / f"{A}.ipynb", as_version=4)
        students, sol, bug = _build(src, rel)
        if not sandbox.unavailable():  # never run a fork bomb without the sandbox's limits
            students |= _escapes(sol, course, LISTENER.getsockname()[1])
        kw = dict(workers=2, job_timeout=JOB_TIMEOUT_S, memory_limit_mb=MEMORY_LIMIT_MB,
                  progress=False)
        _write(course, "ada", sol)
        _write(course, "carl", bug)
        first = grade_all(course, [A], **kw)
        before = read_scores(course, A)
        for student, content in students.items():
            _write(course, student, content)
        # the hostile class only: ada's and carl's rows must stay as they are
        second = {r.job.student: r for r in grade_all(course, [A], students=list(students), **kw)}
        after = read_scores(course, A)
        again = grade_all(course, [A], students=["ada", "carl", "loop_in_function",
                                                 "overwrote_helpers", "patched_numpy"], **kw)
        rerun = read_scores(course, A)
        _write(course, "late", sol)
        late = grade_all(course, [A], students=["late"], **kw)
        final = read_scores(course, A)
    finally:
        del os.environ["RNNCOURSE_CELL_TIMEOUT"], os.environ["RNNCOURSE_TEST_SECRET"]
    return dict(course=course, first=first, before=before, results=second, after=after,
                again=again, rerun=rerun, late=late, final=final)


def _total(cells):
    return sum(c.score for c in cells.values())


def test_ordinary_students_first(hostile):
    assert [r.status for r in hostile["first"]] == ["graded", "graded"]
    assert _total(hostile["before"]["ada"]) == FULL
    assert hostile["before"]["carl"]["test_softmax"].score == 0
    assert _total(hostile["before"]["carl"]) == FULL - 2


def test_other_students_untouched_by_a_hostile_class(hostile):
    for student in ("ada", "carl"):
        assert hostile["after"][student] == hostile["before"][student]


def test_infinite_loop_times_out_one_cell_and_the_rest_counts(hostile):
    r = hostile["results"]["loop_in_function"]
    assert r.status == "graded", r
    assert "test_sigmoid timed out" in r.message  # Execute.timeout (config.CELL_TIMEOUT_S)
    cells = hostile["after"]["loop_in_function"]
    assert cells["test_sigmoid"].score == 0
    assert _total(cells) == FULL - 2


def test_loop_deaf_to_interrupts_is_stopped_by_the_wall_clock_limit(hostile):
    r = hostile["results"]["loop_ignoring_interrupts"]
    # nbgrader's interrupt cannot stop it; the per-submission limit kills worker and kernel
    assert r.status in ("timeout", "failed"), r
    if r.status == "timeout":
        assert r.seconds >= JOB_TIMEOUT_S
    assert "loop_ignoring_interrupts" not in hostile["after"]


@pytest.mark.parametrize("student", ["os_exit", "segfault"])
def test_kernel_death_is_a_clear_result_for_that_student_only(hostile, student):
    r = hostile["results"][student]
    assert r.status == "failed", r
    assert "kernel died" in r.message
    assert student not in hostile["after"]


def test_memory_blowup_is_bounded(hostile):
    # RLIMIT_AS, set by the grading worker: the allocation fails with a MemoryError in that cell,
    # or, when the kernel's other threads hit the limit first, the kernel dies. Either way it is a
    # clear result; without the limit the 6 GB are granted and neither happens.
    r = hostile["results"]["memory_blowup"]
    if r.status == "failed":
        assert "kernel died" in r.message
        assert "memory_blowup" not in hostile["after"]
        return
    assert r.status == "graded", r
    nb = json.loads((hostile["course"] / "autograded" / "memory_blowup" / A / f"{A}.ipynb")
                    .read_text())
    enames = [o.get("ename") for c in nb["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert "MemoryError" in enames


def test_edited_test_cell_is_graded_with_the_instructors_test(hostile):
    cells = hostile["after"]["edited_test_cell"]
    assert cells["test_softmax"].score == 0 and cells["test_softmax"].max_score == 2
    assert _total(cells) == FULL - 2


def test_deleted_test_cell_is_restored_and_graded(hostile):
    # OverwriteCells.add_missing_cells: without it the cell is left at "needs manual grading"
    bug, ok = hostile["after"]["deleted_test_cell_bug"], hostile["after"]["deleted_test_cell_ok"]
    assert bug["test_softmax"].score == 0 and not bug["test_softmax"].needs_manual_grade
    assert ok["test_sigmoid"].score == 2 and not ok["test_sigmoid"].needs_manual_grade
    assert _total(ok) == FULL


def test_edited_points_do_not_change_the_maximum(hostile):
    cells = hostile["after"]["edited_points"]
    assert cells["test_softmax"].max_score == 2
    assert sum(c.max_score for c in cells.values()) == FULL


@pytest.mark.parametrize("student", ["test_cell_made_markdown", "forged_checksum"])
def test_tampered_test_cells_are_graded_with_the_instructors_test(hostile, student):
    # nbgrader puts the instructor's cell back (type, source and checksum from the gradebook)
    r, cells = hostile["results"][student], hostile["after"][student]
    assert r.status == "graded", r
    assert cells["test_softmax"].score == 0 and cells["test_softmax"].max_score == 2
    assert _total(cells) == FULL - 2


def test_patched_numpy_earns_nothing(hostile):
    r, cells = hostile["results"]["patched_numpy"], hostile["after"]["patched_numpy"]
    assert cells["test_softmax"].score == 0
    assert _total(cells) == 0  # protect(): numpy canaries fail every hidden test; and withheld
    assert "flagged" in r.message


def test_overwritten_helpers_are_restored_for_the_hidden_tests(hostile):
    cells = hostile["after"]["overwrote_helpers"]
    assert cells["test_sigmoid"].score == 0  # the visible checks were disabled, the hidden ones ran
    assert _total(cells) == FULL - 2


def test_swallowed_exceptions_still_fail_the_test(hostile):
    cells = hostile["after"]["swallowed_errors"]
    assert cells["test_softmax"].score == 0


def test_cell_rewriting_tricks_are_flagged_and_withheld(hostile):
    r, cells = hostile["results"]["blanked_later_cells"], hostile["after"]["blanked_later_cells"]
    assert "flagged" in r.message and "input/AST transformers" in r.message
    assert _total(cells) == 0 and all(c.needs_manual_grade for c in cells.values())
    from nbgrader.api import Gradebook

    from autograder.config import db_url_of

    with Gradebook(db_url_of(hostile["course"])) as gb:
        nb = gb.find_submission_notebook(A, A, "blanked_later_cells")
        assert nb.flagged


@pytest.mark.parametrize("student, words", [
    ("invalid_json", "not valid notebook JSON"),
    ("nbformat_3", "nbformat 3"),
    ("huge_file", "MB limit"),
])
def test_broken_files_get_a_clear_error_and_no_gradebook_entry(hostile, student, words):
    r = hostile["results"][student]
    assert r.status == "invalid" and words in r.message, r
    assert student not in hostile["after"]


def test_a_renamed_notebook_is_graded_in_place_of_the_missing_one(hostile):
    # autograder/intake.py: nbgrader alone skips it ("Skipping unknown notebook") and scores 0
    r = hostile["results"]["renamed"]
    assert r.status == "graded", r
    assert ("graded 02_forward_pass (1).ipynb in place of 02_forward_pass.ipynb, which is "
            "missing") in r.message
    assert _total(hostile["after"]["renamed"]) == FULL


def test_big_outputs_are_cleared_and_graded(hostile):
    assert _total(hostile["after"]["big_outputs"]) == FULL


def test_warnings_and_progress_bars_in_a_test_cell_are_not_wrong_answers(hostile):
    # IgnorePattern (config.IGNORE_STDERR_PATTERN): nbgrader fails any cell with stderr otherwise
    cells = hostile["after"]["noisy_but_right"]
    assert cells["test_sigmoid"].score == 2
    assert _total(cells) == FULL


def test_regrading_is_idempotent(hostile):
    assert all(r.ok for r in hostile["again"])
    for student in ("ada", "carl", "loop_in_function", "overwrote_helpers", "patched_numpy"):
        assert hostile["rerun"][student] == hostile["after"][student], student
    # the withheld submission is not withheld a second time: its review state is kept
    again = {r.job.student: r for r in hostile["again"]}
    assert "the review in the gradebook is kept" in again["patched_numpy"].message


def test_a_late_submission_leaves_earlier_grades_alone(hostile):
    assert [r.status for r in hostile["late"]] == ["graded"]
    assert _total(hostile["final"]["late"]) == FULL
    for student, cells in hostile["rerun"].items():
        assert hostile["final"][student] == cells, student


def test_feedback_names_the_cell_that_timed_out(hostile):
    from autograder.feedback import generate

    generate(hostile["course"], A, student="loop_in_function")
    html = (hostile["course"] / "feedback" / "loop_in_function" / A / f"{A}.html").read_text()
    assert "Test cell test_sigmoid failed" in html
    assert "CellTimeoutError" in html


# --- isolation (issue 14) -------------------------------------------------------------------------

def _outputs(hostile, student) -> str:
    """The text the submission printed (stream outputs; not images, whose base64 may hold
    any word)."""
    nb = json.loads((hostile["course"] / "autograded" / student / A / f"{A}.ipynb").read_text())
    return "\n".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                     for c in nb["cells"] for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


@pytest.fixture()
def isolated():
    why = sandbox.unavailable()
    if why:
        pytest.skip(f"no sandbox here: {why}")


@pytest.mark.parametrize("student", sorted(ESCAPES))
def test_escape_attempts_are_graded_normally(hostile, isolated, student):
    r = hostile["results"][student]
    assert r.status == "graded" and _total(hostile["after"][student]) == FULL, r


@pytest.mark.parametrize("student", ["peeking", "writer", "network", "proc_and_env"])
def test_escape_attempts_are_blocked(hostile, isolated, student):
    text = _outputs(hostile, student)
    assert "blocked:" in text or "/proc/" in text  # the code ran
    assert "LEAK:" not in text, text[text.index("LEAK:"):][:500]


def test_nothing_was_written_outside_the_submission(hostile, isolated):
    course = hostile["course"]
    assert not (course / "planted.txt").exists()
    assert not (course / "submitted" / "ada" / A / "planted.txt").exists()
    assert not (REPO_ROOT / "planted.txt").exists()
    assert not any(course.rglob("planted.txt"))


def test_no_connection_reached_the_graders_machine(hostile, isolated):
    with pytest.raises(TimeoutError):
        LISTENER.accept()


def test_the_graders_environment_and_processes_stay_hidden(hostile, isolated):
    text = _outputs(hostile, "proc_and_env")
    assert SECRET not in text and "RNNCOURSE_TEST_SECRET" not in text
    assert "autograder.grade" not in text and "pytest" not in text


def test_a_fork_bomb_is_stopped_by_the_process_limit(hostile, isolated):
    text = _outputs(hostile, "fork_bomb")
    made = int(text.split("fork bomb stopped after ")[1].split()[0])
    assert made < sandbox.Limits.processes
    import psutil

    if os.geteuid() == 0:  # no process of the kernels' users outlives grading
        uids = range(sandbox.FIRST_UID, sandbox.FIRST_UID + 64)
        assert not [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real in uids]
