"""``make bench``: run every benchmark script and write one summary (benchmarks/RESULTS.md).

Runs, one after the other so that they do not compete for the two cores:

* ``layers_vs_torch.py``: RNN/GRU/LSTM forward + backward, course references vs ``torch.nn``;
* ``char_rnn_throughput.py``: char-RNN training, batched NumPy vs an unbatched baseline vs torch;
* ``seq2seq_throughput.py``: assignment 9's seq2seq with attention, training, NumPy vs torch;
* ``nbval_time.py``: nbval wall time of every solution notebook;
* ``grading_throughput.py``: autograding a class of 20 students, sequential vs parallel, and
  parallel without the kernels' sandbox (its overhead);
* ``dask_grading.py``: plain ``nbgrader autograde`` vs grading on 1 and 2 Dask workers.

Each writes its figures as JSON into build/bench/; this script prints one Markdown table of the
headline figures against the course's targets, with the machine facts, followed by each script's
own table, writes it all to benchmarks/RESULTS.md, and copies it into the README between the
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers. ``--quick`` runs smaller versions
(a few students, shorter training) to check that the pipeline works.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from machine_facts import blas_build

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "build" / "bench"


def run(script: str, *args: str, reuse: bool = False) -> tuple[str, dict | None]:
    path = REPO_ROOT / "benchmarks" / script
    if not path.exists():
        return f"_{script} is not in this checkout._\n", None
    js, md = OUT / (Path(script).stem + ".json"), OUT / (Path(script).stem + ".md")
    if reuse and js.exists() and md.exists():
        return md.read_text(), json.loads(js.read_text())
    js.unlink(missing_ok=True)
    print(f"running {script} {' '.join(args)}", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable, str(path), *args, "--json", str(js)], cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return f"_{script} failed (exit {proc.returncode})._\n\n{proc.stdout}\n", None
    md.write_text(proc.stdout)
    return proc.stdout, json.loads(js.read_text()) if js.exists() else None


def machine() -> str:
    import numpy as np

    blas = blas_build()
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
            f"{platform.python_version()}, NumPy {np.__version__} with {blas}, PyTorch "
            f"{torch_version}; {datetime.date.today().isoformat()}")


def summary(figures: dict) -> str:
    rows = []
    layers = (figures.get("layers") or {}).get("layers", {})
    for kind in ("rnn", "gru", "lstm"):
        r = layers.get(kind, {})
        if "ratio" in r:
            target = "≤ 2" if kind == "lstm" else "–"
            ok = ("met" if r["ratio"] <= 2 else "missed") if kind == "lstm" else ""
            rows.append((f"{kind.upper()} forward + backward, NumPy / torch CPU (float32)",
                         f"{r['numpy_step_ms']:.1f} ms / {r['torch_step_ms']:.1f} ms = "
                         f"{r['ratio']:.2f}", target, ok))
    char_rows = (figures.get("char") or {}).get("rows") or []
    if char_rows:
        a = char_rows[0]
        ok = a["throughput_vs_b"] >= 10 and a["val_nats_minus_b"] <= 0
        rows.append(("char-RNN training throughput, batched / unbatched NumPy (loss difference)",
                     f"{a['throughput_vs_b']:.1f}x ({a['val_nats_minus_b']:+.2f} nats/char)",
                     "≥ 10x at ≤ loss", "met" if ok else "missed"))
    for r in (figures.get("seq2seq") or {}).get("rows") or []:
        if r["model"].startswith("(b)"):
            a = next(x for x in figures["seq2seq"]["rows"]
                     if x["attention"] == r["attention"] and x["model"].startswith("(a)"))
            rows.append((f"seq2seq ({r['attention']} attention) training, sentences/s, NumPy / "
                         f"torch CPU (exact match)",
                         f"{a['sentences_per_s']:,.0f} / {r['sentences_per_s']:,.0f} = "
                         f"{a['sentences_per_s'] / r['sentences_per_s']:.2f} "
                         f"({a['exact_match']:.1%} / {r['exact_match']:.1%})", "–", ""))
    nbval = figures.get("nbval") or {}
    if "total_s" in nbval:
        rows.append(("nbval of every notebook (sequential)", f"{nbval['total_s']:.0f} s", "–", ""))
    grading = figures.get("grading") or {}
    if "runs" in grading:
        n = len(grading["assignments"])
        for label, r in grading["runs"].items():
            workers = f"{r['workers']} worker" + ("s" if r["workers"] != 1 else "")
            rows.append((f"autograde, {label} ({workers}), per student, {n} assignments",
                         f"{r['per_student_s']:.1f} s", "< 60 s",
                         "met" if r["per_student_s"] < 60 else "missed"))
        rows.append(("autograde speedup, parallel / sequential", f"{grading['speedup']:.2f}x",
                     "–", ""))
        if "sandbox_overhead_s" in grading:
            rows.append(("grading kernels' sandbox, overhead per submission",
                         f"{grading['sandbox_overhead_s']:+.2f} s", "–", ""))
    dask = figures.get("dask") or {}
    if "runs" in dask:
        for label, r in dask["runs"].items():
            rows.append((f"grading throughput, {label}", f"{r['per_submission_s']:.1f} s per "
                         f"submission ({r['speedup']:.2f}x nbgrader autograde)", "–", ""))
    lines = ["| figure | measured | target | |", "|---|---:|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small versions, to test the pipeline")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse figures already in build/bench/; run the rest")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    parts, figures = {}, {}
    reuse = args.reuse and not quick
    parts["layers"], figures["layers"] = run("layers_vs_torch.py",
                                             *(["--repeats", "3"] if quick else []), reuse=reuse)
    parts["char"], figures["char"] = run("char_rnn_throughput.py",
                                         *(["--seconds", "3"] if quick else []), reuse=reuse)
    parts["seq2seq"], figures["seq2seq"] = run("seq2seq_throughput.py",
                                               *(["--quick"] if quick else []), reuse=reuse)
    parts["nbval"], figures["nbval"] = run("nbval_time.py", reuse=reuse)
    parts["grading"], figures["grading"] = run("grading_throughput.py",
                                               *(["--students", "2", "02_forward_pass"]
                                                 if quick else []), reuse=reuse)
    parts["dask"], figures["dask"] = run("dask_grading.py",
                                         *(["--students", "2", "02_forward_pass"]
                                           if quick else []), reuse=reuse)
    titles = {"layers": "Layers vs torch.nn (benchmarks/layers_vs_torch.py)",
              "char": "Char-RNN training (benchmarks/char_rnn_throughput.py)",
              "seq2seq": "Seq2seq with attention training (benchmarks/seq2seq_throughput.py)",
              "nbval": "nbval (benchmarks/nbval_time.py)",
              "grading": "Autograding a class (benchmarks/grading_throughput.py)",
              "dask": "Grading on Dask distributed (benchmarks/dask_grading.py)"}
    text = [f"Machine: {machine()}.{' (--quick run)' if quick else ''}", "", summary(figures), ""]
    for key, title in titles.items():
        text += [f"#### {title}", "", parts[key].strip(), ""]
    md = "\n".join(text).strip() + "\n"
    print(md)
    if quick:
        return
    (REPO_ROOT / "benchmarks" / "RESULTS.md").write_text("# Benchmark results (`make bench`)\n\n"
                                                         + md)
    readme = REPO_ROOT / "README.md"
    old = readme.read_text()
    new, n = re.subn(r"(<!-- bench:begin -->\n).*?(<!-- bench:end -->)",
                     lambda m: m.group(1) + md + m.group(2), old, flags=re.S)
    if n:
        readme.write_text(new)


if __name__ == "__main__":
    main()
