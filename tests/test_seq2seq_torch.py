"""Assignment 9's reference (embedding, attention, encoder-decoder) against PyTorch, in float64.

The reference is read from source/09_seq2seq_attention/09_seq2seq_attention.ipynb by
``load_reference``. Every forward and backward must equal PyTorch's: ``nn.Embedding``,
``F.scaled_dot_product_attention`` with a boolean mask, autograd of the additive score's
equations, ``nn.GRU`` for the encoder, and the whole model's loss and gradients (``nn.Embedding``,
``nn.GRU``, attention, ``F.cross_entropy`` over the real target steps). The torch tests are skipped
when PyTorch is not installed (``make torch``); the decoding checks at the end need NumPy only.
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, leaf, needs_torch

from autograder.reference import load_reference


@pytest.fixture(scope="module")
def ref():
    return load_reference("09_seq2seq_attention")


def attention_problem(seed, N=3, S=6, H=4, K=5, A=3):
    rng = np.random.default_rng(seed)
    mask = np.arange(S) < np.array([S, 2, 1][:N] + [S] * max(0, N - 3))[:, None]
    return (rng.standard_normal((N, H)), rng.standard_normal((N, S, K)), mask,
            rng.standard_normal((A, H)), rng.standard_normal((A, K)), rng.standard_normal(A))


def model_problem(ref, seed, attention, N=3, S=5, T=4, Vs=7, Vt=6, E=3, H=4, A=3):
    rng = np.random.default_rng(seed)
    b = 1 / np.sqrt(H)
    params = {"E_src": rng.standard_normal((Vs, E)), "E_tgt": rng.standard_normal((Vt, E)),
              "enc_Wx": rng.uniform(-b, b, (3 * H, E)), "enc_Wh": rng.uniform(-b, b, (3 * H, H)),
              "enc_bx": 0.3 * rng.standard_normal(3 * H),
              "enc_bh": 0.3 * rng.standard_normal(3 * H),
              "dec_Wx": rng.uniform(-b, b, (3 * H, E)), "dec_Wh": rng.uniform(-b, b, (3 * H, H)),
              "dec_bx": 0.3 * rng.standard_normal(3 * H),
              "dec_bh": 0.3 * rng.standard_normal(3 * H),
              "Wo": rng.standard_normal((Vt, 2 * H)), "bo": 0.3 * rng.standard_normal(Vt)}
    if attention == "additive":
        params.update(Wq=rng.standard_normal((A, H)), Wk=rng.standard_normal((A, H)),
                      v=rng.standard_normal(A))
    src_len, tgt_len = np.array([S, 2, 1])[:N], np.array([T, 1, 3])[:N]
    src_mask, tgt_mask = np.arange(S) < src_len[:, None], np.arange(T) < tgt_len[:, None]
    src = np.where(src_mask, rng.integers(1, Vs, (N, S)), 0)
    y_in = np.where(tgt_mask, rng.integers(1, Vt, (N, T)), 0)
    y_out = np.where(tgt_mask, rng.integers(1, Vt, (N, T)), 0)
    return params, src, src_mask, y_in, y_out, tgt_mask


def z_sign(H):
    """+1 on the r and n blocks, -1 on the z block. The course's GRU writes the candidate where
    z = 1, PyTorch's keeps the old state there; sigmoid(-a) = 1 - sigmoid(a), so negating the z
    rows of the weights and biases turns one into the other (see tests/test_gru_torch.py)."""
    return np.concatenate([np.ones(H), -np.ones(H), np.ones(H)])


def torch_gru(torch, Wx, Wh, bx, bh):
    """nn.GRU (batch_first, float64) computing the course's GRU: the z block negated. Its
    parameters' gradients times z_sign are the gradients of the course's weights."""
    H, E = Wh.shape[1], Wx.shape[1]
    sign = z_sign(H)
    gru = torch.nn.GRU(E, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, value in (("weight_ih_l0", Wx), ("weight_hh_l0", Wh), ("bias_ih_l0", bx),
                            ("bias_hh_l0", bh)):
            getattr(gru, name).copy_(torch.from_numpy(value * (sign if value.ndim == 1
                                                               else sign[:, None])))
    return gru


def torch_embedding(torch, W):
    emb = torch.nn.Embedding(*W.shape, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(W))
    return emb


def torch_additive(torch, query, keys, mask, Wq, Wk, v):
    scores = torch.tanh((query @ Wq.T)[:, None, :] + keys @ Wk.T) @ v
    alpha = torch.softmax(scores.masked_fill(~torch.from_numpy(mask), float("-inf")), dim=1)
    return torch.einsum("ns,nsk->nk", alpha, keys), alpha


@pytest.mark.parametrize("seed", [0, 1])
def test_embedding_matches_nn_embedding(ref, seed):
    torch = needs_torch()
    rng = np.random.default_rng(seed)
    W, ids = rng.standard_normal((6, 4)), rng.integers(0, 6, (3, 7))  # repeated ids
    out, cache = ref.embedding_forward(ids, W)
    emb = torch_embedding(torch, W)
    t_out = emb(torch.from_numpy(ids))
    close(out, t_out, "embedding out")
    dout = rng.standard_normal(out.shape)
    t_out.backward(torch.from_numpy(dout))
    close(ref.embedding_backward(dout, cache), emb.weight.grad, "embedding dW")


def test_masked_softmax_matches_torch(ref):
    torch = needs_torch()
    scores = 5 * np.random.default_rng(2).standard_normal((4, 7))
    mask = np.arange(7) < np.array([7, 3, 1, 5])[:, None]
    expected = torch.softmax(torch.from_numpy(scores).masked_fill(~torch.from_numpy(mask),
                                                                  float("-inf")), dim=1)
    close(ref.masked_softmax(scores, mask), expected, "masked softmax")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dot_attention_matches_scaled_dot_product_attention(ref, seed):
    torch = needs_torch()
    query, keys, mask, *_ = attention_problem(seed, K=4)
    context, alpha, cache = ref.dot_attention_forward(query, keys, mask)
    q, k = leaf(query), leaf(keys)
    t_context = torch.nn.functional.scaled_dot_product_attention(
        q[:, None, :], k, k, attn_mask=torch.from_numpy(mask)[:, None, :])[:, 0]
    close(context, t_context, "dot attention context")
    dcontext = np.random.default_rng(10 + seed).standard_normal(context.shape)
    t_context.backward(torch.from_numpy(dcontext))
    dquery, dkeys = ref.dot_attention_backward(dcontext, cache)
    close(dquery, q.grad, "dot attention dquery")
    close(dkeys, k.grad, "dot attention dkeys")
    assert np.allclose(alpha.sum(axis=1), 1) and np.all(alpha[~mask] == 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_additive_attention_matches_autograd(ref, seed):
    torch = needs_torch()
    query, keys, mask, Wq, Wk, v = attention_problem(seed)
    context, alpha, cache = ref.additive_attention_forward(query, keys, mask, Wq, Wk, v)
    leaves = [leaf(a) for a in (query, keys, Wq, Wk, v)]
    t_context, t_alpha = torch_additive(torch, leaves[0], leaves[1], mask, *leaves[2:])
    close(context, t_context, "additive context")
    close(alpha, t_alpha, "additive alpha")
    dcontext = np.random.default_rng(20 + seed).standard_normal(context.shape)
    t_context.backward(torch.from_numpy(dcontext))
    for name, got, t in zip(("dquery", "dkeys", "dWq", "dWk", "dv"),
                            ref.additive_attention_backward(dcontext, cache), leaves, strict=True):
        close(got, t.grad, f"additive {name}")


def test_encoder_matches_nn_gru(ref):
    torch = needs_torch()
    params, src, src_mask, *_ = model_problem(ref, 3, "dot")
    (enc_h, s0), cache = ref.encoder_forward(params, src, src_mask)
    emb = torch_embedding(torch, params["E_src"])
    gru = torch_gru(torch, *(params[k] for k in ("enc_Wx", "enc_Wh", "enc_bx", "enc_bh")))
    t_h, _ = gru(emb(torch.from_numpy(src)))
    last = torch.from_numpy(src_mask.sum(axis=1) - 1)
    t_s0 = t_h[torch.arange(len(src)), last]
    close(enc_h, t_h, "encoder states")
    close(s0, t_s0, "s0 (the last real state)")
    rng = np.random.default_rng(4)
    denc_h, ds0 = rng.standard_normal(enc_h.shape), rng.standard_normal(s0.shape)
    ((t_h * torch.from_numpy(denc_h)).sum() + (t_s0 * torch.from_numpy(ds0)).sum()).backward()
    grads = ref.encoder_backward(denc_h, ds0, cache)
    close(grads["E_src"], emb.weight.grad, "encoder dE_src")
    sign = z_sign(params["enc_Wh"].shape[1])
    for name, t in (("enc_Wx", gru.weight_ih_l0), ("enc_Wh", gru.weight_hh_l0),
                    ("enc_bx", gru.bias_ih_l0), ("enc_bh", gru.bias_hh_l0)):
        close(grads[name], t.grad.numpy() * (sign if t.ndim == 1 else sign[:, None]),
              f"encoder d{name}")


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_seq2seq_loss_matches_torch(ref, attention):
    """The whole model in PyTorch: its loss and the gradient of every parameter."""
    torch = needs_torch()
    params, src, src_mask, y_in, y_out, tgt_mask = model_problem(ref, 5, attention)
    loss, grads = ref.seq2seq_loss(params, src, src_mask, y_in, y_out, tgt_mask, attention)
    t = {name: leaf(value) for name, value in params.items()}
    F = torch.nn.functional
    mask_t = torch.from_numpy(src_mask)

    def gru(x, h0, prefix):
        module = torch_gru(torch, *(params[f"{prefix}_{k}"] for k in ("Wx", "Wh", "bx", "bh")))
        names = {"weight_ih_l0": "Wx", "weight_hh_l0": "Wh", "bias_ih_l0": "bx",
                 "bias_hh_l0": "bh"}
        sign = torch.from_numpy(z_sign(params[f"{prefix}_Wh"].shape[1]))
        weights = {n: t[f"{prefix}_{k}"] * (sign if k[0] == "b" else sign[:, None])
                   for n, k in names.items()}
        out, _ = torch.func.functional_call(module, weights, (x, h0[None]))
        return out

    N = len(src)
    x = F.embedding(torch.from_numpy(src), t["E_src"])
    enc_h = gru(x, torch.zeros(N, params["enc_Wh"].shape[1], dtype=torch.float64), "enc")
    s0 = enc_h[torch.arange(N), torch.from_numpy(src_mask.sum(axis=1) - 1)]
    s = gru(F.embedding(torch.from_numpy(y_in), t["E_tgt"]), s0, "dec")
    contexts = []
    for step in range(s.shape[1]):
        if attention == "dot":
            contexts.append(F.scaled_dot_product_attention(
                s[:, step, None, :], enc_h, enc_h, attn_mask=mask_t[:, None, :])[:, 0])
        else:
            contexts.append(torch_additive(torch, s[:, step], enc_h, src_mask, t["Wq"], t["Wk"],
                                           t["v"])[0])
    logits = torch.cat([s, torch.stack(contexts, 1)], 2) @ t["Wo"].T + t["bo"]
    keep = torch.from_numpy(tgt_mask)
    t_loss = F.cross_entropy(logits[keep], torch.from_numpy(y_out)[keep])
    t_loss.backward()
    close(loss, t_loss.item(), f"loss ({attention})")
    assert set(grads) == set(params)
    for name, tensor in t.items():
        close(grads[name], tensor.grad, f"grads[{name!r}] ({attention})")


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_beam_of_width_one_is_greedy_and_decoder_step_matches_the_loss(ref, attention):
    """NumPy only: beam width 1 gives the greedy output; greedy's first-step log-probability of
    the target equals the loss of a one-step batch."""
    params, src, src_mask, *_ = model_problem(ref, 6, attention)
    params["bo"][ref.EOS_ID] -= 2.0  # longer outputs
    ids, alphas = ref.greedy_decode(params, src, src_mask, 6, attention)
    assert np.allclose(alphas.sum(axis=2)[ids != ref.PAD_ID], 1)
    for n in range(len(src)):
        beam, score = ref.beam_search(params, src[n:n + 1], src_mask[n:n + 1], 1, 6, attention)
        row = ids[n][ids[n] != ref.PAD_ID]
        np.testing.assert_array_equal(beam, row)
        assert np.isfinite(score) and score <= 0
    (enc_h, s0), _ = ref.encoder_forward(params, src, src_mask)
    logits, _, _ = ref.decoder_step(params, np.full(len(src), ref.BOS_ID), s0, enc_h, src_mask,
                                    attention)
    y = ids[:, :1]
    loss, _ = ref.seq2seq_loss(params, src, src_mask, np.full_like(y, ref.BOS_ID), y,
                               np.ones_like(y, dtype=bool), attention)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert loss == pytest.approx(-np.mean(logp[np.arange(len(src)), y[:, 0]]), rel=1e-10)
