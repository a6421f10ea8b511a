"""Make the folk-tune corpus of assignment 10: Irish tunes in ABC notation, from O'Neill's
*Music of Ireland* (1903) as the music21 package ships it (``music21/corpus/oneills1850``, the
ABC transcription by Norbert Paap).

music21 is needed only here, to find its corpus; install it into a throw-away environment::

    python3 -m venv /tmp/m21 && /tmp/m21/bin/pip install music21==10.5.1
    /tmp/m21/bin/python data/make_tunes.py

The script reads the raw ABC text of the collection's 39 files (2,009 tunes) and keeps the tunes
that a beginner's tokenizer can read and whose bars add up:

- unit length ``L:1/8`` and a meter of 6/8, 9/8, 2/4, 3/4, 4/4, C or C| (4/4);
- no triplets ``(3``, chords or first/second endings ``[...]``, no inline fields;
- after the clean-up below, every bar holds exactly what the meter says, except the bars at the
  start or the end of a section (after ``|:``, ``::``, ``||`` or the start; before ``:|``, ``::``,
  ``||``, ``|]`` or the end), which may be shorter (a pickup and the bar that completes it); at
  least 8 bars.

The clean-up keeps the notes (accidental, letter, octave marks, length), rests and bar lines, and
drops what does not change them: chord symbols and annotations ``"..."``, grace notes ``{...}``,
decorations (``.~THSMPR`` and ``!...!``), slurs ``( )``, ties ``-`` (the tied notes are played
again) and line continuations ``\\``. Broken rhythm is written out as the ABC standard defines it
(``A>B`` is ``A3/2 B/2``, ``A<B`` is ``A/2 B3/2``); lengths are written in one form, ``/2`` for
``/``, ``3/2``, ``4``; ``:|:`` becomes ``::``, ``:||`` and ``:|]`` become ``:|``, ``||:`` ``|:``.
Each kept tune is written with the fields X (renumbered from 1), T, M, L, K, in the collection's
order. The output is deterministic; the script prints its SHA-256 (``data/README.md`` lists it).
"""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from pathlib import Path

import music21

HERE = Path(__file__).resolve().parent
OUT = HERE / "oneill_tunes.abc"
METER_UNITS = {"6/8": 6, "9/8": 9, "2/4": 4, "3/4": 6, "4/4": 8, "C": 8, "C|": 8}  # in 1/8 notes
BAR = re.compile(r"::|:\||\|\]|\|\||\|:|\|")
TOKEN = re.compile(r"(?P<bar>::|:\||\|\]|\|\||\|:|\|)"
                   r"|(?P<pitch>(?:\^\^|\^|__|_|=)?[A-Ga-g][,']*|z)(?P<num>\d*)(?P<slash>/*)"
                   r"(?P<den>\d*)|(?P<space>\s+)|(?P<broken>[<>])")
OPENS, CLOSES = ("start", "|:", "::", "||"), (":|", "::", "||", "|]", "end")


def tunes_of(path: Path) -> list[str]:
    text = path.read_text(encoding="latin-1")
    return [block.strip() for block in re.split(r"\n\s*\n", text) if re.search(r"^X:", block, re.M)]


def field(tune: str, name: str) -> str | None:
    match = re.search(rf"^{name}:\s*(.*?)\s*$", tune, re.M)
    return match.group(1) if match else None


def clean_body(tune: str) -> str:
    lines = tune.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("K:")) + 1
    body = "\n".join(lines[start:])
    body = re.sub(r'"[^"]*"', "", body)
    body = re.sub(r"\{[^}]*\}", "", body)
    body = re.sub(r"![^!]*!", "", body)
    body = body.replace("\\\n", "\n")
    body = re.sub(r"\((?!\d)", "", body).replace(")", "")
    body = re.sub(r"[.~THSMPR]", "", body).replace("-", "")
    for old, new in ((":|:", "::"), (":||", ":|"), ("||:", "|:"), (":|]", ":|")):
        body = body.replace(old, new)
    return body


def normal_key(key: str) -> str:
    """K: as tonic and lower-case mode, "m" for minor, nothing for major: "DDor" -> "Ddor"."""
    key = key.replace(" ", "")
    mode = key[1 + (key[1:2] in ("#", "b")):].lower()
    mode = {"maj": "", "major": "", "ion": "", "min": "m", "minor": "m", "aeo": "m"}.get(mode, mode)
    return key[:len(key) - len(key[1 + (key[1:2] in ("#", "b")):])] + mode


def length_text(length: Fraction) -> str:
    if length == 1:
        return ""
    if length.denominator == 1:
        return str(length.numerator)
    return (str(length.numerator) if length.numerator != 1 else "") + f"/{length.denominator}"


def rewrite(body: str, full: int) -> str | None:
    """The body with broken rhythm written out and lengths in one form; None if the tune is not
    kept (an unreadable symbol, a triplet or chord, or bars that do not add up)."""
    if re.search(r"[\[\]]|\(\d", body.replace("|]", "")):
        return None
    items, pos = [], 0  # [kind, text, length] with kind "bar", "note", "space", "broken"
    while pos < len(body):
        m = TOKEN.match(body, pos)
        if not m:
            return None
        pos = m.end()
        if m.group("bar"):
            items.append(["bar", m.group(0), None])
        elif m.group("space"):
            items.append(["space", "\n" if "\n" in m.group(0) else " ", None])
        elif m.group("broken"):
            items.append(["broken", m.group(0), None])
        else:
            num = int(m.group("num") or 1)
            slash, den = m.group("slash"), m.group("den")
            denominator = int(den) if den else 2 ** len(slash)
            if slash == "" and den:
                return None
            items.append(["note", m.group("pitch"), Fraction(num, denominator)])
    for i, item in enumerate(items):
        if item[0] == "broken":
            if not (0 < i < len(items) - 1 and items[i - 1][0] == items[i + 1][0] == "note"):
                return None
            a, b = (Fraction(3, 2), Fraction(1, 2)) if item[1] == ">" else (Fraction(1, 2),
                                                                            Fraction(3, 2))
            items[i - 1][2] *= a
            items[i + 1][2] *= b
    items = [item for item in items if item[0] != "broken"]
    bars, current, before = [], Fraction(0), "start"
    for kind, text, length in items:
        if kind == "bar":
            bars.append((current, before, text))
            current, before = Fraction(0), text
        elif kind == "note":
            current += length
    if current:
        bars.append((current, before, "end"))
    for length, before, after in bars:
        short_allowed = before in OPENS or after in CLOSES
        if length == 0 or length > full or (length < full and not short_allowed):
            return None
    if len(bars) < 8:
        return None
    out = []
    for kind, text, length in items:
        if kind == "note":
            out.append(text + length_text(length))
        elif kind == "bar":
            out.append(f" {text} ")
        else:
            out.append(text)
    lines = ["".join(out)]
    lines = [re.sub(r" +", " ", line).strip() for line in lines[0].split("\n")]
    return "\n".join(line for line in lines if line)


def main() -> None:
    root = Path(music21.__file__).resolve().parent / "corpus" / "oneills1850"
    kept, seen = [], 0
    for path in sorted(root.glob("*.abc")):
        for tune in tunes_of(path):
            seen += 1
            meter, unit, key = field(tune, "M"), field(tune, "L"), field(tune, "K")
            if unit != "1/8" or meter not in METER_UNITS or not key:
                continue
            body = rewrite(clean_body(tune), METER_UNITS[meter])
            if body is None:
                continue
            title = field(tune, "T") or "(untitled)"
            source = field(tune, "B") or ""
            kept.append((title, meter, normal_key(key), body, path.name, source))
    blocks = [f"X:{n}\nT:{title}\nM:{meter}\nL:1/8\nK:{key}\n{body}\n"
              for n, (title, meter, key, body, _, _) in enumerate(kept, 1)]
    OUT.write_text("\n".join(blocks), encoding="utf-8")
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"music21 {music21.__version__}: {seen} tunes read, {len(kept)} kept")
    print(f"{OUT.name}: {OUT.stat().st_size:,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
