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

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

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


def load_variants(assignment: str) -> list[Variant]:
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
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name}: duplicate variant names")
    return variants


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_solution(cell) -> bool:
    """A cell the student writes: code to fill in, or a written answer graded by hand."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


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
