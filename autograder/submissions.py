"""Example student submissions, made from the instructor notebooks rather than stored copies.

* the *solution* submission is the released notebook with every solution cell filled in with the
  instructor's code (the ``### BEGIN/END SOLUTION`` marker lines dropped), as a student who got
  everything right would hand it in;
* the *blank* submission is the released notebook untouched;
* each *variant* in ``autograder/fixtures/<assignment>.toml`` is the solution submission with one
  small edit: a real student mistake (``kind = "bug"``) or a correct but different implementation
  (``kind = "alternative"``). ``fails`` lists the test cells the edit must fail, and only those.

Generating them keeps the fixtures in step with the notebooks: an edit whose ``find`` text no
longer occurs exactly once is an error, not a silently unchanged "bug".
"""

from __future__ import annotations

import ast
import copy
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.course import nbgrader_meta

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str
    cell: str
    why: str
    fails: tuple[str, ...] = ()
    find: str | None = None
    replace: str | None = None
    source: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def apply(self, code: str) -> str:
        if self.source is not None:
            return self.source
        count = code.count(self.find)
        if count != 1:
            raise ValueError(
                f"variant {self.name!r}: {self.find!r} occurs {count} times in cell "
                f"{self.cell!r}; it must occur exactly once"
            )
        return code.replace(self.find, self.replace)


def load_variants(assignment: str, *, generated: bool = True) -> list[Variant]:
    """The fixtures of ``autograder/fixtures/<assignment>.toml`` and, unless ``generated`` is
    false, the generated alternatives of every graded function (:func:`generated_variants`)."""
    path = FIXTURES / f"{assignment}.toml"
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    variants = []
    for raw in data.get("variant", []):
        raw = dict(raw)
        kind = raw.pop("kind")
        if kind not in ("bug", "alternative"):
            raise ValueError(f"{path.name}: variant kind must be bug or alternative, got {kind}")
        known = {k: raw.pop(k) for k in ("name", "cell", "why", "find", "replace", "source")
                 if k in raw}
        fails = tuple(raw.pop("fails", ()))
        if (known.get("source") is None) == (known.get("find") is None):
            raise ValueError(f"{path.name}:{known.get('name')}: give either source or find")
        if kind == "bug" and not fails:
            raise ValueError(f"{path.name}:{known['name']}: a bug must list the cells it fails")
        if kind == "alternative" and fails:
            raise ValueError(f"{path.name}:{known['name']}: an alternative must fail nothing")
        variants.append(Variant(kind=kind, fails=fails, extra=raw, **known))
    if generated:
        variants += generated_variants(assignment, data.get("generated_skip", []))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name}: duplicate variant names")
    return variants


def _functions(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]


def answer_cells(assignment: str) -> list[tuple[str, str, list[str]]]:
    """``(grade_id, solution code, names of the functions it defines)`` of every autograded
    answer cell of the source notebook, in order; quiz answers define no function."""
    from autograder.course import REPO_ROOT

    path = REPO_ROOT / "source" / assignment / f"{assignment}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        meta = nbgrader_meta(cell)
        if cell["cell_type"] == "code" and meta.get("solution") and not meta.get("grade"):
            code = strip_markers("".join(cell["source"]) if isinstance(cell["source"], list)
                                 else cell["source"])
            cells.append((meta["grade_id"], code, _functions(code)))
    return cells


def generated_variants(assignment: str, skips: list[dict] = ()) -> list[Variant]:
    """One alternative per graded function cell and per kind of ``autograder.alternatives``.

    Each is the solution cell with its functions wrapped (``f = scribble(f, ...)``), so it is
    correct by construction and must get full marks. ``skips``: the ``[[generated_skip]]`` tables
    of the fixture file (``function``, ``kinds``, ``why``) for functions whose contract rules a
    kind out (an update in place cannot be done on float32 copies).
    """
    from autograder.alternatives import KINDS

    cells = answer_cells(assignment)
    student_functions = sorted({f for _, _, names in cells for f in names})
    skipped = {(s["function"], kind): s["why"] for s in skips for kind in s["kinds"]}
    variants = []
    for cell_id, code, names in cells:
        for kind in KINDS:
            wrapped = [f for f in names if (f, kind) not in skipped]
            if not wrapped:
                continue
            lines = [f"from autograder.alternatives import {kind} as _alternative  # generated"]
            lines += [f"{f} = _alternative({f}, {student_functions!r})" for f in wrapped]
            variants.append(Variant(
                name=f"{cell_id}~{kind}", kind="alternative", cell=cell_id,
                why=f"generated: {kind} (autograder/alternatives.py) of {', '.join(wrapped)}",
                source=code + "\n".join(lines) + "\n", extra={"generated": kind}))
    return variants


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def find_cell(nb, grade_id_: str, solution: bool | None = None):
    """The cell of ``nb`` with nbgrader grade_id ``grade_id_`` (only a solution cell, or only a
    non-solution one, when ``solution`` is given). Raises KeyError when there is none."""
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade_id") == grade_id_ and solution in (None, bool(meta.get("solution"))):
            return cell
    raise KeyError(grade_id_)


def is_solution(cell) -> bool:
    """A cell the student writes: code to fill in, or a written answer graded by hand."""
    return bool(nbgrader_meta(cell).get("solution"))


def strip_markers(code: str) -> str:
    """The instructor's solution as a student would write it: marker lines removed."""
    return "\n".join(
        line for line in code.splitlines() if line.strip() not in MARKERS
    ).rstrip() + "\n"


def solution_submission(source_nb, release_nb):
    """The release notebook with every solution cell answered by the instructor's code."""
    answers = {
        grade_id(cell): strip_markers(cell.source)
        for cell in source_nb.cells
        if is_solution(cell)
    }
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = answers[grade_id(cell)]
    return nb


def variant_submission(source_nb, release_nb, variant: Variant):
    nb = solution_submission(source_nb, release_nb)
    cells = [c for c in nb.cells if grade_id(c) == variant.cell and is_solution(c)]
    if len(cells) != 1:
        raise ValueError(f"variant {variant.name!r}: no solution cell {variant.cell!r}")
    cells[0].source = variant.apply(cells[0].source)
    return nb


def submissions_for(assignment: str, source_root: Path, release_root: Path) -> dict:
    """``{student_id: notebook}`` for the solution, the blank release and every variant."""
    src = nbformat.read(source_root / assignment / f"{assignment}.ipynb", as_version=4)
    rel = nbformat.read(release_root / assignment / f"{assignment}.ipynb", as_version=4)
    subs = {"solution": solution_submission(src, rel), "blank": copy.deepcopy(rel)}
    for variant in load_variants(assignment):
        subs[variant.name] = variant_submission(src, rel, variant)
    return subs


def nbgrader_sample(assignment: str) -> list[str]:
    """The submissions the tests grade with the real nbgrader: the solution, the blank release,
    the first bug and the first alternative of the fixtures. All the others are checked with
    ``autograder.fixturecheck``, which tests/test_grading.py holds to nbgrader's results on
    these."""
    variants = load_variants(assignment)
    first = [next((v.name for v in variants if v.kind == kind), None)
             for kind in ("bug", "alternative")]
    return ["solution", "blank", *[name for name in first if name]]


def write_submission(course_root: Path, student: str, assignment: str, nb) -> Path:
    folder = Path(course_root) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    return path
