"""How long does nbval take on each solution notebook? (The last step of ``make test``.)

Runs ``pytest --nbval-lax`` on every instructor notebook in source/ and every companion notebook
in notebooks/, one at a time, and prints a Markdown table of wall times; ``--json`` also writes
them for ``make bench``. A script, not a test::

    python benchmarks/nbval_time.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from autograder.config import ASSIGNMENTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "autograder.companions"], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    notebooks = [REPO_ROOT / "source" / a / f"{a}.ipynb" for a in ASSIGNMENTS]
    notebooks += sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    times = {}
    for nb in notebooks:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax",
                               "-p", "no:cacheprovider", str(nb)], cwd=REPO_ROOT,
                              capture_output=True, text=True)
        times[str(nb.relative_to(REPO_ROOT))] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"nbval failed on {nb}:\n{proc.stdout[-2000:]}")
    print("| notebook | nbval wall time (s) |")
    print("|---|---:|")
    for name, s in times.items():
        print(f"| `{name}` | {s:.1f} |")
    print(f"| **all** | **{sum(times.values()):.1f}** |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"notebooks": times, "total_s": sum(times.values())},
                                        indent=2))


if __name__ == "__main__":
    main()
