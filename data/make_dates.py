"""Make the date-normalization data of assignment 9: dates written the ways people write them, in
five languages, each paired with its ISO 8601 form ("3 de maio de 1979" -> "1979-05-03").

The month names (wide, "maio", and abbreviated, "mai.") come from the Unicode CLDR, as the PyPI
package Babel ships it (``babel.dates.get_month_names``, format context); Babel is installed with
the course (a dependency of ``jupyterlab_server``). Everything else (the formats, the ordinal
suffixes of English, the dates) is written here.

The dates are the days of 1950-01-01 .. 2049-12-31. A fixed, seeded shuffle puts 2,000 of them
aside for testing; ``dates_train.tsv`` holds 20,000 examples of the other dates, ``dates_test.tsv``
one example of each test date, so that exact-match accuracy on the test file measures dates the
model has never seen in any form. Two-digit years read 50-99 as 19xx and 00-49 as 20xx. Numbers
with slashes or dots are always day first ("03/05/79" is the 3rd of May): the data holds no
ambiguous American month-first numbers.

Run from the repository root (no network needed)::

    python data/make_dates.py

It prints the SHA-256 of each file it writes; ``data/README.md`` lists the expected ones (for
Babel 2.19.0, CLDR 47). The output is committed: nothing in the course runs this at run time.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from pathlib import Path

from babel import __version__ as babel_version
from babel.dates import get_month_names

HERE = Path(__file__).resolve().parent
SEED = 2026
N_TRAIN, N_TEST = 20_000, 2_000
LOCALES = ("en", "pt", "es", "fr", "de")


def month_names(locale: str, width: str) -> list[str]:
    """The 12 month names of a locale from Babel's CLDR data: width 'wide' or 'abbreviated'."""
    names = get_month_names(width, context="format", locale=locale)
    return [names[m] for m in range(1, 13)]


MONTHS = {(loc, width): month_names(loc, width) for loc in LOCALES
          for width in ("wide", "abbreviated")}


def english_ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, 22nd, 23rd, ..., 31st."""
    suffix = "th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def formats(date: datetime.date) -> list[str]:
    """Every way this data writes one date."""
    d, m, y = date.day, date.month, date.year
    yy = f"{y % 100:02d}"

    def wide(loc):
        return MONTHS[loc, "wide"][m - 1]

    def abbr(loc):
        return MONTHS[loc, "abbreviated"][m - 1]

    return [
        # numbers, day first
        f"{d:02d}/{m:02d}/{y}", f"{d}/{m}/{yy}", f"{d:02d}.{m:02d}.{y}", f"{d}.{m}.{yy}",
        f"{d:02d}-{m:02d}-{y}",
        # English
        f"{d} {wide('en')} {y}", f"{wide('en')} {d}, {y}",
        f"{english_ordinal(d)} of {wide('en')} {y}",
        f"{abbr('en')} {d}, {y}", f"{d} {abbr('en')} {yy}",
        # Portuguese
        f"{d} de {wide('pt')} de {y}", f"{d} {abbr('pt')} {y}",
        # Spanish
        f"{d} de {wide('es')} de {y}", f"{d} {abbr('es')} {y}",
        # French
        f"{'1er' if d == 1 else d} {wide('fr')} {y}", f"{d} {abbr('fr')} {y}",
        # German
        f"{d}. {wide('de')} {y}", f"{d}. {abbr('de')} {y}",
    ]


def make(seed: int = SEED) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test): lists of (written date, ISO date); the test dates never occur in train."""
    rng = random.Random(seed)
    first, last = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
    days = [first + datetime.timedelta(k) for k in range((last - first).days + 1)]
    rng.shuffle(days)
    test_days, train_days = days[:N_TEST], days[N_TEST:]
    n_formats = len(formats(first))

    def example(date, k=None):
        k = rng.randrange(n_formats) if k is None else k
        return formats(date)[k], date.isoformat()

    train = [example(rng.choice(train_days)) for _ in range(N_TRAIN)]
    test = [example(date) for date in test_days]
    return train, test


def write(path: Path, pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{source}\t{target}\n" for source, target in pairs)
    path.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path.name}: {len(pairs)} lines, {len(text.encode('utf-8'))} bytes, sha256 {digest}")


def main() -> None:
    print(f"Babel {babel_version}; seed {SEED}")
    train, test = make()
    write(HERE / "dates_train.tsv", train)
    write(HERE / "dates_test.tsv", test)


if __name__ == "__main__":
    main()
