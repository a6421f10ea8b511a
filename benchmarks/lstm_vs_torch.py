"""How fast is the course's NumPy LSTM? The reference of assignment 6 against torch.nn.LSTM.

Times one forward and backward pass of the reference solution (read from
source/06_lstm/06_lstm.ipynb with ``autograder.reference.load_reference``) on a batch of 32
sequences of 50 steps, 64 inputs and 128 hidden units, in float32, and the same with
``torch.nn.LSTM`` on the CPU in the same run: warm-up, then the median of interleaved repeats
(``time.perf_counter``). Prints a Markdown table. A script, not a test::

    python benchmarks/lstm_vs_torch.py              # from the repository root
    python benchmarks/lstm_vs_torch.py --threads 1  # both libraries on one thread

PyTorch is optional: without it only the NumPy times are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and PyTorch (default: every core)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per library")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    return parser.parse_args()


ARGS = parse_args()
if ARGS.threads is not None:  # BLAS reads these once, when NumPy is imported
    for name in THREAD_VARIABLES:
        os.environ[name] = str(ARGS.threads)

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


def blas_name() -> str:
    try:
        from threadpoolctl import threadpool_info  # not a dependency: used if it is there

        info = [f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
                for p in threadpool_info() if p.get("user_api") == "blas"]
        if info:
            return ", ".join(info)
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no mode="dicts"
        return "unknown"


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def main() -> None:
    N, T, D, H = ARGS.batch, ARGS.steps, ARGS.inputs, ARGS.hidden
    f32 = np.float32
    rng = np.random.default_rng(0)
    bound = 1.0 / np.sqrt(H)  # PyTorch's default initialisation
    x = rng.standard_normal((N, T, D)).astype(f32)
    h0 = np.zeros((N, H), dtype=f32)
    Wx = rng.uniform(-bound, bound, (4 * H, D)).astype(f32)
    Wh = rng.uniform(-bound, bound, (4 * H, H)).astype(f32)
    b = rng.uniform(-bound, bound, 4 * H).astype(f32)
    dh = rng.standard_normal((N, T, H)).astype(f32)

    ref = load_reference("06_lstm")

    def numpy_forward():
        return ref.lstm_forward(x, h0, Wx, Wh, b)

    def numpy_step():
        h, cache = ref.lstm_forward(x, h0, Wx, Wh, b)
        return h, ref.lstm_backward(dh, cache)

    h_np, grads = numpy_step()
    dtypes = {str(a.dtype) for a in (h_np, *grads)}
    if dtypes != {"float32"}:
        raise SystemExit(f"the reference LSTM returned {sorted(dtypes)} for float32 inputs: it "
                         "must not upcast to float64")

    runs = {"numpy forward": numpy_forward, "numpy forward + backward": numpy_step}
    threads = ARGS.threads or blas_threads()
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed (`make torch`): timing NumPy only.\n")
    if torch is not None:
        torch.set_num_threads(threads)
        lstm = torch.nn.LSTM(D, H, batch_first=True)  # float32, like the NumPy arrays
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(Wx))
            lstm.weight_hh_l0.copy_(torch.from_numpy(Wh))
            lstm.bias_ih_l0.copy_(torch.from_numpy(b / 2))
            lstm.bias_hh_l0.copy_(torch.from_numpy(b / 2))
        xt = torch.from_numpy(x).requires_grad_()  # gradients for x and h0 too, as the reference
        h0t = torch.from_numpy(h0)[None].requires_grad_()
        c0t = torch.zeros_like(h0t)
        dht = torch.from_numpy(dh)

        def torch_forward():
            with torch.no_grad():
                return lstm(xt, (h0t, c0t))

        def torch_step():
            lstm.zero_grad(set_to_none=True)
            xt.grad = h0t.grad = None
            out, _ = lstm(xt, (h0t, c0t))
            out.backward(dht)
            return out

        difference = float(np.max(np.abs(torch_step().detach().numpy() - h_np)))
        runs |= {"torch forward": torch_forward, "torch forward + backward": torch_step}

    for run in runs.values():  # warm-up: caches, thread pools, lazy initialisation
        for _ in range(3):
            run()
    times = {name: [] for name in runs}
    for _ in range(ARGS.repeats):  # interleaved, so that both see the same machine load
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    print(f"LSTM, batch {N}, {T} steps, {D} inputs, {H} hidden units, float32; "
          f"median of {ARGS.repeats} runs\n")
    print("| implementation | forward (ms) | forward + backward (ms) | numpy / torch |")
    print("|---|---:|---:|---:|")
    ms = {name: median_ms(values) for name, values in times.items()}
    np_fwd, np_all = ms["numpy forward"], ms["numpy forward + backward"]
    if torch is not None:
        t_fwd, t_all = ms["torch forward"], ms["torch forward + backward"]
        print(f"| NumPy reference (`load_reference(\"06_lstm\")`) | {np_fwd:.1f} | {np_all:.1f} | "
              f"{np_all / t_all:.2f} |")
        print(f"| `torch.nn.LSTM` (CPU, autograd) | {t_fwd:.1f} | {t_all:.1f} | 1.00 |")
    else:
        print(f"| NumPy reference (`load_reference(\"06_lstm\")`) | {np_fwd:.1f} | {np_all:.1f} | "
              "– |")
    print()
    print(f"- NumPy {np.__version__}, BLAS: {blas_name()}, BLAS threads: {blas_threads()}")
    if torch is not None:
        print(f"- PyTorch {torch.__version__}, threads: {torch.get_num_threads()}; "
              f"largest |h_numpy - h_torch| = {difference:.1e}")
    print(f"- cores: {cores()} (os.cpu_count()); Python {platform.python_version()}, "
          f"{platform.machine()}")
    if torch is not None:
        ratio = np_all / t_all
        verdict = "within" if ratio <= 2.0 else "NOT within"
        print(f"- forward + backward: NumPy / torch = {ratio:.2f}, {verdict} the target of 2")


if __name__ == "__main__":
    main()
