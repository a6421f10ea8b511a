"""Training throughput of the course's char-RNN: batched NumPy vs one sequence at a time vs torch.

Three character-level RNN language models of the same size (tanh RNN, hidden size H, one-hot
inputs, softmax output) train on *The Devil's Dictionary* (``data/devils_dictionary.txt``, the
corpus of assignment 8) for the same wall time each, in one process:

(a) the course's batched NumPy model: the reference solution of assignment 8, read from the
    source notebook with ``autograder.reference.load_reference`` (``train_step``: forward,
    loss, backward, clipping, ``rnncourse.optim.Adam``), on truncated-BPTT windows of N streams
    of T characters, float32 parameters;
(b) an unbatched NumPy baseline, one sequence of 25 characters per update with Adagrad and
    column vectors, written here in the style of Andrej Karpathy's classic ``min-char-rnn.py``
    (2015; "Minimal character-level Vanilla RNN model"), float64 as there;
(c) ``torch.nn.RNN`` + ``torch.nn.Linear`` on the CPU (if PyTorch is installed), batched like (a),
    with ``torch.optim.Adam`` and ``clip_grad_norm_``, float32.

The three take turns in slices of ``--slice`` seconds until each has trained ``--seconds``
seconds, so that a change of machine load hits all three alike; evaluation is not timed. Then
every model is converted to the course's parameter layout and evaluated with the reference
``evaluate`` on the same validation text (the last tenth of the book), in nats per character.
Both libraries use one thread by default (``--threads``): the matrices are small (a batch of 64
rows), and with their default thread pools on a busy 2-core machine OpenBLAS's threads wait for
each other and for PyTorch's, which made (a) ten times slower in a test run (``--threads 0`` shows
it). Prints a Markdown table; ``--json PATH`` also writes the figures as JSON. A script, not a
test::

    python benchmarks/char_rnn_throughput.py                  # 20 s per model
    python benchmarks/char_rnn_throughput.py --seconds 3      # a quick look
    python benchmarks/char_rnn_throughput.py --threads 1 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from machine_facts import blas_name, optional_torch, set_threads

REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="training wall time of each model (default 20)")
    parser.add_argument("--slice", type=float, default=1.0,
                        help="seconds per turn while the models take turns (default 1)")
    parser.add_argument("--hidden", type=int, default=100,
                        help="hidden units H of all three (default 100, as min-char-rnn)")
    parser.add_argument("--batch", type=int, default=64, help="streams N of (a) and (c)")
    parser.add_argument("--steps", type=int, default=32, help="window length T of (a) and (c)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's learning rate, (a) and (c)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for NumPy's BLAS and PyTorch (default 1; 0: the "
                             "libraries' own defaults)")
    parser.add_argument("--no-torch", action="store_true", help="leave out (c)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


ARGS = parse_args()
if ARGS.threads:  # BLAS reads these once, when NumPy is imported
    set_threads(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))
from autograder.reference import load_reference  # noqa: E402
from rnncourse.optim import Adam  # noqa: E402

REF = load_reference("08_char_language_model")
MAX_NORM = 5.0


class BatchedNumpy:
    """(a) The course's model: the reference train_step on truncated-BPTT windows."""

    label = "(a) course NumPy, batched"

    def __init__(self, train_ids, V, H, N, T, lr, seed=0):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(H)
        params = {"Wx": rng.uniform(-bound, bound, (H, V)),
                  "Wh": rng.uniform(-bound, bound, (H, H)), "b": np.zeros(H),
                  "Wy": rng.uniform(-bound, bound, (V, H)), "by": np.zeros(V)}
        self.params = {k: v.astype(np.float32) for k, v in params.items()}
        self.optimizer = Adam(lr=lr)
        self.x, self.y = REF.make_windows(train_ids, N, T)
        self.h = np.zeros((N, H), dtype=np.float32)
        self.k = 0
        self.chars_per_step = N * T

    def step(self):
        if self.k == len(self.x):
            self.k, self.h = 0, np.zeros_like(self.h)  # the text starts over
        _, self.h, _ = REF.train_step(self.params, self.optimizer, self.x[self.k], self.y[self.k],
                                      self.h, MAX_NORM)
        self.h = np.asarray(self.h, dtype=np.float32)
        self.k += 1
        return self.chars_per_step

    def course_params(self):
        return {k: v.astype(np.float64) for k, v in self.params.items()}


class MinCharRNN:
    """(b) One sequence at a time, column vectors, Adagrad: in the style of min-char-rnn.py."""

    label = "(b) NumPy, one sequence at a time"
    seq_length = 25
    learning_rate = 1e-1

    def __init__(self, train_ids, V, H, seed=0):
        rng = np.random.default_rng(seed)
        self.data, self.V = train_ids, V
        self.Wxh = rng.standard_normal((H, V)) * 0.01  # input to hidden
        self.Whh = rng.standard_normal((H, H)) * 0.01  # hidden to hidden
        self.Why = rng.standard_normal((V, H)) * 0.01  # hidden to output
        self.bh, self.by = np.zeros((H, 1)), np.zeros((V, 1))
        self.memory = [np.zeros_like(p) for p in self.parameters()]  # Adagrad's sums of squares
        self.hprev = np.zeros((H, 1))
        self.p = 0

    def parameters(self):
        return [self.Wxh, self.Whh, self.Why, self.bh, self.by]

    def loss_fun(self, inputs, targets, hprev):
        """Forward and backward over one sequence; returns loss, gradients, last hidden state."""
        xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.V, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(self.Wxh @ xs[t] + self.Whh @ hs[t - 1] + self.bh)
            ys = self.Why @ hs[t] + self.by
            ps[t] = np.exp(ys - np.max(ys)) / np.sum(np.exp(ys - np.max(ys)))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(self.Wxh), np.zeros_like(self.Whh), np.zeros_like(self.Why)
        dbh, dby = np.zeros_like(self.bh), np.zeros_like(self.by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += dy @ hs[t].T
            dby += dy
            dh = self.Why.T @ dy + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += dhraw @ xs[t].T
            dWhh += dhraw @ hs[t - 1].T
            dhnext = self.Whh.T @ dhraw
        grads = [dWxh, dWhh, dWhy, dbh, dby]
        for g in grads:
            np.clip(g, -5, 5, out=g)  # against exploding gradients
        return loss, grads, hs[len(inputs) - 1]

    def step(self):
        if self.p + self.seq_length + 1 > len(self.data):
            self.p, self.hprev = 0, np.zeros_like(self.hprev)  # the text starts over
        inputs = self.data[self.p:self.p + self.seq_length]
        targets = self.data[self.p + 1:self.p + self.seq_length + 1]
        _, grads, self.hprev = self.loss_fun(inputs, targets, self.hprev)
        for param, grad, mem in zip(self.parameters(), grads, self.memory, strict=True):
            mem += grad * grad
            param += -self.learning_rate * grad / np.sqrt(mem + 1e-8)  # Adagrad
        self.p += self.seq_length
        return self.seq_length

    def course_params(self):
        return {"Wx": self.Wxh.copy(), "Wh": self.Whh.copy(), "b": self.bh[:, 0].copy(),
                "Wy": self.Why.copy(), "by": self.by[:, 0].copy()}


class TorchRNN:
    """(c) torch.nn.RNN and nn.Linear, batched like (a), one-hot inputs, Adam, clipping."""

    label = "(c) `torch.nn.RNN`, CPU, batched"

    def __init__(self, torch, train_ids, V, H, N, T, lr, seed=0):
        self.torch = torch
        torch.manual_seed(seed)
        self.rnn = torch.nn.RNN(V, H, batch_first=True)  # tanh, float32
        self.head = torch.nn.Linear(H, V)
        self.parameters = list(self.rnn.parameters()) + list(self.head.parameters())
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)
        x, y = REF.make_windows(train_ids, N, T)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.eye = torch.eye(V)
        self.h = torch.zeros(1, N, H)
        self.k, self.V = 0, V
        self.chars_per_step = N * T

    def step(self):
        torch = self.torch
        if self.k == len(self.x):
            self.k, self.h = 0, torch.zeros_like(self.h)
        out, h = self.rnn(self.eye[self.x[self.k]], self.h)
        loss = torch.nn.functional.cross_entropy(self.head(out).reshape(-1, self.V),
                                                 self.y[self.k].reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, MAX_NORM)
        self.optimizer.step()
        self.h = h.detach()  # truncated BPTT: the state goes on, its gradient stops
        self.k += 1
        return self.chars_per_step

    def course_params(self):
        def numpy(t):
            return t.detach().double().numpy().copy()

        return {"Wx": numpy(self.rnn.weight_ih_l0), "Wh": numpy(self.rnn.weight_hh_l0),
                "b": numpy(self.rnn.bias_ih_l0) + numpy(self.rnn.bias_hh_l0),
                "Wy": numpy(self.head.weight), "by": numpy(self.head.bias)}


def take_turns(models, seconds, slice_s):
    """Train each model for `seconds` of wall time, in turns of `slice_s`; returns the times."""
    spent = {id(m): 0.0 for m in models}
    chars = {id(m): 0 for m in models}
    updates = {id(m): 0 for m in models}
    while any(spent[id(m)] < seconds for m in models):
        for model in models:
            left = seconds - spent[id(model)]
            if left <= 0:
                continue
            start = time.perf_counter()
            while time.perf_counter() - start < min(slice_s, left):
                chars[id(model)] += model.step()
                updates[id(model)] += 1
            spent[id(model)] += time.perf_counter() - start
    return {id(m): (spent[id(m)], chars[id(m)], updates[id(m)]) for m in models}


def main() -> None:
    text = (REPO_ROOT / "data" / "devils_dictionary.txt").read_text(encoding="utf-8")
    _, stoi = REF.build_vocab([text])
    V, H, N, T = len(stoi), ARGS.hidden, ARGS.batch, ARGS.steps
    train_ids, val_ids = REF.train_val_split(REF.encode(text, stoi), 0.1)
    x_val, y_val = REF.make_windows(val_ids, 16, 128)

    models = [BatchedNumpy(train_ids, V, H, N, T, ARGS.lr), MinCharRNN(train_ids, V, H)]
    torch = optional_torch(ARGS.threads, "(c) is left out", skip=ARGS.no_torch)
    if torch is not None:
        models.append(TorchRNN(torch, train_ids, V, H, N, T, ARGS.lr))
    for model in models:  # warm-up: caches, thread pools, lazy initialisation (not timed)
        model.step()

    load_before = os.getloadavg()
    timing = take_turns(models, ARGS.seconds, ARGS.slice)
    load_after = os.getloadavg()

    rows = []
    for model in models:
        spent, chars, updates = timing[id(model)]
        nats, perplexity = REF.evaluate(model.course_params(), x_val, y_val)
        rows.append({"model": model.label, "seconds": round(spent, 3), "chars": chars,
                     "updates": updates, "chars_per_s": chars / spent,
                     "val_nats_per_char": nats, "val_perplexity": perplexity})
    baseline = rows[1]
    for row in rows:
        row["throughput_vs_b"] = row["chars_per_s"] / baseline["chars_per_s"]
        row["val_nats_minus_b"] = row["val_nats_per_char"] - baseline["val_nats_per_char"]

    threads = ARGS.threads or "the libraries' defaults"
    print(f"Char-RNN training, The Devil's Dictionary ({len(train_ids):,} training and "
          f"{len(val_ids):,} validation characters, V = {V}), H = {H}, "
          f"{ARGS.seconds:g} s of training each, in turns of {ARGS.slice:g} s\n")
    print("| implementation | chars/s | vs (b) | updates | validation nats/char | perplexity |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['model']} | {row['chars_per_s']:,.0f} | {row['throughput_vs_b']:.1f}x | "
              f"{row['updates']:,} | {row['val_nats_per_char']:.3f} | "
              f"{row['val_perplexity']:.1f} |")
    print()
    print(f"- (a), (c): {N} streams x windows of {T} = {N * T} characters per update, Adam "
          f"lr {ARGS.lr:g}, global-norm clipping at {MAX_NORM:g}; (b): {MinCharRNN.seq_length} "
          f"characters per update, Adagrad lr {MinCharRNN.learning_rate:g}, clipping at 5")
    print(f"- validation: the reference `evaluate`, 16 streams x windows of 128, state carried; "
          f"uniform guessing scores ln {V} = {np.log(V):.3f}")
    print(f"- NumPy {np.__version__}, BLAS: {blas_name()}; threads: {threads}"
          + (f"; PyTorch {torch.__version__}, {torch.get_num_threads()} threads" if torch else ""))
    print(f"- {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    a = rows[0]
    verdict = ("met" if a["throughput_vs_b"] >= 10 and a["val_nats_minus_b"] <= 0 else "NOT met")
    print(f"- target (a) >= 10x (b) at equal or better loss: {verdict} "
          f"({a['throughput_vs_b']:.1f}x, {a['val_nats_minus_b']:+.3f} nats/char)")
    if ARGS.json:
        ARGS.json.write_text(json.dumps({
            "benchmark": "char_rnn_throughput", "seconds_each": ARGS.seconds, "hidden": H,
            "batch": N, "window": T, "vocab": V, "lr": ARGS.lr, "threads": ARGS.threads,
            "numpy": np.__version__, "blas": blas_name(),
            "torch": torch.__version__ if torch else None, "cores": os.cpu_count(),
            "load_average": [load_before[0], load_after[0]], "target_met": verdict == "met",
            "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
