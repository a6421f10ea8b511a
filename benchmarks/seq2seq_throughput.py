"""Training throughput of assignment 9's seq2seq with attention: course NumPy vs PyTorch on the CPU.

The encoder-decoder of assignment 9 (character embeddings, a GRU encoder, a GRU decoder trained
with teacher forcing, attention over the encoder states, a linear output layer on [state,
context]) learns date normalization ("3 de maio de 1979" -> "1979-05-03") on
``data/dates_train.tsv``, in two implementations of the same model, side by side in one process:

(a) the course's NumPy model: the reference solution of assignment 9, read from the source
    notebook with ``autograder.reference.load_reference`` (``seq2seq_loss``: forward and
    backward, ``clip_by_global_norm``), with ``rnncourse.optim.Adam``;
(b) the same model in PyTorch on the CPU: ``nn.Embedding``, ``nn.GRU`` for the encoder and the
    decoder, attention written as the same equations (scaled dot product, or Bahdanau's additive
    score) for all decoder steps at once with the source mask applied before the softmax,
    ``F.cross_entropy`` over the real target steps, autograd, ``clip_grad_norm_`` and
    ``torch.optim.Adam``.

Both start from the same float32 weights (the course's GRU writes the candidate where the update
gate is 1 and PyTorch's keeps the old state there: the z block of the weights is negated, as in
``tests/test_seq2seq_torch.py``) and train on the same batches for the same number of steps, one
step each in turn, so that a change of machine load hits both alike; the first step is not timed
(caches, lazy initialisation). Both attention forms are measured. Then the PyTorch weights are
converted back and both models are evaluated by the reference, untimed, on the held-out
``data/dates_test.tsv``: the teacher-forced loss (nats per target character) and the exact-match
accuracy of greedy decoding. With the same start and the same batches the two agree to about 1e-6
in their first steps' losses; over hundreds of steps training amplifies float32 rounding, and the
end points differ about as much as two random seeds would. The default settings are the
notebook's training demo (its model sizes, its batches of sentences of similar length drawn with
its seed, Adam with beta2 = 0.98 and its learning-rate schedule), so (a) reproduces the notebook's
models and accuracies. Small batches make per-step overheads count: ``--batch 64`` shows the
throughput of larger matrices. Both libraries use one thread by default (``--threads``), as in
``char_rnn_throughput.py``. Prints a Markdown table; ``--json PATH`` also writes the figures. A
script, not a test::

    python benchmarks/seq2seq_throughput.py                # the notebook's demo, both attentions
    python benchmarks/seq2seq_throughput.py --quick        # a quick look (40 steps, 300 dates)
    python benchmarks/seq2seq_throughput.py --steps 200 --batch 64 --json bench.json
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
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
MAX_NORM = 5.0
MAX_LEN = 11  # an ISO date and its EOS
BETAS = (0.9, 0.98)  # Adam's, as in the notebook


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every model (default 750; 40 with --quick)")
    parser.add_argument("--batch", type=int, default=4, help="sentences per step (default 4)")
    parser.add_argument("--embed", type=int, default=16, help="embedding size E (default 16)")
    parser.add_argument("--hidden", type=int, default=96, help="GRU size H (default 96)")
    parser.add_argument("--units", type=int, default=16,
                        help="hidden units A of the additive score (default 16)")
    parser.add_argument("--lr", type=float, default=0.01,
                        help="Adam's learning rate (default 0.01), constant for the first 60 %% "
                             "of the steps, then falling linearly to a tenth of it")
    parser.add_argument("--attention", choices=("dot", "additive", "both"), default="both")
    parser.add_argument("--test", type=int, default=None,
                        help="test dates evaluated (default all 2,000; 300 with --quick)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for NumPy's BLAS and PyTorch (default 1; 0: the "
                             "libraries' own defaults)")
    parser.add_argument("--quick", action="store_true", help="a short run, to test the script")
    parser.add_argument("--no-torch", action="store_true", help="leave out (b)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 40 if args.quick else 750
    if args.test is None:
        args.test = 300 if args.quick else None
    return args


ARGS = parse_args()
if ARGS.threads:  # BLAS reads these once, when NumPy is imported
    set_threads(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))
from autograder.reference import load_reference  # noqa: E402
from rnncourse.optim import Adam  # noqa: E402

REF = load_reference("09_seq2seq_attention")


# --- data, as the notebook reads it -------------------------------------------------------------

def read_pairs(name):
    lines = (REPO_ROOT / "data" / name).read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines]


class Dates:
    """The date pairs, the notebook's vocabularies, and batches as the notebook makes them."""

    def __init__(self):
        self.train, self.test = read_pairs("dates_train.tsv"), read_pairs("dates_test.tsv")
        self.src_itos = [PAD, BOS, EOS] + sorted(set("".join(s for s, _ in self.train + self.test)))
        self.tgt_itos = [PAD, BOS, EOS] + sorted(set("".join(t for _, t in self.train)))
        self.src_stoi = {c: i for i, c in enumerate(self.src_itos)}
        self.tgt_stoi = {c: i for i, c in enumerate(self.tgt_itos)}

    def source_batch(self, texts):
        S = max(len(text) for text in texts)
        src = np.full((len(texts), S), REF.PAD_ID, dtype=np.int64)
        for n, text in enumerate(texts):
            src[n, :len(text)] = [self.src_stoi[c] for c in text]
        return src, src != REF.PAD_ID

    def batch(self, pairs):
        """(src, src_mask, y_in, y_out, tgt_mask) of a list of pairs (the reference's
        teacher_forcing_batch)."""
        src, src_mask = self.source_batch([s for s, _ in pairs])
        targets = [np.array([self.tgt_stoi[c] for c in t], dtype=np.int64) for _, t in pairs]
        return (src, src_mask, *REF.teacher_forcing_batch(targets))

    def text(self, ids):
        ids = list(ids)
        ids = ids[:ids.index(REF.EOS_ID)] if REF.EOS_ID in ids else ids
        return "".join(self.tgt_itos[i] for i in ids if i > REF.EOS_ID)


def init_params(Vs, Vt, E, H, A=None, seed=0):
    """The notebook's init_params: embeddings N(0, 1), GRU and output weights uniform in
    (-1/sqrt(fan), 1/sqrt(fan)), zero biases, float32."""
    rng = np.random.default_rng(seed)
    b, bo = 1 / np.sqrt(H), 1 / np.sqrt(2 * H)
    params = {"E_src": rng.standard_normal((Vs, E)), "E_tgt": rng.standard_normal((Vt, E)),
              "enc_Wx": rng.uniform(-b, b, (3 * H, E)), "enc_Wh": rng.uniform(-b, b, (3 * H, H)),
              "enc_bx": np.zeros(3 * H), "enc_bh": np.zeros(3 * H),
              "dec_Wx": rng.uniform(-b, b, (3 * H, E)), "dec_Wh": rng.uniform(-b, b, (3 * H, H)),
              "dec_bx": np.zeros(3 * H), "dec_bh": np.zeros(3 * H),
              "Wo": rng.uniform(-bo, bo, (Vt, 2 * H)), "bo": np.zeros(Vt)}
    if A:
        params.update(Wq=rng.uniform(-b, b, (A, H)), Wk=rng.uniform(-b, b, (A, H)),
                      v=rng.uniform(-1 / np.sqrt(A), 1 / np.sqrt(A), A))
    return {name: value.astype(np.float32) for name, value in params.items()}


def z_sign(H):
    """+1 on the r and n blocks, -1 on the z block (the course's GRU as PyTorch's, and back)."""
    return np.concatenate([np.ones(H), -np.ones(H), np.ones(H)]).astype(np.float32)


# --- the two implementations ---------------------------------------------------------------------

class NumpySeq2seq:
    """(a) The course's model: the reference seq2seq_loss, clipping and rnncourse's Adam."""

    label = "(a) course NumPy"

    def __init__(self, params, attention, lr):
        self.params = {k: v.copy() for k, v in params.items()}
        self.attention = attention
        self.optimizer = Adam(lr=lr, betas=BETAS)

    def set_lr(self, lr):
        self.optimizer.lr = lr

    def step(self, batch):
        loss, grads = REF.seq2seq_loss(self.params, *batch, self.attention)
        clipped, _ = REF.clip_by_global_norm(grads, MAX_NORM)
        self.optimizer.step(self.params, clipped)
        return float(loss)

    def course_params(self):
        return self.params


class TorchSeq2seq:
    """(b) The same model in PyTorch: nn.Embedding, nn.GRU, attention for all steps at once."""

    label = "(b) PyTorch CPU"

    def __init__(self, torch, params, attention, lr):
        self.torch, self.attention = torch, attention
        nn = torch.nn
        E, H = params["E_src"].shape[1], params["enc_Wh"].shape[1]
        self.H = H
        self.emb_src = nn.Embedding(*params["E_src"].shape)
        self.emb_tgt = nn.Embedding(*params["E_tgt"].shape)
        self.encoder = nn.GRU(E, H, batch_first=True)
        self.decoder = nn.GRU(E, H, batch_first=True)
        self.out = nn.Linear(2 * H, params["Wo"].shape[0])
        self.modules = [self.emb_src, self.emb_tgt, self.encoder, self.decoder, self.out]
        self.extra = {}
        if attention == "additive":
            self.extra = {k: nn.Parameter(torch.from_numpy(params[k].copy()))
                          for k in ("Wq", "Wk", "v")}
        self.load(params)
        self.parameters = [p for m in self.modules for p in m.parameters()]
        self.parameters += list(self.extra.values())
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr, betas=BETAS)

    def set_lr(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def pairs(self):
        """(torch tensor, course name, sign) of every GRU, embedding and output weight."""
        sign = z_sign(self.H)
        out = [(self.emb_src.weight, "E_src", None), (self.emb_tgt.weight, "E_tgt", None),
               (self.out.weight, "Wo", None), (self.out.bias, "bo", None)]
        for gru, prefix in ((self.encoder, "enc"), (self.decoder, "dec")):
            out += [(gru.weight_ih_l0, f"{prefix}_Wx", sign[:, None]),
                    (gru.weight_hh_l0, f"{prefix}_Wh", sign[:, None]),
                    (gru.bias_ih_l0, f"{prefix}_bx", sign), (gru.bias_hh_l0, f"{prefix}_bh", sign)]
        return out

    def load(self, params):
        with self.torch.no_grad():
            for tensor, name, sign in self.pairs():
                value = params[name] if sign is None else params[name] * sign
                tensor.copy_(self.torch.from_numpy(np.ascontiguousarray(value)))

    def loss(self, src, src_mask, y_in, y_out, tgt_mask):
        torch = self.torch
        F = torch.nn.functional
        src, mask = torch.from_numpy(src), torch.from_numpy(src_mask)
        enc_h, _ = self.encoder(self.emb_src(src))  # (N, S, H), padding read too, as in (a)
        last = mask.sum(dim=1) - 1
        s0 = enc_h[torch.arange(len(src)), last]  # the last real state of each row
        s, _ = self.decoder(self.emb_tgt(torch.from_numpy(y_in)), s0[None].contiguous())
        if self.attention == "dot":
            scores = s @ enc_h.transpose(1, 2) / self.H ** 0.5  # (N, T, S)
        else:
            u = torch.tanh((s @ self.extra["Wq"].T)[:, :, None, :]
                           + (enc_h @ self.extra["Wk"].T)[:, None, :, :])  # (N, T, S, A)
            scores = u @ self.extra["v"]
        alpha = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=2)
        logits = self.out(torch.cat([s, alpha @ enc_h], dim=2))  # (N, T, V)
        real = torch.from_numpy(tgt_mask)
        return F.cross_entropy(logits[real], torch.from_numpy(y_out)[real])

    def step(self, batch):
        loss = self.loss(*batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.parameters, MAX_NORM)
        self.optimizer.step()
        return float(loss.detach())

    def course_params(self):
        params = {}
        for tensor, name, sign in self.pairs():
            value = tensor.detach().numpy().copy()
            params[name] = value if sign is None else value * sign
        params.update({k: v.detach().numpy().copy() for k, v in self.extra.items()})
        return params


# --- training side by side, evaluation -----------------------------------------------------------

def notebook_batches(data, steps, batch, seed=0):
    """The notebook's batches: 8 at a time from 8 * batch random pairs sorted by source length."""
    rng = np.random.default_rng(seed)
    lengths = np.array([len(s) for s, _ in data.train])
    batches, pool = [], []
    for _ in range(steps):
        if not pool:
            rows = rng.choice(len(data.train), 8 * batch, replace=False)
            rows = rows[np.argsort(lengths[rows], kind="stable")]
            pool = [rows[k * batch:(k + 1) * batch] for k in rng.permutation(8)]
        batches.append(data.batch([data.train[i] for i in pool.pop()]))
    return batches


def learning_rate(step, steps, lr):
    """The notebook's schedule: lr for the first 60 % of the steps, then linearly to lr / 10."""
    decay_from = int(0.6 * steps)
    return lr * (1 - 0.9 * max(0, step - decay_from) / max(steps - decay_from, 1))


def train_side_by_side(models, batches, lr):
    """One step of every model in turn, per batch; the first step is not timed."""
    seconds = {id(m): 0.0 for m in models}
    losses = {id(m): [] for m in models}
    for k, batch in enumerate(batches):
        for model in models:
            model.set_lr(learning_rate(k + 1, len(batches), lr))
            start = time.perf_counter()
            losses[id(model)].append(model.step(batch))
            if k:
                seconds[id(model)] += time.perf_counter() - start
    return seconds, losses


def evaluate(params, data, pairs, attention):
    """(test loss in nats per target character, greedy exact match) by the reference."""
    total, chars, right = 0.0, 0, 0
    for start in range(0, len(pairs), 500):
        chunk = pairs[start:start + 500]
        batch = data.batch(chunk)
        loss, _ = REF.seq2seq_loss(params, *batch, attention)
        n = int(np.count_nonzero(batch[4]))
        total, chars = total + loss * n, chars + n
        ids, _ = REF.greedy_decode(params, batch[0], batch[1], MAX_LEN, attention)
        right += sum(data.text(row) == t for row, (_, t) in zip(ids, chunk, strict=True))
    return total / chars, right / len(pairs)


def main() -> None:
    data = Dates()
    test = data.test[:ARGS.test] if ARGS.test else data.test
    torch = optional_torch(ARGS.threads, "(b) is left out", skip=ARGS.no_torch)
    if torch is not None:
        torch.manual_seed(0)
    batches = notebook_batches(data, ARGS.steps, ARGS.batch)
    attentions = ("dot", "additive") if ARGS.attention == "both" else (ARGS.attention,)

    load_before = os.getloadavg()
    rows = []
    for attention in attentions:
        params = init_params(len(data.src_itos), len(data.tgt_itos), ARGS.embed, ARGS.hidden,
                             ARGS.units if attention == "additive" else None)
        models = [NumpySeq2seq(params, attention, ARGS.lr)]
        if torch is not None:
            models.append(TorchSeq2seq(torch, params, attention, ARGS.lr))
        seconds, losses = train_side_by_side(models, batches, ARGS.lr)
        first = np.array(losses[id(models[0])])
        for model in models:
            timed = ARGS.steps - 1
            test_loss, exact = evaluate(model.course_params(), data, test, attention)
            rows.append({"attention": attention, "model": model.label,
                         "seconds": round(seconds[id(model)], 3), "steps": ARGS.steps,
                         "sentences_per_s": timed * ARGS.batch / seconds[id(model)],
                         "ms_per_step": 1000 * seconds[id(model)] / timed,
                         "train_loss_last20": float(np.mean(losses[id(model)][-20:])),
                         "largest_step_loss_difference_vs_a": float(np.max(np.abs(
                             np.array(losses[id(model)]) - first))),
                         "test_loss": float(test_loss), "exact_match": float(exact)})
    load_after = os.getloadavg()
    for row in rows:
        first = next(r for r in rows if r["attention"] == row["attention"])
        row["throughput_vs_a"] = row["sentences_per_s"] / first["sentences_per_s"]

    threads = ARGS.threads or "the libraries' defaults"
    print(f"Seq2seq with attention, date normalization ({len(data.train):,} training pairs, "
          f"{len(test):,} test dates evaluated), {ARGS.steps} steps of {ARGS.batch} sentences "
          f"each, the same batches for both\n")
    print("| attention | implementation | sentences/s | ms/step | vs (a) | training loss "
          "(last 20 steps) | test loss | exact match |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['attention']} | {row['model']} | {row['sentences_per_s']:,.0f} | "
              f"{row['ms_per_step']:.1f} | {row['throughput_vs_a']:.2f}x | "
              f"{row['train_loss_last20']:.4f} | {row['test_loss']:.4f} | "
              f"{row['exact_match']:.1%} |")
    print()
    print(f"- E = {ARGS.embed}, H = {ARGS.hidden}, A = {ARGS.units} (additive); Adam, betas "
          f"{BETAS}, lr {ARGS.lr:g} then down to {ARGS.lr / 10:g} over the last 40 % of the steps; "
          f"global-norm clipping at {MAX_NORM:g}; float32; the same initial weights and batches "
          f"(sources of similar length); the first step untimed")
    if len(rows) > len(attentions):
        worst = {r["attention"]: r["largest_step_loss_difference_vs_a"] for r in rows
                 if r["model"] == TorchSeq2seq.label}
        print("- largest difference between (a)'s and (b)'s training loss at the same step: "
              + ", ".join(f"{d:.1e} ({a})" for a, d in worst.items()))
    print(f"- test loss: the reference's teacher-forced loss (nats per target character); exact "
          f"match: the reference's greedy_decode, {MAX_LEN} steps")
    print(f"- NumPy {np.__version__}, BLAS: {blas_name()}; threads: {threads}"
          + (f"; PyTorch {torch.__version__}, {torch.get_num_threads()} threads" if torch else ""))
    print(f"- {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    if ARGS.json:
        ARGS.json.write_text(json.dumps({
            "benchmark": "seq2seq_throughput", "steps": ARGS.steps, "batch": ARGS.batch,
            "embed": ARGS.embed, "hidden": ARGS.hidden, "units": ARGS.units, "lr": ARGS.lr,
            "test_dates": len(test), "threads": ARGS.threads, "numpy": np.__version__,
            "blas": blas_name(), "torch": torch.__version__ if torch else None,
            "cores": os.cpu_count(), "load_average": [load_before[0], load_after[0]],
            "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
