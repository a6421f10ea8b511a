"""The grading pipeline, end to end: full marks for the solution, zero for the untouched release,
and every buggy fixture loses exactly the points of what it breaks.

The solution, the blank release and a sample of fixtures go through the real ``nbgrader
autograde``; every fixture goes through ``autograder.fixturecheck`` (the same notebook and
nbgrader's own scoring, a forked process instead of a fresh kernel each), and
``test_fixturecheck_agrees_with_nbgrader`` holds the two to the same scores, cell for cell."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.config import ASSIGNMENTS, REPO_ROOT
from autograder.submissions import load_variants, nbgrader_sample

VARIANTS = [(a, v) for a in ASSIGNMENTS for v in load_variants(a)]


def _scores(graded_course, assignment, student, *, manual=False):
    """Per-cell scores of one submission; without ``manual``, the autograded cells only."""
    results, logs = graded_course
    cells = results[assignment].get(student)
    log = logs[assignment][-3000:]
    assert cells, f"{student} was not graded for {assignment}; nbgrader said:\n{log}"
    if manual:
        return cells
    manual_cells = _manual(graded_course, assignment)
    return {g: c for g, c in cells.items() if g not in manual_cells}


def _manual(graded_course, assignment):
    """Cells the instructor grades by hand: the solution's answers to them await a human."""
    results, _ = graded_course
    return {g for g, c in results[assignment]["solution"].items() if c.needs_manual_grade}


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks(graded_course, assignment):
    cells = _scores(graded_course, assignment, "solution")
    lost = {g: (c.score, c.max_score) for g, c in cells.items() if c.score != c.max_score}
    assert not lost, f"the instructor's solution loses points in {assignment}: {lost}"
    assert sum(c.max_score for c in cells.values()) > 0


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_scores_zero(graded_course, assignment):
    cells = _scores(graded_course, assignment, "blank", manual=True)
    solution = _scores(graded_course, assignment, "solution", manual=True)
    assert set(cells) == set(solution), "the blank submission was not graded on every test cell"
    scored = {g: c.score for g, c in cells.items() if c.score != 0}
    assert not scored, f"an untouched release notebook earns points in {assignment}: {scored}"


def _checked(checked_fixtures, assignment, student):
    """Per-cell ``(score, max_score)`` of one submission as autograder.fixturecheck scored it."""
    result = checked_fixtures[assignment][student]
    assert "scores" in result, f"{student} of {assignment} did not run: {result.get('error')}"
    return {g: tuple(pair) for g, pair in result["scores"].items()}


@pytest.mark.grading
@pytest.mark.parametrize(
    "assignment,variant", VARIANTS, ids=[f"{a}:{v.name}" for a, v in VARIANTS]
)
def test_variant_loses_exactly_its_points(checked_fixtures, assignment, variant):
    cells = _checked(checked_fixtures, assignment, variant.name)
    failed = {g for g, (score, top) in cells.items() if top and score < top}
    partial = {g: score for g, (score, top) in cells.items() if 0 < score < top}
    assert not partial, f"autograded cells score all or nothing, got partial scores {partial}"
    expected = set(variant.fails)
    errors = checked_fixtures[assignment][variant.name]["errors"]
    assert failed == expected, (
        f"{variant.kind} {variant.name!r} ({variant.why}) should fail {sorted(expected)}, "
        f"failed {sorted(failed)}; errors: {errors}"
    )
    if "says" in variant.extra:  # the message must name the cause (issue 12, item 6)
        import re

        for grade_id in expected:
            said = [e for e in errors if f"({grade_id})" in e]
            assert any(re.search(variant.extra["says"], e) for e in said), (
                f"{variant.name}: the message of {grade_id} should match "
                f"{variant.extra['says']!r}; it is {said}")


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_fixturecheck_agrees_with_nbgrader(graded_course, checked_fixtures, assignment):
    """On every submission nbgrader graded, fixturecheck gives every autograded cell the same
    score: what test_variant_loses_exactly_its_points proves holds for nbgrader too."""
    sample = nbgrader_sample(assignment)
    assert len(sample) == 4, f"the sample should hold a bug and an alternative: {sample}"
    for student in sample:
        ours = _checked(checked_fixtures, assignment, student)
        theirs = {g: (c.score, c.max_score) for g, c in
                  _scores(graded_course, assignment, student).items()}
        assert ours == theirs, f"{assignment}, {student}: fixturecheck {ours}, nbgrader {theirs}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_cell_has_a_bug_that_it_catches(checked_fixtures, assignment):
    """Each autograded test cell is proven to catch at least one real mistake."""
    auto = set(_checked(checked_fixtures, assignment, "solution"))
    caught = {g for v in load_variants(assignment) if v.kind == "bug" for g in v.fails}
    assert auto - caught == set(), f"test cells with no buggy fixture: {sorted(auto - caught)}"
    assert caught - auto == set(), f"fixtures name unknown test cells: {sorted(caught - auto)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_has_alternatives(assignment):
    kinds = [v.kind for v in load_variants(assignment)]
    assert kinds.count("bug") >= 4 and kinds.count("alternative") >= 2


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_a_plain_loops_alternative(assignment):
    """A slow but correct version (plain Python loops over batch and time) of every graded
    function with such axes must get full marks within the grading limits; the others say why
    there is nothing to loop over."""
    import tomllib

    from autograder.submissions import FIXTURES, answer_cells

    data = tomllib.loads((FIXTURES / f"{assignment}.toml").read_text(encoding="utf-8"))
    not_applicable = data.get("loops_not_applicable", {})
    functions = {cell for cell, _, names in answer_cells(assignment) if names}
    loops = {v.cell for v in load_variants(assignment, generated=False)
             if v.kind == "alternative" and v.extra.get("loops")}
    assert functions - loops - set(not_applicable) == set(), "graded functions without a loops "\
        "alternative or a reason in [loops_not_applicable]"
    assert set(not_applicable) <= functions and not set(not_applicable) & loops
    assert all(isinstance(why, str) and len(why) > 10 for why in not_applicable.values())


def test_demonstration_cells_are_skipped_under_autograde(graded_course, generated_courses):
    """Cells tagged skip-when-grading (autograder/preprocessors.py) stay unexecuted in the graded
    notebook; everything else ran. The full marks of the solution show nothing graded needs them."""
    import json

    from autograder.preprocessors import SKIP_NOTE, skipped

    n_skipped = 0
    for assignment, root in generated_courses.items():
        path = root / "autograded" / "solution" / assignment / f"{assignment}.ipynb"
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            if skipped(cell):
                n_skipped += 1
                assert cell["execution_count"] is None, assignment
                texts = ["".join(o.get("text", "")) for o in cell["outputs"]]
                assert texts == [SKIP_NOTE], assignment
            else:
                assert cell["execution_count"] is not None, (assignment, cell["source"][:60])
    assert n_skipped > 0


def _numbers(text: str) -> list[float]:
    import re

    return [float(m.replace(",", "")) for m in
            re.findall(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?", text)]


def _reveals(answer: float, text: str) -> bool:
    """Whether ``text`` shows the number ``answer`` (to 3 significant digits, ints exactly).
    Numbers of fewer than three significant digits (100, 47, 0.5) are too common to tell."""
    if len(str(abs(answer)).replace(".", "").strip("0")) < 3:
        return False
    if isinstance(answer, int | np.integer):
        return any(n == answer for n in _numbers(text))
    return any(abs(n - answer) <= 5e-4 * abs(answer) for n in _numbers(text)
               if n and len(str(n).replace("-", "").replace(".", "").strip("0")) >= 3)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_graded_answer_is_shown_before_it_is_asked(checked_fixtures, assignment):
    """No numeric quiz answer appears in a markdown cell or the printed output of a cell (as the
    solution runs) before the answer's test cell: such points would be free. Option letters and
    words are not checked this way (they occur in every question's text)."""
    import nbformat

    from autograder.reference import load_reference
    from autograder.submissions import answer_cells

    ref = load_reference(assignment)
    nb = nbformat.read(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    printed = dict(checked_fixtures[assignment]["solution"]["printed"])
    for cell_id, code, functions in answer_cells(assignment):
        if functions:
            continue
        names = [line.split("=")[0].strip() for line in code.splitlines()
                 if "=" in line and not line.lstrip().startswith("#")]
        values = [getattr(ref, n) for n in names if hasattr(ref, n)]
        answers = [v for v in values if isinstance(v, int | float | np.number)
                   and not isinstance(v, bool)]
        test_index = ids.index(f"test_{cell_id}") if f"test_{cell_id}" in ids else ids.index(
            cell_id) + 1
        for index in range(test_index):
            shown = nb.cells[index].source if nb.cells[index].cell_type == "markdown" else \
                printed.get(index, "")
            for answer in answers:
                assert not _reveals(answer, shown), (
                    f"{assignment}: the answer to {cell_id} ({answer}) is shown in cell {index} "
                    f"before it is asked: {shown[:300]!r}")


@pytest.mark.grading
def test_visible_tests_catch_nine_in_ten_bugs_and_the_readme_says_so():
    """Passing every visible test means little is lost later: per assignment, at least 90 % of
    the buggy fixtures of graded functions fail their own cell on the visible tests alone
    (fixturecheck --visible), and the README's table is that output, not an older one."""
    import re
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "autograder.fixturecheck", "--visible",
                           *ASSIGNMENTS], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.findall(r"^\| (\S+) \| (\d+) \| (\d+) \| (\d+) % \|$", proc.stdout, re.M)
    assert [r[0] for r in rows] == ASSIGNMENTS
    low = {a: f"{f}/{n}" for a, n, f, _ in rows if int(f) < 0.9 * int(n)}
    assert not low, f"visible tests catch under 90 % of the bugs: {low}\n{proc.stderr}"
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- recall:begin.*?-->\n(.*?)\n<!-- recall:end -->", readme, re.S)
    assert block, "README.md has no recall table"
    if set(ASSIGNMENTS) == set(p.name for p in (REPO_ROOT / "source").glob("[0-9][0-9]_*")):
        assert block.group(1).strip() == proc.stdout.strip(), (
            "README.md's recall table is stale; paste the output of "
            "`python -m autograder.fixturecheck --visible` there:\n" + proc.stdout)
