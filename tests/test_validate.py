"""`nbgrader validate` and autograde run the same cells, so they agree on every submission.

The case from issue 12: a student adds an import to a demonstration cell (tagged
skip-when-grading) and uses it in an answer. Before, validate ran the demonstration cell and said
"Success!", then autograde skipped it and the answer failed with a NameError. Now both skip it:
validate reports the failure the grade will have, and the skipped cell says it was not run.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest

from autograder.config import ASSIGNMENTS, REPO_ROOT
from autograder.grading import autograde, nbgrader, read_scores
from autograder.preprocessors import SKIP_NOTE, skipped
from autograder.submissions import solution_submission, write_submission

A = "01_notation"
pytestmark = pytest.mark.skipif(A not in ASSIGNMENTS, reason=f"{A} not selected")

# pad_batch written with itertools.zip_longest, imported in the demonstration cell before it.
PAD_BATCH = '''def pad_batch(sequences, pad_index=0):
    lengths = np.array([len(seq) for seq in sequences], dtype=np.int64)
    rows = list(zip(*zip_longest(*[list(s) for s in sequences], fillvalue=pad_index)))
    padded = np.array(rows, dtype=np.int64).reshape(len(lengths), int(lengths.max(initial=0)))
    mask = np.arange(padded.shape[1]) < lengths[:, None]
    return padded, mask, lengths
'''


def _submission(import_where: str):
    src = nbformat.read(REPO_ROOT / "source" / A / f"{A}.ipynb", as_version=4)
    rel = nbformat.read(REPO_ROOT / "release" / A / f"{A}.ipynb", as_version=4)
    nb = solution_submission(src, rel)
    demo = next(c for c in nb.cells if skipped(c))
    answer = next(c for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "pad_batch")
    answer.source = PAD_BATCH
    if import_where == "demo":
        demo.source = "from itertools import zip_longest\n" + demo.source
    else:
        answer.source = "from itertools import zip_longest\n\n" + answer.source
    return nb


def _validate(root, path) -> str:
    proc = nbgrader(root, "validate", str(path))
    return proc.stdout + proc.stderr


@pytest.mark.grading
def test_validate_and_autograde_agree_on_a_definition_in_a_skipped_cell(generated_courses,
                                                                        tmp_path):
    root = tmp_path / "course"
    shutil.copytree(generated_courses[A], root)
    for folder in ("submitted", "autograded", "feedback"):  # the other tests' students
        shutil.rmtree(root / folder, ignore_errors=True)
    (root / "nbgrader_config.py").write_text(
        (root / "nbgrader_config.py").read_text().replace(str(generated_courses[A]), str(root)))
    paths = {where: write_submission(root, f"import_in_{where}", A, _submission(where))
             for where in ("demo", "answer")}

    in_demo, in_answer = _validate(root, paths["demo"]), _validate(root, paths["answer"])
    assert "NameError" in in_demo and "zip_longest" in in_demo, in_demo[-3000:]
    assert "Success! Your notebook passes all the tests." in in_answer, in_answer[-3000:]

    proc = autograde(root, A)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = read_scores(root, A)
    lost = {s: {g for g, c in cells.items() if c.score < c.max_score and not c.needs_manual_grade}
            for s, cells in scores.items() if s in ("import_in_demo", "import_in_answer")}
    assert lost == {"import_in_demo": {"test_pad_batch"}, "import_in_answer": set()}

    graded = nbformat.read(root / "autograded" / "import_in_demo" / A / f"{A}.ipynb", as_version=4)
    notes = [c.outputs for c in graded.cells if skipped(c)]
    assert notes and all([o.get("text") for o in out] == [SKIP_NOTE] for out in notes)
