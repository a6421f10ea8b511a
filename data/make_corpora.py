"""Make the two corpora of assignment 8 from the packages they ship in.

* ``first_names.txt``: the first names of the 1990 US Census (public domain), as shipped in the
  PyPI package ``names`` 0.3.0 (files ``names/dist.male.first`` and ``names/dist.female.first``):
  the union of both lists, lower-cased, one name per line, sorted, without duplicates.
* ``devils_dictionary.txt``: Ambrose Bierce, *The Devil's Dictionary* (1911, public domain), as
  shipped in the Debian package ``dict-devil`` 1.0-13.1 (``/usr/share/dictd/devil.dict.dz``, the
  Internet Wiretap edition in dictd format): Bierce's preface and all entries, in the order of
  the file, without dictd's header entries; trailing spaces stripped from every line.

Run from the repository root, on a machine that reaches PyPI and Debian's archive::

    python data/make_corpora.py --fetch          # downloads both packages into a temp folder

or with the packages already unpacked somewhere::

    python data/make_corpora.py --names-dir DIR_OF_names_PACKAGE --devil-dict PATH/devil.dict.dz

Nothing in the course downloads anything at run time: the outputs are committed in ``data/``.
The script prints the SHA-256 of each file it writes; ``data/README.md`` lists the expected ones.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES_VERSION = "0.3.0"
DEVIL_VERSION = "1.0-13.1"


def first_names(names_dir: Path) -> str:
    """The census first-name lists: 'JAMES  3.318  3.318  1' -> 'james'."""
    names = set()
    for part in ("dist.male.first", "dist.female.first"):
        for line in (names_dir / part).read_text(encoding="ascii").splitlines():
            if line.strip():
                names.add(line.split()[0].lower())
    if not all(name.isalpha() and name.isascii() for name in names):
        raise ValueError("unexpected characters in the census lists")
    return "".join(f"{name}\n" for name in sorted(names))


def devils_dictionary(dict_dz: Path) -> str:
    """The dictd file's text from Bierce's PREFACE to the end of the last entry (ZOOLOGY)."""
    text = gzip.decompress(dict_dz.read_bytes()).decode("ascii")
    start = text.index("PREFACE")
    start = text.rindex("\n", 0, start) + 1  # the start of the (centred) PREFACE line
    end = text.rindex(" abcdefghijklmnopqrstuvwxyz")  # dictd's 00-database-alphabet entry
    lines = [line.rstrip() for line in text[start:end].splitlines()]
    return "\n".join(lines).strip("\n") + "\n"


def fetch(workdir: Path) -> tuple[Path, Path]:
    """Install ``names`` into a throw-away venv and unpack ``dict-devil``'s .deb, in workdir."""
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = venv / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", f"names=={NAMES_VERSION}"], check=True)
    names_dir = next((venv / "lib").glob("python3*/site-packages/names"))
    subprocess.run(["apt-get", "download", f"dict-devil={DEVIL_VERSION}"], cwd=workdir,
                   check=True)
    deb = next(workdir.glob("dict-devil_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "deb")], check=True)
    return names_dir, workdir / "deb" / "usr" / "share" / "dictd" / "devil.dict.dz"


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="ascii", newline="\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path.name}: {len(text.encode())} bytes, {text.count(chr(10))} lines, "
          f"sha256 {digest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fetch", action="store_true",
                        help="download the packages (pip, apt-get download) into a temp folder")
    parser.add_argument("--names-dir", type=Path, help="the installed `names` package folder")
    parser.add_argument("--devil-dict", type=Path, help="devil.dict.dz from dict-devil's .deb")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: data/)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.fetch:
            args.names_dir, args.devil_dict = fetch(Path(tmp))
        if args.names_dir is None or args.devil_dict is None:
            parser.error("give --fetch, or both --names-dir and --devil-dict")
        write(args.out / "first_names.txt", first_names(args.names_dir))
        write(args.out / "devils_dictionary.txt", devils_dictionary(args.devil_dict))


if __name__ == "__main__":
    main()
