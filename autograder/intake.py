"""Submission intake: read each submission once, normalize it, and say what was done with it.

``make grade`` (:mod:`autograder.grade`) calls :func:`take` for every
``submitted/<student>/<assignment>/`` before nbgrader sees it. The instructor's ``submitted/``
folder is only read; what nbgrader grades is a private copy (the *staged* submission) in which

* the notebook is the one the student worked in (see *names* below), as UTF-8 JSON without a
  byte-order mark, nbformat 4 with valid, unique cell ids (an nbformat 4.4 file that carries cell
  ids, which nbgrader grades but the schema refuses, is read as 4.5);
* nbgrader metadata that nbgrader itself cannot grade is made harmless: a graded cell copied (its
  grade_id twice: the last copy is graded, the earlier ones run as ordinary cells, as nbgrader's
  own DeduplicateIds intends), a cell with the grade_id of no cell of this assignment, or with
  nbgrader metadata and no grade_id (each makes nbgrader 0.9.5 crash with ``KeyError:
  'grade_id'`` when ``OverwriteCells.add_missing_cells`` is on);
* ``timestamp.txt`` holds the submission time in UTC, in the one format nbgrader's ``parse_utc``
  reads exactly (it reads ``+0100`` as 100 seconds): see :func:`parse_timestamp`.

Every submission ends in one :class:`Submission` with a status, ``"ok"`` (graded) or
``"invalid"`` (not graded), a reason when it is not graded, and notes for what was changed or
chosen. The same text is the summary line of ``make grade``, the ``reason`` column of
``grades_by_assignment.csv`` and the notes at the top of the feedback: it is kept in a *grading
record* per student and assignment (``grading_records/<student>/<assignment>.json`` in the
course folder, see :func:`write_record`).

Names. nbgrader grades only ``<assignment notebook>.ipynb`` and silently skips any other name. A
notebook is *a copy of* the assignment's notebook when it carries graded cells of it (by
grade_id), whatever its name or subfolder (``02_forward_pass-Copy1.ipynb``,
``02_forward_pass (1).ipynb``, ``submission/02_Forward_Pass.ipynb``). The policy:

* the named notebook is graded, unless it is unchanged from the release and exactly one copy was
  edited: then that copy is graded in its place, and the notes say so;
* a missing named notebook is replaced by its only copy (or its only edited copy);
* several edited candidates and no way to choose, or no notebook at all: not graded, and the
  reason lists what was found;
* every other notebook of the folder is named in the notes as not graded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autograder.course import nbgrader_meta

MAX_NOTEBOOK_BYTES = 50 * 2**20
TIMESTAMP_FILE = "timestamp.txt"
# What nbgrader's parse_utc reads exactly (nbgrader's exchange writes this format too).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
RECORDS = "grading_records"
CHECKPOINTS = ".ipynb_checkpoints"

# --- student ids ----------------------------------------------------------------------------------

# nbgrader puts the id into a glob pattern (``submitted/<id>/<assignment>``): these characters make
# it match nothing (``lee[2]``) or other students' folders (``a*``).
GLOB_CHARACTERS = "*?[]"
# Characters a shell reads specially. nbgrader and this course's commands never pass an id through
# a shell, so these ids are graded; the instructor must quote them on a command line.
SHELL_CHARACTERS = " \t!\"#$&'()*;<>?[\\]`{|}~"


def id_problem(student: str) -> str | None:
    """Why nbgrader cannot grade a student of this id, or None."""
    if student != student.strip():
        return (f"the student id {student!r} begins or ends with white space, which nbgrader "
                "strips (it then looks in another folder): rename the folder")
    bad = sorted({ch for ch in student if ch in GLOB_CHARACTERS})
    if bad:
        return (f"the student id {student!r} contains {' '.join(bad)}, which nbgrader reads as a "
                "file pattern (it would grade no notebook, or another student's): rename the "
                "folder, e.g. to " + repr(re.sub(r"[*?\[\]]", "_", student)))
    control = sorted({f"U+{ord(ch):04X}" for ch in student if ord(ch) < 32 or ord(ch) == 127})
    if control:
        return (f"the student id {student!r} contains control characters ({', '.join(control)}), "
                "which nbgrader cannot match: rename the folder")
    return None


def id_note(student: str) -> str | None:
    """A note for ids that are graded but need quoting on a shell command line."""
    shell = sorted({ch for ch in student if ch in SHELL_CHARACTERS})
    if shell or student.startswith("-"):
        return (f"the student id {student!r} needs quoting on a command line "
                f"(e.g. --student={_shell_quote(student)})")
    return None


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# --- timestamps -----------------------------------------------------------------------------------

# Abbreviations that name one offset only (CST, IST, ... are ambiguous and must be spelled out).
_ABBREVIATIONS = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2,
    "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "EST": -5, "EDT": -4, "CDT": -5,
    "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "JST": 9,
    "KST": 9, "HKT": 8, "SGT": 8, "AEST": 10, "AEDT": 11, "ACST": 9.5, "AWST": 8, "NZST": 12,
    "NZDT": 13,
}
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(.*)")
_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?")


class BadTimestamp(ValueError):
    pass


def _zone(name: str, when: datetime, course_tz: str) -> tzinfo | None:
    """The time zone a timestamp's zone text names (None: none given)."""
    name = name.strip().strip("()").strip()
    if not name:
        return None
    m = _OFFSET.fullmatch(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise BadTimestamp(f"{name!r} is not a UTC offset")
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    upper = name.upper()
    if upper in ("Z", "UTC", "UT", "GMT"):
        return UTC
    course = _course_zone(course_tz)
    if name in {course.tzname(when.replace(month=1)), course.tzname(when.replace(month=7)),
                course.tzname(when)}:
        return course  # the course's own zone, by its abbreviation (CET/CEST for Europe/Berlin)
    if upper in _ABBREVIATIONS:
        return timezone(timedelta(hours=_ABBREVIATIONS[upper]))
    if "/" in name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise BadTimestamp(f"unknown time zone {name!r} (write it as an offset, e.g. +01:00)")


def _course_zone(course_tz: str) -> tzinfo:
    if not course_tz or course_tz.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(course_tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise BadTimestamp(f"the course's time zone {course_tz!r} is unknown") from err


def parse_timestamp(text: str, course_tz: str = "UTC") -> datetime:
    """The moment a ``timestamp.txt`` means, as an aware UTC datetime.

    Read: ISO 8601 with ``T`` or a space, fractions of a second, and an offset (``+01:00``,
    ``+0100``, ``+01``, ``Z``) or a zone (``UTC``, ``Europe/Berlin``, an unambiguous abbreviation
    such as ``CET``, or the course zone's own) after it, with or without a space (nbgrader's
    exchange writes ``2026-11-30 22:30:00.123456 UTC``, ``git log`` ``2026-11-30 23:30:00
    +0100``, ``date -Iseconds`` ``2026-11-30T23:30:00+01:00``); RFC 2822 (``date -R``, e-mail);
    ``date``'s own ``Mon Nov 30 23:30:00 CET 2026``. A time without a zone is in ``course_tz``.
    Raises :class:`BadTimestamp` for anything else, never guesses a zone.
    """
    s = " ".join(text.split())
    if not s:
        raise BadTimestamp("timestamp.txt is empty")
    when: datetime | None = None
    m = _ISO.fullmatch(s)
    if m:
        clock = m.group(2).replace(",", ".")
        if "." in clock:  # fromisoformat takes at most 6 digits of a second
            head, frac = clock.split(".")
            clock = f"{head}.{(frac + '000000')[:6]}"
        try:
            when = datetime.fromisoformat(f"{m.group(1)}T{clock}")
        except ValueError as err:
            raise BadTimestamp(f"{s!r} is not a date and time ({err})") from err
        zone = _zone(m.group(3), when, course_tz)
        if zone is not None:
            when = when.replace(tzinfo=zone)
    else:
        when = _parse_other(s, course_tz)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_course_zone(course_tz))
    return when.astimezone(UTC)


def _parse_other(s: str, course_tz: str) -> datetime:
    from email.utils import parsedate_tz

    # date(1): "Mon Nov 30 23:30:00 CET 2026"
    m = re.fullmatch(r"(?:[A-Za-z]{3},? )?([A-Za-z]{3}) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) "
                     r"(\S+) (\d{4})", s)
    if m:
        try:
            when = datetime.strptime(f"{m.group(1)} {m.group(2)} {m.group(5)} {m.group(3)}",
                                     "%b %d %Y %H:%M:%S")
        except ValueError as err:
            raise BadTimestamp(f"{s!r} is not a date and time ({err})") from err
        zone = _zone(m.group(4), when, course_tz)
        return when.replace(tzinfo=zone) if zone else when
    # RFC 2822 (date -R, e-mail): "Mon, 30 Nov 2026 23:30:00 +0100"
    parts = parsedate_tz(s)
    if parts and re.search(r"\d{4}", s):
        try:
            when = datetime(*parts[:6])
        except ValueError as err:
            raise BadTimestamp(f"{s!r} is not a date and time ({err})") from err
        last = s.split()[-1]
        if parts[9] is not None and re.fullmatch(r"[+-]\d{4}|UT|UTC|GMT|Z", last):
            return when.replace(tzinfo=timezone(timedelta(seconds=parts[9])))
        zone = _zone(last, when, course_tz) if re.fullmatch(r"[A-Za-z/_]+", last) else None
        return when.replace(tzinfo=zone) if zone else when
    raise BadTimestamp(f"{s!r} is not a date and time nbgrader or this course can read "
                       "(write e.g. 2026-11-30 23:30:00 +01:00)")


def nbgrader_reading(text: str) -> datetime | None:
    """What nbgrader's own ``parse_utc`` makes of a timestamp (naive UTC), None if it fails."""
    import warnings

    from nbgrader.utils import parse_utc

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return parse_utc(text.strip())
    except Exception:  # noqa: BLE001 - nbgrader raises whatever dateutil raises
        return None


def normalize_timestamp(text: str, course_tz: str = "UTC") -> tuple[str, str | None]:
    """``(timestamp nbgrader reads exactly, note or None)``; the note says what nbgrader alone
    would have made of it when that differs."""
    when = parse_timestamp(text, course_tz)
    out = when.strftime(TIMESTAMP_FORMAT)
    theirs = nbgrader_reading(text)
    if theirs == when.replace(tzinfo=None):
        return out, None
    shown = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    if theirs is None:
        return out, f"timestamp.txt {text.strip()!r} read as {shown} (nbgrader cannot read it)"
    return out, (f"timestamp.txt {text.strip()!r} read as {shown} (nbgrader alone would read "
                 f"{theirs:%Y-%m-%d %H:%M:%S} UTC)")


# --- notebooks ------------------------------------------------------------------------------------

_CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


class Unreadable(ValueError):
    """A file that cannot be graded as a notebook; the message is the reason."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def read_notebook(path: Path, name: str | None = None) -> tuple[dict, bytes, list[str]]:
    """``(notebook, raw bytes, notes)`` of a submitted file, or :class:`Unreadable`.

    The notebook comes back decoded (a UTF-8 byte-order mark dropped, UTF-16/32 converted), as
    nbformat 4.5 when it carries cell ids, with every cell id valid and unique, and valid against
    the nbformat schema.
    """
    import nbformat

    name = name or Path(path).name
    size = Path(path).stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise Unreadable(f"{name} is {size / 2**20:.0f} MB, over the "
                         f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MB limit (clear the outputs, submit "
                         "again)")
    raw = Path(path).read_bytes()
    notes, body, encoding = [], raw, "utf-8"
    if raw.startswith(b"\xef\xbb\xbf"):
        body = raw[3:]
        notes.append(f"{name} was saved with a UTF-8 byte-order mark, which nbgrader cannot "
                     "read; it was removed")
    elif raw[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        encoding = "utf-32"
    elif raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as err:
        raise Unreadable(f"{name} is not {encoding.upper()} text (byte 0x{body[err.start]:02x} "
                         f"at position {err.start}); save it from Jupyter again") from err
    if encoding != "utf-8":
        notes.append(f"{name} was saved as {encoding.upper()}; it was converted to UTF-8")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as err:
        raise Unreadable(f"{name} is not valid notebook JSON ({err})") from err
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        version = nb.get("nbformat") if isinstance(nb, dict) else None
        if version not in (None, 4):
            raise Unreadable(f"{name} has nbformat {version!r}; this course uses nbformat 4")
        raise Unreadable(f"{name} is JSON but not a notebook (it has no list of cells)")
    if nb.get("nbformat") != 4:
        raise Unreadable(f"{name} has nbformat {nb.get('nbformat')!r}; this course uses "
                         "nbformat 4")
    minor = nb.get("nbformat_minor")
    cells = nb["cells"]
    if not isinstance(minor, int) or (minor < 5 and any(
            isinstance(c, dict) and "id" in c for c in cells)):
        nb["nbformat_minor"] = 5  # nbformat 4.4 with cell ids: nbgrader grades it, as 4.5
    if nb["nbformat_minor"] >= 5:
        seen = set()
        for cell in cells:
            if not isinstance(cell, dict):
                continue
            cid = cell.get("id")
            if not isinstance(cid, str) or not _CELL_ID.match(cid) or cid in seen:
                cid = uuid.uuid4().hex[:8]
                while cid in seen:
                    cid = uuid.uuid4().hex[:8]
                cell["id"] = cid
            seen.add(cid)
    try:
        nbformat.validate(nbformat.from_dict(nb))
    except nbformat.ValidationError as err:
        raise Unreadable(f"{name} is not a valid nbformat 4 notebook "
                         f"({str(err).splitlines()[0]})") from err
    return nb, raw, notes


def fix_nbgrader_metadata(nb: dict, known: set[str], name: str) -> list[str]:
    """Make the notebook's nbgrader metadata gradable by nbgrader; notes for what changed.

    ``known``: the grade_ids of this notebook's cells in the instructor's version.
    """
    notes = []
    last = {}
    for i, cell in enumerate(nb["cells"]):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id:
            last[grade_id] = i
    counts: dict[str, int] = {}
    for i, cell in enumerate(nb["cells"]):
        meta = cell.get("metadata")
        if not isinstance(meta, dict) or "nbgrader" not in meta:
            continue
        nbg = nbgrader_meta(cell)
        grade_id = nbg.get("grade_id")
        if not grade_id:
            del meta["nbgrader"]
            if any(nbg.get(k) for k in ("grade", "solution", "locked", "task")):
                notes.append(f"cell {i} of {name} had nbgrader marks but no grade_id; it was "
                             "run as an ordinary cell")
            continue
        if grade_id not in known:
            del meta["nbgrader"]
            notes.append(f"cell {grade_id!r} of {name} is not a cell of this assignment "
                         "(copied from another notebook?); it was run as an ordinary cell")
            continue
        counts[grade_id] = counts.get(grade_id, 0) + 1
        if last[grade_id] != i:
            del meta["nbgrader"]
    for grade_id, n in counts.items():
        if n > 1:
            notes.append(f"graded cell {grade_id!r} occurs {n} times in {name} (a copied graded "
                         "cell): the last copy was graded, the earlier ones ran as ordinary cells")
    return notes


def solution_sources(nb: dict) -> dict[str, str]:
    return {nbgrader_meta(c)["grade_id"]: _source(c).strip() for c in nb.get("cells", [])
            if nbgrader_meta(c).get("solution") and nbgrader_meta(c).get("grade_id")}


def grade_ids(nb: dict) -> set[str]:
    return {g for c in nb.get("cells", []) if (g := nbgrader_meta(c).get("grade_id"))}


# --- the assignment, as the instructor made it ----------------------------------------------------


@dataclass
class AssignmentInfo:
    name: str
    notebooks: list[str]  # file names, e.g. ["02_forward_pass.ipynb"]
    ids: dict[str, set[str]]  # notebook -> grade_ids of its cells
    locked: dict[str, set[str]]  # notebook -> grade_ids of locked cells (nbgrader restores them)
    released: dict[str, dict[str, str]]  # notebook -> {grade_id: released answer cell source}
    max_score: float = 0.0


def assignment_info(course_root: Path, assignment: str) -> AssignmentInfo | None:
    """What the course's ``source/`` (and ``release/``) say about an assignment; None if it has
    no source folder."""
    src = Path(course_root) / "source" / assignment
    names = sorted(p.name for p in src.glob("*.ipynb"))
    if not names:
        return None
    ids, locked, released, points = {}, {}, {}, 0.0
    for name in names:
        nb = json.loads((src / name).read_text(encoding="utf-8"))
        ids[name] = grade_ids(nb)
        locked[name] = {nbgrader_meta(c)["grade_id"] for c in nb["cells"]
                        if nbgrader_meta(c).get("locked") and nbgrader_meta(c).get("grade_id")}
        points += sum(float(nbgrader_meta(c).get("points") or 0) for c in nb["cells"]
                      if nbgrader_meta(c).get("grade"))
        rel = Path(course_root) / "release" / assignment / name
        if rel.is_file():
            released[name] = solution_sources(json.loads(rel.read_text(encoding="utf-8")))
    return AssignmentInfo(assignment, names, ids, locked, released, points)


# --- a submission ---------------------------------------------------------------------------------


@dataclass
class Submission:
    """What intake made of one ``submitted/<student>/<assignment>/``."""

    assignment: str
    student: str
    status: str = "ok"  # "ok": staged for grading; "invalid": not graded, see reason
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    graded_files: dict[str, str] = field(default_factory=dict)  # notebook -> file it came from
    timestamp: str | None = None  # as written for nbgrader (UTC)
    fingerprint: str = ""  # of the graded notebooks as handed in
    flags: list[str] = field(default_factory=list)  # integrity scan of the graded notebooks
    staged: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _notebook_files(folder: Path) -> list[Path]:
    """Every notebook file below a submission folder (any case of .ipynb), checkpoints excluded."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != CHECKPOINTS and not d.startswith("."))
        for f in sorted(files):
            if f.lower().endswith(".ipynb") and not Path(root, f).is_symlink():
                out.append(Path(root, f))
    return out


def _edited(nb: dict, released: dict[str, str] | None) -> bool:
    """Whether any answer cell differs from the released notebook (True if unknown)."""
    if released is None:
        return True
    answers = solution_sources(nb)
    return any(answers.get(g, "") != src for g, src in released.items()) or not answers


def take(course_root: Path, assignment: str, student: str, stage: Path | None = None, *,
         course_tz: str = "UTC", info: AssignmentInfo | None = None) -> Submission:
    """Read ``submitted/<student>/<assignment>/`` once, decide what is graded, and (when
    ``stage`` is given and it can be graded) write the normalized copy nbgrader grades to
    ``stage/<student>/<assignment>/``."""
    from autograder.integrity import scan_notebook

    sub = Submission(assignment, student)
    folder = Path(course_root) / "submitted" / student / assignment
    problem = id_problem(student)
    if problem:
        return _invalid(sub, problem)
    note = id_note(student)
    if note:
        sub.notes.append(note)
    info = info or assignment_info(course_root, assignment)
    if info is None:
        return _invalid(sub, f"no assignment {assignment!r} in source/ (a misnamed folder?)")

    files = _notebook_files(folder)
    chosen: dict[str, tuple[Path, dict, bytes]] = {}
    used: set[Path] = set()
    unreadable: dict[Path, str] = {}
    readable: dict[Path, tuple[dict, bytes, list[str]]] = {}
    for path in files:
        try:
            readable[path] = read_notebook(path, _rel(path, folder))
        except Unreadable as err:
            unreadable[path] = str(err)
        except OSError as err:
            unreadable[path] = f"{_rel(path, folder)} cannot be read ({err.strerror})"
    for name in info.notebooks:
        named = folder / name
        copies = [p for p, (nb, _, _) in readable.items()
                  if p != named and p not in used and grade_ids(nb) & info.ids[name]]
        edited = [p for p in copies if _edited(readable[p][0], info.released.get(name))]
        if named in unreadable:
            found = f" (also found {_names(copies, folder)}, not graded)" if copies else ""
            return _invalid(sub, unreadable[named] + found)
        if named in readable:
            nb = readable[named][0]
            if len(edited) == 1 and not _edited(nb, info.released.get(name)):
                pick = edited[0]
                sub.notes.append(f"graded {_rel(pick, folder)} in place of {name}, which is "
                                 "unchanged from the release")
            elif len(edited) > 1 and not _edited(nb, info.released.get(name)):
                return _invalid(sub, f"{name} is unchanged from the release, and {len(edited)} "
                                f"edited copies were found ({_names(edited, folder)}): hand in "
                                f"the one to grade as {name}")
            else:
                pick = named
        else:
            if len(copies) == 1 or len(edited) == 1:
                pick = copies[0] if len(copies) == 1 else edited[0]
                sub.notes.append(f"graded {_rel(pick, folder)} in place of {name}, which is "
                                 "missing")
            elif copies:
                return _invalid(sub, f"notebook {name} is missing, and {len(copies)} copies of "
                                f"it were found ({_names(copies, folder)}): hand in the one to "
                                f"grade as {name}")
            else:
                others = [p for p in files if p not in used]
                hint = f"; found {_names(others, folder)}, not a copy of it" if others else ""
                bad = [unreadable[p] for p in others if p in unreadable]
                if len(others) == 1 and bad:
                    hint = f"; found {bad[0]}"
                return _invalid(sub, f"notebook {name} is missing{hint}")
        used.add(pick)
        nb, raw, notes = readable[pick]
        sub.notes.extend(notes)
        chosen[name] = (pick, nb, raw)
    for path in files:
        if path in used:
            continue
        if path in unreadable:
            why = unreadable[path]
        elif path.parent == folder and path.name in info.notebooks:
            why = "unchanged from the release"
        else:
            ids = grade_ids(readable[path][0])
            of = [name for name in info.notebooks if ids & info.ids[name]]
            why = f"a copy of {of[0]}" if of else "an extra notebook"
        sub.notes.append(f"not graded: {_rel(path, folder)} ({why})")

    for name, (_, nb, _) in chosen.items():
        sub.notes.extend(fix_nbgrader_metadata(nb, info.ids[name], name))
        sub.flags.extend(scan_notebook(nb, skip=info.locked[name]))
    digest = hashlib.sha256()
    for name, (_, _, raw) in sorted(chosen.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(raw).digest())
    sub.fingerprint = digest.hexdigest()
    sub.graded_files = {name: _rel(p, folder) for name, (p, _, _) in chosen.items()}

    stamp = folder / TIMESTAMP_FILE
    if stamp.is_file():
        text = stamp.read_text(encoding="utf-8-sig", errors="replace")
        if text.strip():
            try:
                sub.timestamp, note = normalize_timestamp(text, course_tz)
            except BadTimestamp as err:
                return _invalid(sub, f"timestamp.txt: {err}; the submission time decides the "
                                "late penalty, so it was not graded")
            if note:
                sub.notes.append(note)
        else:
            sub.notes.append("timestamp.txt is empty: no submission time, not checked for "
                             "lateness")
    if stage is not None:
        sub.staged = _stage(folder, Path(stage) / student / assignment, chosen, sub.timestamp)
    return sub


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:
        return Path(path).name


def _names(paths, folder: Path) -> str:
    return ", ".join(_rel(p, folder) for p in paths)


def _invalid(sub: Submission, reason: str) -> Submission:
    sub.status, sub.reason = "invalid", reason
    return sub


def _stage(folder: Path, dest: Path, chosen: dict, timestamp: str | None) -> Path:
    """The private copy nbgrader grades: the submission's other files (regular files only, no
    links, no notebooks, no checkpoints), the chosen notebooks under their assignment names,
    and the normalized timestamp."""
    import nbformat

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != CHECKPOINTS and not Path(root, d).is_symlink()]
        for f in files:
            src = Path(root, f)
            if (f.lower().endswith(".ipynb") or src.is_symlink() or not src.is_file()
                    or (Path(root) == folder and f == TIMESTAMP_FILE)):
                continue
            target = dest / src.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    for name, (_, nb, _) in chosen.items():
        (dest / name).write_text(nbformat.writes(nbformat.from_dict(nb)), encoding="utf-8")
    if timestamp:
        (dest / TIMESTAMP_FILE).write_text(timestamp + "\n", encoding="utf-8")
    return dest


# --- grading records: one text per outcome, for the summary, the export and the feedback ---------


def record_path(course_root: Path, student: str, assignment: str) -> Path:
    return Path(course_root) / RECORDS / student / f"{assignment}.json"


def read_record(course_root: Path, student: str, assignment: str) -> dict | None:
    path = record_path(course_root, student, assignment)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_record(course_root: Path, record: dict) -> Path:
    path = record_path(course_root, record["student"], record["assignment"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def read_records(course_root: Path) -> dict[tuple[str, str], dict]:
    """``{(student, assignment): record}`` of a course folder."""
    out = {}
    base = Path(course_root) / RECORDS
    if not base.is_dir():
        return out
    for path in sorted(base.glob("*/*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        out[record["student"], record["assignment"]] = record
    return out


def submission_dict(sub: Submission) -> dict:
    d = asdict(sub)
    d.pop("staged", None)
    return d


def course_timezone(config) -> str:
    """The course's time zone setting (nbgrader's ``Exchange.timezone``, which its exchange
    writes timestamps in, else ``NbGraderAPI.timezone``), or UTC."""
    for section in ("Exchange", "NbGraderAPI"):
        if section in config and "timezone" in config[section]:
            return str(config[section].timezone)
    return "UTC"


def message(reason: str, notes: list[str]) -> str:
    """The one text of an outcome: the reason it was not graded (if so), then the notes."""
    return "; ".join(part for part in (reason, *notes) if part)
