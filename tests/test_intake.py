"""Submission intake (autograder/intake.py) and the grading run around it (autograder/grade.py).

Two halves. The unit tests read, normalize and classify submissions without running nbgrader, and
drive ``grade_all`` with workers that fail on purpose (it must never hang). The class test grades
one throw-away course of assignment 2 (20 points) the way an instructor meets it after a fresh
clone: no ``gradebook.db``, ``release/`` committed; then a class with every intake case at once,
late penalties on (due 2026-11-30 23:59:59 Europe/Berlin); then a grader's review and a regrade;
then an unreadable resubmission. Each case checks the grade (or the reason) in ``make grade``'s
summary, in ``grades_by_assignment.csv`` and in the feedback, and the controls (the solution, a
one-bug submission) keep their grades throughout.
"""

from __future__ import annotations

import codecs
import copy
import csv
import json
import re
import shutil
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil
import pytest
from ctrl_c import ctrl_c, start_grading
from nbgrader.utils import parse_utc

from autograder import grade as grade_mod
from autograder import intake
from autograder.config import REPO_ROOT
from autograder.grade import Worker, format_results, grade_all
from autograder.grading import generate, make_course, read_scores
from autograder.integrity import scan_notebook
from autograder.submissions import find_cell, load_variants, solution_submission, variant_submission

A = "02_forward_pass"
NB = f"{A}.ipynb"
FULL = 20.0
DUE_UTC = "2026-11-30 22:59:59"  # 2026-11-30 23:59:59 Europe/Berlin


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """``(source, release, solution, one-bug)`` notebooks of assignment 2, from a release nbgrader
    generated in a scratch course."""
    scratch = make_course(tmp_path_factory.mktemp("scratch") / "course", REPO_ROOT / "source")
    generate(scratch, A)
    src = nbformat.read(scratch / "source" / A / NB, as_version=4)
    rel = nbformat.read(scratch / "release" / A / NB, as_version=4)
    bug = {v.name: v for v in load_variants(A, generated=False)}["softmax_sums_over_axis_0"]
    return scratch, src, rel, solution_submission(src, rel), variant_submission(src, rel, bug)


def _cell(nb, grade_id, solution=True):
    return find_cell(nb, grade_id, solution)


def _append(nb, grade_id, code):
    nb = copy.deepcopy(nb)
    cell = _cell(nb, grade_id)
    cell.source = cell.source + "\n\n" + code + "\n"
    return nb


def _folder(course, student):
    folder = Path(course) / "submitted" / student / A
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write(course, student, nb, name=NB, timestamp=None):
    folder = _folder(course, student)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    else:
        nbformat.write(nb, path)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp)
    return path


@pytest.fixture()
def course(notebooks, tmp_path):
    """A course folder with source/ and release/ (no gradebook) for the intake unit tests."""
    scratch = notebooks[0]
    root = make_course(tmp_path / "course", REPO_ROOT / "source")
    shutil.copytree(scratch / "release", root / "release")
    return root


def _take(course, student, **kw):
    return intake.take(course, A, student, course / "stage", **kw)


# -- student ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("student", ["lee[2]", "a*", "who?", "x]y", " padded", "tab\tend ",
                                     "new\nline"])
def test_ids_nbgrader_cannot_match_are_refused(course, notebooks, student):
    _write(course, student, notebooks[3])
    sub = _take(course, student)
    assert sub.status == "invalid" and "student id" in sub.reason and "rename" in sub.reason
    assert not (course / "stage" / student).exists()


@pytest.mark.parametrize("student", ["o'brien; ls", "a b", "$HOME", "-dash", "ümlaut", "12345"])
def test_ids_with_shell_characters_are_graded_with_a_note(course, notebooks, student):
    _write(course, student, notebooks[3])
    sub = _take(course, student)
    assert sub.ok, sub.reason
    if student not in ("ümlaut", "12345"):
        assert any("needs quoting" in n for n in sub.notes)


# -- timestamps ------------------------------------------------------------------------------------

# (text, course zone, the UTC moment it means)
TIMESTAMPS = [
    ("2026-11-30 23:30:00 +0100", "UTC", "2026-11-30 22:30:00"),  # git log; nbgrader: 100 s
    ("2026-11-30 23:30:00 +01:00", "UTC", "2026-11-30 22:30:00"),
    ("2026-11-30T23:30:00+01:00", "UTC", "2026-11-30 22:30:00"),  # date -Iseconds
    ("2026-11-30T23:30:00+0100", "UTC", "2026-11-30 22:30:00"),
    ("2026-11-30T23:30:00+01", "UTC", "2026-11-30 22:30:00"),
    ("2026-11-30 19:30:00 -0500", "UTC", "2026-12-01 00:30:00"),
    ("2026-11-30T22:30:00Z", "UTC", "2026-11-30 22:30:00"),
    ("2026-11-30 22:30:00.123456 UTC", "Europe/Berlin", "2026-11-30 22:30:00.123456"),  # exchange
    ("2026-11-30 23:30:00.5 CET", "UTC", "2026-11-30 22:30:00.5"),  # exchange, timezone=CET
    ("2026-07-30 23:30:00.000001 CEST", "Europe/Berlin", "2026-07-30 21:30:00.000001"),
    ("2026-11-30 23:30:00 Europe/Berlin", "UTC", "2026-11-30 22:30:00"),
    ("2026-11-30 23:30:00", "Europe/Berlin", "2026-11-30 22:30:00"),  # naive: the course's zone
    ("2026-11-30 23:30:00", "UTC", "2026-11-30 23:30:00"),
    ("2026-11-30T23:30", "Europe/Berlin", "2026-11-30 22:30:00"),
    ("Mon, 30 Nov 2026 23:30:00 +0100", "UTC", "2026-11-30 22:30:00"),  # RFC 2822, date -R
    ("Mon Nov 30 23:30:00 CET 2026", "UTC", "2026-11-30 22:30:00"),  # date(1)
    ("  2026-11-30 23:30:00 +0100\n", "UTC", "2026-11-30 22:30:00"),
]


@pytest.mark.parametrize("text, zone, utc", TIMESTAMPS)
def test_every_timestamp_format_is_normalized_to_what_nbgrader_reads(text, zone, utc):
    out, _ = intake.normalize_timestamp(text, zone)
    assert parse_utc(out) == datetime.fromisoformat(utc)  # nbgrader reads it exactly


def test_nbgrader_alone_misreads_numeric_offsets():
    """The bug the normalization exists for (nbgrader.utils.parse_utc, 0.9.5)."""
    assert parse_utc("2026-11-30 23:30:00 +0100") == datetime(2026, 11, 30, 23, 28, 20)
    _, note = intake.normalize_timestamp("2026-11-30 23:30:00 +0100")
    assert "nbgrader alone would read 2026-11-30 23:28:20 UTC" in note


@pytest.mark.parametrize("text", ["yesterday", "2026-11-30 23:30:00 XYZ", "2026-13-40 25:00:00",
                                  "2026-11-30 23:30:00 +2500"])
def test_unreadable_timestamps_are_refused_with_a_reason(course, notebooks, text):
    _write(course, "stamp", notebooks[3], timestamp=text)
    sub = _take(course, "stamp")
    assert sub.status == "invalid" and sub.reason.startswith("timestamp.txt: ")


def test_the_staged_copy_has_the_normalized_timestamp_and_submitted_is_untouched(course,
                                                                                 notebooks):
    path = _write(course, "kim", notebooks[3], timestamp="2026-11-30 23:30:00 +0100")
    before = {p: p.read_bytes() for p in path.parent.iterdir()}
    sub = _take(course, "kim")
    assert sub.ok and sub.timestamp == "2026-11-30 22:30:00.000000 UTC"
    staged = course / "stage" / "kim" / A
    assert (staged / "timestamp.txt").read_text().strip() == sub.timestamp
    assert {p: p.read_bytes() for p in path.parent.iterdir()} == before


# -- encodings and nbformat ------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_removed_and_said(course, notebooks):
    _write(course, "bom", codecs.BOM_UTF8 + nbformat.writes(notebooks[3]).encode())
    sub = _take(course, "bom")
    assert sub.ok and any("byte-order mark" in n for n in sub.notes)
    staged = (course / "stage" / "bom" / A / NB).read_bytes()
    assert not staged.startswith(codecs.BOM_UTF8)
    nbformat.reads(staged.decode("utf-8"), as_version=4)


def test_utf16_is_converted_and_latin1_refused(course, notebooks):
    _write(course, "u16", nbformat.writes(notebooks[3]).encode("utf-16"))
    assert _take(course, "u16").ok
    nb = copy.deepcopy(notebooks[3])
    nb.cells[0].source += " caf\u00e9"
    _write(course, "latin", nbformat.writes(nb).encode("latin-1", errors="replace"))
    sub = _take(course, "latin")
    assert sub.status == "invalid" and "is not UTF-8 text" in sub.reason


def test_nbformat_44_with_cell_ids_is_read_as_45(course, notebooks):
    raw = json.loads(nbformat.writes(notebooks[3]))
    raw["nbformat_minor"] = 4  # as some tools save it: 4.4, but with the cell ids of 4.5
    assert all("id" in c for c in raw["cells"])
    with pytest.raises(nbformat.ValidationError):  # what the old pre-check refused
        nbformat.validate(nbformat.from_dict(copy.deepcopy(raw)))
    _write(course, "nb44", json.dumps(raw).encode())
    sub = _take(course, "nb44")
    assert sub.ok, sub.reason
    staged = json.loads((course / "stage" / "nb44" / A / NB).read_text())
    assert staged["nbformat_minor"] == 5


def test_broken_cell_ids_are_repaired(course, notebooks):
    raw = json.loads(nbformat.writes(notebooks[3]))
    raw["cells"][1]["id"] = raw["cells"][0]["id"]
    raw["cells"][2]["id"] = "not a valid id!"
    del raw["cells"][3]["id"]
    _write(course, "ids", json.dumps(raw).encode())
    assert _take(course, "ids").ok
    staged = json.loads((course / "stage" / "ids" / A / NB).read_text())
    ids = [c["id"] for c in staged["cells"]]
    assert len(set(ids)) == len(ids)


# -- nbgrader metadata -----------------------------------------------------------------------------


def test_a_copied_graded_cell_keeps_its_last_copy_and_says_so(course, notebooks):
    nb = copy.deepcopy(notebooks[3])
    i = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get(
        "grade_id") == "softmax")
    dup = copy.deepcopy(nb.cells[i])
    dup["id"] = "copied"
    nb.cells.insert(i + 1, dup)
    _write(course, "dup", nb)
    sub = _take(course, "dup")
    assert sub.ok
    assert any("graded cell 'softmax' occurs 2 times" in n and "copied graded cell" in n
               for n in sub.notes)
    staged = json.loads((course / "stage" / "dup" / A / NB).read_text())
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in staged["cells"]]
    assert ids.count("softmax") == 1 and ids[i] is None and ids[i + 1] == "softmax"


def test_cells_nbgrader_cannot_place_run_as_ordinary_cells(course, notebooks):
    nb = copy.deepcopy(notebooks[3])
    foreign = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
        "grade_id": "from_another_course", "grade": False, "solution": True, "locked": False,
        "schema_version": 3, "task": False}})
    empty = nbformat.v4.new_code_cell("y = 2", metadata={"nbgrader": {"solution": True}})
    nb.cells += [foreign, empty]
    _write(course, "foreign", nb)
    sub = _take(course, "foreign")
    assert sub.ok
    assert any("'from_another_course'" in n and "not a cell of this assignment" in n
               for n in sub.notes)
    assert any("nbgrader marks but no grade_id" in n for n in sub.notes)


# -- names -----------------------------------------------------------------------------------------


def test_work_in_a_copy_beside_an_untouched_notebook_grades_the_copy(course, notebooks):
    _, _, rel, sol, _ = notebooks
    _write(course, "copy1", rel)
    _write(course, "copy1", sol, name=f"{A}-Copy1.ipynb")
    sub = _take(course, "copy1")
    assert sub.ok and sub.graded_files == {NB: f"{A}-Copy1.ipynb"}
    assert f"graded {A}-Copy1.ipynb in place of {NB}, which is unchanged from the release" \
        in sub.notes
    assert f"not graded: {NB} (unchanged from the release)" in sub.notes


def test_an_edited_named_notebook_is_graded_and_every_other_is_named(course, notebooks):
    _, _, rel, sol, bug = notebooks
    _write(course, "extra", bug)
    _write(course, "extra", sol, name=f"{A}-Copy1.ipynb")
    _write(course, "extra", rel, name="scratch/untitled.ipynb")
    _write(course, "extra", nbformat.v4.new_notebook(), name="Untitled.ipynb")
    sub = _take(course, "extra")
    assert sub.ok and sub.graded_files == {NB: NB}
    assert f"not graded: {A}-Copy1.ipynb (a copy of {NB})" in sub.notes
    assert f"not graded: scratch/untitled.ipynb (a copy of {NB})" in sub.notes
    assert "not graded: Untitled.ipynb (an extra notebook)" in sub.notes


@pytest.mark.parametrize("name", [f"{A} (1).ipynb", "02_Forward_Pass.ipynb", f"{A}.IPYNB",
                                  f"{A}/{NB}", "submission/my work.ipynb"])
def test_a_misnamed_or_nested_notebook_is_graded_in_place_of_the_missing_one(course, notebooks,
                                                                            name):
    _write(course, "misnamed", notebooks[3], name=name)
    sub = _take(course, "misnamed")
    assert sub.ok and f"graded {name} in place of {NB}, which is missing" in sub.notes
    assert (course / "stage" / "misnamed" / A / NB).is_file()


def test_several_edited_copies_and_no_named_notebook_are_refused(course, notebooks):
    _, _, rel, sol, bug = notebooks
    _write(course, "many", rel)
    _write(course, "many", sol, name=f"{A}-Copy1.ipynb")
    _write(course, "many", bug, name=f"{A}-Copy2.ipynb")
    sub = _take(course, "many")
    assert sub.status == "invalid"
    assert "2 edited copies" in sub.reason and f"{A}-Copy1.ipynb, {A}-Copy2.ipynb" in sub.reason


def test_no_notebook_at_all_is_refused(course):
    (_folder(course, "none") / "notes.txt").write_text("I forgot")
    sub = _take(course, "none")
    assert sub.status == "invalid" and sub.reason == f"notebook {NB} is missing"


# -- the integrity scan ----------------------------------------------------------------------------

ORDINARY = [
    "h_all: np.ndarray = None",
    "def f(x: np.ndarray, n: int = 3) -> np.ndarray:\n    return np.tanh(x)",
    "cache: dict[str, np.ndarray] = {}",
    "np.random.seed(0)\nrng = np.random.default_rng(0)\nz = rng.normal(size=(3, 4))",
    "x = np.zeros(3)\nx[0] = 1\nx.shape = (3, 1)\nout = np.empty(3)\nout[...] = np.exp(x[:, 0])",
    "ok = np.float64 == type(x)\ny = np.asarray(x, dtype=np.float32)",
    "import sys\nhave_torch = 'torch' in sys.modules",
    "%timeit np.dot(a, b)",
    "!ls\nfrom numpy import pi\npi = 3.14",
    "value = eval('1 + 1')",
    "with np.errstate(over='ignore'):\n    e = np.exp(z)",
]
SUSPICIOUS = [
    ("np.allclose = lambda *a, **k: True", "assigns to a numpy attribute"),
    ("import numpy as xp\nxp.testing.assert_allclose = None", "assigns to a numpy attribute"),
    ("vars(np)['allclose'] = f", "assigns to a numpy attribute"),
    ("setattr(np, 'isclose', f)", "patches a module with setattr"),
    ("get_ipython().input_transformers_post.append(f)", "input/AST transformers"),
    ("get_ipython().set_custom_exc((Exception,), f)", "error display"),
    ("get_ipython().events.register('pre_run_cell', f)", "error display"),
    ("import sys\nsys.modules['numpy'] = fake", "edits sys.modules"),
    ("import builtins\nbuiltins.len = f", "patches Python's builtins"),
    ("from rnncourse import testing\ntesting.check_close = f", "course's test helpers"),
    ("exec('np.allclose = f')", "assigns to a numpy attribute"),
    ("%%capture\nnp.allclose = f", "assigns to a numpy attribute"),
    ("import sys\nsys.settrace(f)", "trace or exception hook"),
    ("code = 'x'\nexec(code)", "runs code built at run time"),
    ("text = open('/grading/reference/02_forward_pass/02_forward_pass.ipynb').read()",
     "reference solution"),
    ("import os\nwhere = os.environ['RNNCOURSE_SOURCE']", "reference solution"),
    ("from autograder.reference import load_reference", "reference solution"),
    ("from autograder import hidden", "reference solution"),
]


def _nb(*sources):
    return {"cells": [{"cell_type": "code", "source": s, "metadata": {}} for s in sources]}


@pytest.mark.parametrize("code", ORDINARY)
def test_scan_has_no_false_positives_on_ordinary_numpy_code(code):
    assert scan_notebook(_nb(code)) == []


@pytest.mark.parametrize("code, why", SUSPICIOUS)
def test_scan_finds_what_tampers_with_the_tests(code, why):
    found = scan_notebook(_nb(code))
    assert len(found) == 1 and why in found[0], found


def test_scan_flags_nothing_in_the_controls(notebooks):
    """The solution and every fixture submission of assignment 2 are correct or honestly wrong
    code: none may be flagged."""
    _, src, rel, sol, _ = notebooks
    subs = [sol] + [variant_submission(src, rel, v) for v in load_variants(A, generated=False)]
    flagged = {i: found for i, nb in enumerate(subs) if (found := scan_notebook(nb))}
    assert not flagged


# -- the run never hangs ---------------------------------------------------------------------------


def _grade_in_thread(course, timeout=120, **kw):
    out = {}

    def run():
        out["results"] = grade_all(course, [A], workers=2, progress=False, **kw)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "grade_all hangs"
    return out["results"]


def _no_setup(monkeypatch):
    monkeypatch.setattr(grade_mod, "ensure_gradebook", lambda *a, **k: ([], {}))


def test_workers_that_cannot_start_end_the_run_with_a_reason(course, notebooks, monkeypatch):
    """Item 12's hang: every worker thread died in prepare() and the parent waited forever."""
    _no_setup(monkeypatch)
    for s in ("ann", "bob", "cy"):
        _write(course, s, notebooks[3])

    def broken(self):
        raise FileNotFoundError(2, "No such file or directory", "gradebook.db")

    monkeypatch.setattr(Worker, "prepare", broken)
    results = _grade_in_thread(course)
    assert [r.status for r in results] == ["failed"] * 3
    assert all("could not start: FileNotFoundError" in r.message for r in results)
    assert "could not start" in intake.read_record(course, "bob", A)["message"]


def test_an_exception_in_a_worker_thread_fails_that_submission_only(course, notebooks,
                                                                    monkeypatch):
    _no_setup(monkeypatch)
    monkeypatch.setattr(Worker, "prepare", lambda self: self.root.mkdir(parents=True))
    for s in ("ann", "bob"):
        _write(course, s, notebooks[3])

    def run(self, job, timeout):
        if job.student == "ann":
            raise RuntimeError("boom")
        return {"success": False, "log": "", "error": "ValueError: later"}

    monkeypatch.setattr(Worker, "run", run)
    results = {r.job.student: r for r in _grade_in_thread(course)}
    assert "the grading worker failed: RuntimeError: boom" in results["ann"].message
    assert results["bob"].message == "nbgrader failed: ValueError: later"


FAKE_WORKERS = {
    # exits as soon as it reads the job
    "dies": "import sys; sys.stdin.readline(); sys.exit(3)",
    # answers something that is not a result
    "garbage": "import sys; sys.stdin.readline(); print('not json', flush=True); "
               "sys.stdin.readline()",
    # starts a grandchild (a kernel, say) in its own session, then hangs
    "hangs": "import subprocess, sys, time; sys.stdin.readline(); "
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
             "start_new_session=True); time.sleep(300)",
}


@pytest.mark.parametrize("kind", FAKE_WORKERS)
def test_a_worker_process_that_misbehaves_is_reported_and_killed(course, notebooks, monkeypatch,
                                                                 kind):
    _no_setup(monkeypatch)
    monkeypatch.setattr(Worker, "prepare", lambda self: self.root.mkdir(parents=True))
    started: list[Worker] = []

    def start(self):
        import subprocess

        self._buffer = b""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_WORKERS[kind]], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
            env=grade_mod._worker_env(None, self.token))
        started.append(self)

    monkeypatch.setattr(Worker, "start", start)
    _write(course, "ann", notebooks[3])
    t0 = time.monotonic()
    (r,) = _grade_in_thread(course, job_timeout=3)
    assert time.monotonic() - t0 < 60
    expected = {"dies": ("failed", "the grading worker stopped while grading (exit code 3)"),
                "garbage": ("failed", "answered something that is not a result"),
                "hangs": ("timeout", "stopped after 3 s")}[kind]
    assert r.status == expected[0] and expected[1] in r.message, r
    time.sleep(0.5)
    leftovers = [p for p in psutil.process_iter()
                 if _environ(p).get(grade_mod.TOKEN_VARIABLE) in {w.token for w in started}]
    assert not leftovers, "a worker's process outlived the run"


def _environ(proc) -> dict:
    try:
        return proc.environ()
    except (psutil.Error, OSError):
        return {}


def test_a_class_that_cannot_be_graded_still_gets_rows_and_no_stray_gradebook(course, notebooks,
                                                                             tmp_path):
    """Only refused submissions on a fresh course: no gradebook is conjured, and the export still
    has a row per student with the status and the reason."""
    from autograder.export import export

    _write(course, "lee[2]", notebooks[3])
    _write(course, "empty", b"")
    results = _grade_in_thread(course)
    assert [r.status for r in results] == ["invalid", "invalid"]
    assert not (course / "gradebook.db").exists()
    out = export(course, tmp_path / "grades")
    with out["by_assignment"].open(newline="", encoding="utf-8") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"lee[2]", "empty"}
    for r in results:
        row = rows[r.job.student]
        assert (row["status"], row["reason"], row["submitted"]) == ("invalid", r.message, "True")
        assert float(row["max_score"]) == FULL and float(row["score"]) == 0


def test_bound_outputs_replaces_a_huge_image_with_a_note(tmp_path):
    import base64
    import struct
    import zlib

    def png(width, height):
        raw = b"".join(b"\0" + bytes(width) for _ in range(height))
        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                  8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))

    big = base64.b64encode(png(1200, 1200)).decode()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show()", outputs=[
        nbformat.v4.new_output("display_data", data={"image/png": big, "text/plain": "<img>"}),
        nbformat.v4.new_output("stream", name="stdout", text="small\n")])])
    path = tmp_path / NB
    nbformat.write(nb, path)
    notes = grade_mod.bound_outputs(path)
    assert notes and "a 1200x1200 PNG image of 1.8 MB" in notes[0]
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert out[0].text.startswith("[output removed when grading: a 1200x1200 PNG image")
    assert out[1].text == "small\n"
    assert path.stat().st_size < 10_000


# -- a whole class, graded like make grade ---------------------------------------------------------

BERLIN_CONFIG = """
c.Exchange.timezone = "Europe/Berlin"
c.LateSubmissionPlugin.penalty_method = "zero"
"""

BIG_IMAGE = """import io as _io
import matplotlib.pyplot as _plt
from IPython.display import Image as _Image, display as _display
_buf = _io.BytesIO()
_plt.imsave(_buf, np.random.default_rng(0).random((3000, 3000)), format="png")
_display(_Image(data=_buf.getvalue()))"""

MARKER_LINE = ("# ### BEGIN HIDDEN TESTS is what my notes call the part I cannot see\n"
               "_my_own_line_after_the_marker = 'still shown'")


def _class(notebooks):
    """``{student: (what to write, expected summary words or None)}``: every intake case."""
    _, src, rel, sol, bug = notebooks
    raw = json.loads(nbformat.writes(sol))
    raw["nbformat_minor"] = 4
    dup = copy.deepcopy(sol)
    i = next(i for i, c in enumerate(dup.cells)
             if c.metadata.get("nbgrader", {}).get("grade_id") == "softmax")
    copied = copy.deepcopy(dup.cells[i])
    copied["id"] = "copied-cell"
    dup.cells.insert(i + 1, copied)
    return {
        # item 3: time zones (due 23:59:59 Berlin = 22:59:59 UTC; penalty: zero)
        "on_time_plus0100": ([(NB, sol)], "2026-11-30 23:30:00 +0100"),
        "late_minus0500": ([(NB, sol)], "2026-11-30 19:30:00 -0500"),
        "naive_berlin": ([(NB, sol)], "2026-11-30 23:50:00"),
        # item 4: a type annotation is not tampering; harmless flagged code is reviewed
        "annotated": ([(NB, _append(sol, "rnn_forward", "h_all: np.ndarray = None"))], None),
        "reviewed": ([(NB, _append(sol, "sigmoid", "_act = eval('np.' + 'tanh')"))], None),
        # item 11: graded now, an unreadable resubmission later
        "resubmits": ([(NB, sol)], None),
        # items 2 and 9: not graded at all, but a row and a reason
        "lee[2]": ([(NB, sol)], None),
        "broken_json": ([(NB, b'{"cells": [ this is not json')], None),
        "o'brien; ls": ([(NB, sol)], None),
        # item 8: outputs made while grading
        "big_image": ([(NB, _append(sol, "softmax", BIG_IMAGE))], None),
        # item 10: the student's own marker line
        "marker_line": ([(NB, _append(sol, "softmax", MARKER_LINE))], None),
        # item 5: names
        "copy1": ([(NB, rel), (f"{A}-Copy1.ipynb", sol)], None),
        "nested": ([("work/02_Forward_Pass.ipynb", sol)], None),
        "extra": ([(NB, sol), ("Untitled.ipynb", nbformat.v4.new_notebook())], None),
        # items 6 and 7: nbformat 4.4 with ids, a byte-order mark
        "nb44_ids": ([(NB, json.dumps(raw).encode())], None),
        "bom": ([(NB, codecs.BOM_UTF8 + nbformat.writes(sol).encode())], None),
        # item 1: a copied graded cell
        "dup_cell": ([(NB, dup)], None),
    }


@pytest.fixture(scope="module")
def graded_class(notebooks, tmp_path_factory):
    from nbgrader.api import Gradebook

    scratch = notebooks[0]
    course = make_course(tmp_path_factory.mktemp("intake") / "course", REPO_ROOT / "source")
    shutil.copytree(scratch / "release", course / "release")  # committed, as in a fresh clone
    assert not (course / "gradebook.db").exists()
    kw = dict(workers=2, job_timeout=600, memory_limit_mb=4096, progress=False)
    _write(course, "ada", notebooks[3])
    _write(course, "carl", notebooks[4])
    first = grade_all(course, [A], **kw)
    before = read_scores(course, A)

    with (course / "nbgrader_config.py").open("a") as fh:
        fh.write(BERLIN_CONFIG)
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db, "rnn-course") as gb:
        gb.update_or_create_assignment(A, duedate=DUE_UTC)
    students = _class(notebooks)
    for student, (files, stamp) in students.items():
        for name, content in files:
            _write(course, student, content, name=name)
        if stamp:
            (_folder(course, student) / "timestamp.txt").write_text(stamp + "\n")
    second = grade_all(course, [A], students=list(students), **kw)
    after = read_scores(course, A)

    # a grader reviews the flagged submission: harmless, points back, unflagged, a comment
    with Gradebook(db, "rnn-course") as gb:
        nb = gb.find_submission_notebook(A, A, "reviewed")
        nb.flagged = False
        for g in nb.grades:
            g.manual_score = g.auto_score
        for c in nb.comments:
            c.manual_comment = "Reviewed: eval of a numpy name is harmless."
        gb.db.commit()
    reviewed = read_scores(course, A)["reviewed"]
    regrade = grade_all(course, [A], students=["reviewed", "annotated", "ada", "carl"], **kw)
    with Gradebook(db, "rnn-course") as gb:
        nb = gb.find_submission_notebook(A, A, "reviewed")
        review_kept = (nb.flagged, {c.manual_comment for c in nb.comments})

    _write(course, "resubmits", b'{"cells": [ truncated')
    resubmitted = grade_all(course, [A], students=["resubmits"], **kw)
    final = read_scores(course, A)

    from autograder.export import export
    from autograder.feedback import generate

    grades = export(course, tmp_path_factory.mktemp("grades"))
    with grades["by_assignment"].open(newline="", encoding="utf-8") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    pages = generate(course, A)
    return dict(course=course, first=first, before=before, results={
        r.job.student: r for r in second}, summary=format_results(second), after=after,
        reviewed=reviewed, regrade={r.job.student: r for r in regrade}, review_kept=review_kept,
        resubmitted=resubmitted[0], final=final, rows=rows, pages=pages)


def _total(cells):
    return sum(c.score for c in cells.values())


def _feedback(graded_class, student) -> str:
    import html as html_mod
    import re

    text = graded_class["pages"][student].read_text(encoding="utf-8")
    return html_mod.unescape(re.sub(r"<[^>]+>", " ", text))


def _everywhere(graded_class, student, words):
    """The words are in the summary line, the export's reason and the feedback."""
    r = graded_class["results"][student]
    line = f"{student} / {A}: {r.status}: {r.message}"
    assert line in graded_class["summary"]
    assert words in r.message, r.message
    assert graded_class["rows"][student]["reason"] == r.message
    assert graded_class["rows"][student]["status"] == r.status
    assert " ".join(words.split()) in " ".join(_feedback(graded_class, student).split())


def test_a_course_without_a_gradebook_is_graded(graded_class):
    """Item 12: no gradebook.db (a fresh clone, release/ committed): created, the assignment
    recorded from source/, and the controls graded."""
    first = graded_class["first"]
    assert [r.status for r in first] == ["graded", "graded"]
    assert any(n.startswith("created the gradebook") for n in first.notes)
    assert f"recorded {A} in the gradebook from source/" in format_results(first)
    assert _total(graded_class["before"]["ada"]) == FULL
    assert _total(graded_class["before"]["carl"]) == FULL - 2


def test_the_controls_never_move(graded_class):
    for key in ("after", "final"):
        for student in ("ada", "carl"):
            assert graded_class[key][student] == graded_class["before"][student]
    assert all(r.ok and not r.notes for s, r in graded_class["regrade"].items()
               if s in ("ada", "carl"))


def test_an_on_time_offset_is_not_late(graded_class):
    r = graded_class["results"]["on_time_plus0100"]
    assert r.ok and r.final == FULL and r.penalty == 0
    _everywhere(graded_class, "on_time_plus0100", "nbgrader alone would read 2026-11-30 "
                "23:28:20 UTC")
    row = graded_class["rows"]["on_time_plus0100"]
    assert float(row["score"]) == FULL and row["timestamp"].startswith("2026-11-30T22:30:00")


def test_a_late_offset_is_late_and_the_summary_shows_the_final_score(graded_class):
    r = graded_class["results"]["late_minus0500"]
    assert r.ok and r.score == FULL and r.penalty == FULL and r.final == 0
    _everywhere(graded_class, "late_minus0500", "late penalty 20 (20/20 before the penalty)")
    assert "submitted 1 h 30 min after the due date" in r.message
    assert re.search(r"^late_minus0500 +0/20 ", graded_class["summary"], re.M), (
        graded_class["summary"])
    row = graded_class["rows"]["late_minus0500"]
    assert (float(row["raw_score"]), float(row["late_penalty"]), float(row["score"])) == (
        FULL, FULL, 0.0)
    assert "Late submission penalty" in _feedback(graded_class, "late_minus0500")


def test_a_naive_timestamp_is_in_the_course_time_zone(graded_class):
    r = graded_class["results"]["naive_berlin"]
    assert r.ok and r.final == FULL
    _everywhere(graded_class, "naive_berlin", "read as 2026-11-30 22:50:00 UTC")


def test_a_type_annotation_is_not_flagged(graded_class):
    r = graded_class["results"]["annotated"]
    assert r.ok and r.final == FULL and "flagged" not in r.message


def test_a_review_survives_a_regrade_of_the_same_submission(graded_class):
    first = graded_class["results"]["reviewed"]
    assert "points withheld" in first.message and first.final == 0
    assert _total(graded_class["reviewed"]) == FULL  # the grader's decision
    again = graded_class["regrade"]["reviewed"]
    assert again.ok and again.final == FULL
    assert "the review in the gradebook is kept" in again.message
    flagged, comments = graded_class["review_kept"]
    assert not flagged and comments == {"Reviewed: eval of a numpy name is harmless."}
    assert _total(graded_class["final"]["reviewed"]) == FULL


def test_an_unreadable_resubmission_says_the_grades_are_the_previous_ones(graded_class):
    r = graded_class["resubmitted"]
    assert r.status == "invalid" and "is not valid notebook JSON" in r.message
    assert "the grades shown are the previous submission's (20/20, graded 20" in r.message
    row = graded_class["rows"]["resubmits"]
    assert row["status"] == "invalid" and row["reason"] == r.message
    assert float(row["score"]) == FULL
    text = " ".join(_feedback(graded_class, "resubmits").split())
    assert "Your latest submission could not be graded" in text
    assert "the grades shown are the previous submission's" in text
    assert _total(graded_class["final"]["resubmits"]) == FULL


@pytest.mark.parametrize("student, words", [
    ("lee[2]", "contains [ ], which nbgrader reads as a file pattern"),
    ("broken_json", f"{NB} is not valid notebook JSON"),
])
def test_submissions_not_graded_have_a_row_and_a_reason(graded_class, student, words):
    r = graded_class["results"][student]
    assert r.status == "invalid"
    _everywhere(graded_class, student, words)
    row = graded_class["rows"][student]
    assert row["submitted"] == "True" and float(row["score"]) == 0
    assert float(row["max_score"]) == FULL
    assert student not in graded_class["after"]


def test_an_id_with_shell_characters_is_graded(graded_class):
    r = graded_class["results"]["o'brien; ls"]
    assert r.ok and r.final == FULL
    _everywhere(graded_class, "o'brien; ls", "needs quoting on a command line")


def test_a_huge_image_made_while_grading_is_bounded(graded_class):
    r = graded_class["results"]["big_image"]
    assert r.ok and r.final == FULL
    _everywhere(graded_class, "big_image", "a 3000x3000 PNG image of")
    graded = graded_class["course"] / "autograded" / "big_image" / A / NB
    assert graded.stat().st_size < 2 * 2**20
    assert graded_class["pages"]["big_image"].stat().st_size < 3 * 2**20
    assert "[output removed when grading: a 3000x3000 PNG image" in _feedback(graded_class,
                                                                             "big_image")


def test_a_students_own_marker_line_hides_nothing(graded_class):
    assert graded_class["results"]["marker_line"].final == FULL
    text = _feedback(graded_class, "marker_line")
    assert "_my_own_line_after_the_marker" in text and "still shown" in text


@pytest.mark.parametrize("student, words", [
    ("copy1", f"graded {A}-Copy1.ipynb in place of {NB}, which is unchanged from the release"),
    ("nested", f"graded work/02_Forward_Pass.ipynb in place of {NB}, which is missing"),
    ("extra", "not graded: Untitled.ipynb (an extra notebook)"),
    ("bom", "byte-order mark, which nbgrader cannot read; it was removed"),
    ("dup_cell", "graded cell 'softmax' occurs 2 times in 02_forward_pass.ipynb (a copied "
                 "graded cell)"),
])
def test_normalized_submissions_get_full_marks_and_say_why(graded_class, student, words):
    r = graded_class["results"][student]
    assert r.ok and r.final == FULL, r
    _everywhere(graded_class, student, words)


def test_nbformat_44_with_ids_gets_full_marks(graded_class):
    r = graded_class["results"]["nb44_ids"]
    assert r.ok and r.final == FULL and not r.notes


def test_no_checksum_warning_becomes_a_reason(graded_class):
    """nbgrader logs "checksum ... has changed" for every test cell with hidden tests (it puts
    them back from the gradebook; nbgrader #1961): never a reason in the summary."""
    assert "checksum" not in graded_class["summary"]
    assert "type or metadata was changed" not in graded_class["summary"]


def test_the_summary_lists_every_case(graded_class):
    summary = graded_class["summary"]
    for student, r in graded_class["results"].items():
        if not r.ok or r.notes:
            assert f"{student} / {A}: {r.status}: {r.message}" in summary


def test_every_submission_has_one_row(graded_class):
    rows = graded_class["rows"]
    assert set(graded_class["results"]) | {"ada", "carl"} == set(rows)
    assert all(r["assignment"] == A for r in rows.values())
    assert {r["status"] for r in rows.values()} == {"graded", "invalid"}


def test_ctrl_c_stops_the_local_workers_and_their_kernels(course, notebooks):
    """Ctrl-C (SIGINT) while both local workers grade a notebook that would run for minutes:
    ``make grade`` ends with its one-line message and exit code 130, and no process it started
    (grading workers, sandboxes, kernels) is left."""
    for student in ("stuck_a", "stuck_b"):
        _write(course, student, _append(notebooks[3], "rnn_forward",
                                        "import time\ntime.sleep(300)  # still running at Ctrl-C"))
    grade = start_grading(course, A, "--workers", "2")
    parent = psutil.Process(grade.pid)

    def kernels():
        found = []
        for p in parent.children(recursive=True):
            try:
                if "ipykernel" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:
                pass
        return found

    for _ in range(600):
        if len(kernels()) >= 2:
            break
        assert grade.poll() is None, grade.communicate()[0][-3000:]
        time.sleep(0.5)
    else:
        pytest.fail("the stuck notebooks never started")
    time.sleep(2)
    started = parent.children(recursive=True)
    ctrl_c(grade)
    gone, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"left running after Ctrl-C: {[' '.join(p.cmdline()) for p in alive]}"
