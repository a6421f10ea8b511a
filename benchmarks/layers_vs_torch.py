"""How fast are the course's NumPy layers? The references of assignments 2/3, 5 and 6 against
torch.nn.RNN, torch.nn.GRU and torch.nn.LSTM on the CPU, in the same run.

Times one forward and one forward + backward pass of each reference solution (read from the source
notebooks with ``autograder.reference.load_reference``) on a batch of 32 sequences of 50 steps,
64 inputs and 128 hidden units, in float32, and the same with ``torch.nn`` on the CPU: warm-up,
then the median of interleaved repeats (``time.perf_counter``). Prints a Markdown table; ``--json``
also writes the figures for ``make bench``. A script, not a test::

    python benchmarks/layers_vs_torch.py              # from the repository root
    python benchmarks/layers_vs_torch.py --threads 1  # both libraries on one thread

PyTorch is optional: without it only the NumPy times are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from machine_facts import THREAD_VARIABLES, blas_name, optional_torch, set_threads

REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and PyTorch (default: every core)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per library")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args()


ARGS = parse_args()
if ARGS.threads is not None:  # BLAS reads these once, when NumPy is imported
    set_threads(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))
from autograder.reference import load_reference  # noqa: E402


def cores() -> int:
    return os.cpu_count() or 1


def blas_threads() -> int:
    """The threads NumPy's BLAS uses: the environment's setting, or (OpenBLAS's default) every core
    this process may run on."""
    for name in THREAD_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores()


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def problem(kind: str, rng, N, T, D, H):
    """Inputs and float32 weights in the course's layout for one layer kind, PyTorch's init."""
    f32, bound = np.float32, 1.0 / np.sqrt(H)
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[kind]

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(f32)

    x = rng.standard_normal((N, T, D)).astype(f32)
    h0 = np.zeros((N, H), dtype=f32)
    dh = rng.standard_normal((N, T, H)).astype(f32)
    params = {"Wx": uniform(gates * H, D), "Wh": uniform(gates * H, H)}
    if kind == "gru":
        params |= {"bx": uniform(3 * H), "bh": uniform(3 * H)}
    else:
        params["b"] = uniform(gates * H)
    return x, h0, dh, params


def numpy_layer(kind: str, x, h0, dh, p):
    """(forward, forward + backward) closures of the course's reference for ``kind``."""
    if kind == "rnn":
        ref, bwd = load_reference("02_forward_pass"), load_reference("03_bptt").rnn_backward
        args = (x, h0, p["Wx"], p["Wh"], p["b"])
        forward = ref.rnn_forward
    elif kind == "gru":
        ref = load_reference("05_gru")
        args, forward, bwd = (x, h0, p["Wx"], p["Wh"], p["bx"], p["bh"]), ref.gru_forward, \
            ref.gru_backward
    else:
        ref = load_reference("06_lstm")
        args, forward, bwd = (x, h0, p["Wx"], p["Wh"], p["b"]), ref.lstm_forward, ref.lstm_backward

    def fwd():
        return forward(*args)

    def step():
        h, cache = fwd()
        return h, bwd(dh, cache)

    return fwd, step


def torch_layer(torch, kind: str, x, h0, dh, p):
    """(forward, forward + backward, h) of ``torch.nn.RNN/GRU/LSTM`` with the same weights."""
    H, D = h0.shape[1], x.shape[2]
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind]
    layer = cls(D, H, batch_first=True)  # float32, like the NumPy arrays
    Wx, Wh = p["Wx"].copy(), p["Wh"].copy()
    if kind == "gru":  # the course's h = (1 - z) h_prev + z n is PyTorch's with z -> 1 - z
        bx, bh = p["bx"].copy(), p["bh"].copy()
        for a in (Wx, Wh, bx, bh):
            a[H:2 * H] *= -1
    else:
        bx, bh = p["b"], np.zeros_like(p["b"])
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.from_numpy(Wx))
        layer.weight_hh_l0.copy_(torch.from_numpy(Wh))
        layer.bias_ih_l0.copy_(torch.from_numpy(bx))
        layer.bias_hh_l0.copy_(torch.from_numpy(bh))
    xt = torch.from_numpy(x).requires_grad_()  # gradients for x and h0 too, as the reference
    h0t = torch.from_numpy(h0)[None].requires_grad_()
    state = (h0t, torch.zeros_like(h0t)) if kind == "lstm" else h0t
    dht = torch.from_numpy(dh)

    def forward():
        with torch.no_grad():
            return layer(xt, state)

    def step():
        layer.zero_grad(set_to_none=True)
        xt.grad = h0t.grad = None
        out, _ = layer(xt, state)
        out.backward(dht)
        return out

    return forward, step, step().detach().numpy()


def main() -> None:
    N, T, D, H = ARGS.batch, ARGS.steps, ARGS.inputs, ARGS.hidden
    threads = ARGS.threads or blas_threads()
    torch = optional_torch(threads, "timing NumPy only")
    runs, differences = {}, {}
    for kind in ("rnn", "gru", "lstm"):
        x, h0, dh, p = problem(kind, np.random.default_rng(0), N, T, D, H)
        fwd, step = numpy_layer(kind, x, h0, dh, p)
        h_np, grads = step()
        dtypes = {str(a.dtype) for a in (h_np, *grads)}
        if dtypes != {"float32"}:
            raise SystemExit(f"the reference {kind} returned {sorted(dtypes)} for float32 "
                             "inputs: it must not upcast to float64")
        runs[kind, "numpy", "forward"], runs[kind, "numpy", "forward + backward"] = fwd, step
        if torch is not None:
            t_fwd, t_step, h_t = torch_layer(torch, kind, x, h0, dh, p)
            differences[kind] = float(np.max(np.abs(h_t - h_np)))
            runs[kind, "torch", "forward"], runs[kind, "torch", "forward + backward"] = (
                t_fwd, t_step)

    for run in runs.values():  # warm-up: caches, thread pools, lazy initialisation
        for _ in range(3):
            run()
    times = {key: [] for key in runs}
    for _ in range(ARGS.repeats):  # interleaved, so that all see the same machine load
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    ms = {key: median_ms(values) for key, values in times.items()}

    print(f"Batch {N}, {T} steps, {D} inputs, {H} hidden units, float32; "
          f"median of {ARGS.repeats} runs\n")
    print("| layer | NumPy fwd (ms) | NumPy fwd+bwd (ms) | torch fwd (ms) | torch fwd+bwd (ms) "
          "| NumPy / torch (fwd+bwd) |")
    print("|---|---:|---:|---:|---:|---:|")
    figures = {}
    for kind in ("rnn", "gru", "lstm"):
        nf, nb = ms[kind, "numpy", "forward"], ms[kind, "numpy", "forward + backward"]
        row = {"numpy_forward_ms": nf, "numpy_step_ms": nb}
        if torch is not None:
            tf, tb = ms[kind, "torch", "forward"], ms[kind, "torch", "forward + backward"]
            row |= {"torch_forward_ms": tf, "torch_step_ms": tb, "ratio": nb / tb,
                    "max_abs_difference": differences[kind]}
            print(f"| {kind.upper()} | {nf:.1f} | {nb:.1f} | {tf:.1f} | {tb:.1f} | {nb / tb:.2f} |")
        else:
            print(f"| {kind.upper()} | {nf:.1f} | {nb:.1f} | – | – | – |")
        figures[kind] = row
    print()
    machine = {"numpy": np.__version__, "blas": blas_name(), "blas_threads": blas_threads(),
               "cores": cores(), "python": platform.python_version(),
               "machine": platform.machine(),
               "torch": torch.__version__ if torch is not None else None,
               "torch_threads": torch.get_num_threads() if torch is not None else None}
    print(f"- NumPy {np.__version__}, BLAS: {machine['blas']}, BLAS threads: {blas_threads()}")
    if torch is not None:
        print(f"- PyTorch {torch.__version__}, threads: {torch.get_num_threads()}; largest "
              "|h_numpy - h_torch|: " + ", ".join(f"{k} {v:.1e}" for k, v in differences.items()))
        ratio = figures["lstm"]["ratio"]
        verdict = "within" if ratio <= 2.0 else "NOT within"
        print(f"- LSTM forward + backward: NumPy / torch = {ratio:.2f}, {verdict} the target of 2")
    print(f"- cores: {cores()} (os.cpu_count()); Python {platform.python_version()}, "
          f"{platform.machine()}")
    if ARGS.json:
        ARGS.json.parent.mkdir(parents=True, exist_ok=True)
        ARGS.json.write_text(json.dumps({"shape": {"N": N, "T": T, "D": D, "H": H},
                                         "repeats": ARGS.repeats, "layers": figures,
                                         "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
