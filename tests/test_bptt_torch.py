"""Assignment 3's reference backward passes against PyTorch autograd, in float64.

The reference solutions are read from source/03_bptt/03_bptt.ipynb (and the forward pass from
source/02_forward_pass) by ``load_reference``; every gradient must match what autograd computes for
the same network built from ``torch.nn.RNN`` to 1e-9 relative. Skipped when PyTorch is not
installed (``make torch``).
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, leaf, needs_torch, torch_rnn

from autograder.reference import load_reference

torch = needs_torch()

@pytest.fixture(scope="module")
def ref():
    """The reference of assignment 3; it carries assignment 2's forward pass (its course_layers)."""
    return load_reference("03_bptt")


def rnn_problem(seed, N, T, D, H):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            0.6 * rng.standard_normal((H, D)), 0.6 * rng.standard_normal((H, H)),
            rng.standard_normal(H))


def check_rnn_grads(rnn, dWx, dWh, db, what):
    close(dWx, rnn.weight_ih_l0.grad, f"dWx {what}")
    close(dWh, rnn.weight_hh_l0.grad, f"dWh {what}")
    # b = bias_ih + bias_hh: both halves receive the same gradient, which is db
    close(db, rnn.bias_ih_l0.grad, f"db vs bias_ih {what}")
    close(db, rnn.bias_hh_l0.grad, f"db vs bias_hh {what}")


@pytest.mark.parametrize("seed,N,T,D,H", [(0, 3, 7, 4, 5), (1, 1, 1, 2, 3), (2, 2, 12, 3, 3),
                                          (3, 5, 4, 1, 6)])
def test_rnn_backward_matches_autograd(ref, seed, N, T, D, H):
    x, h0, Wx, Wh, b = rnn_problem(seed, N, T, D, H)
    dh = np.random.default_rng(100 + seed).standard_normal((N, T, H))
    h, cache = ref.rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = ref.rnn_backward(dh, cache)

    rnn = torch_rnn(Wx, Wh, b)
    xt, h0t = leaf(x), leaf(h0[None])
    out, _ = rnn(xt, h0t)
    close(h, out, "forward pass")
    out.backward(torch.from_numpy(dh))
    what = f"(seed {seed}, N={N}, T={T}, D={D}, H={H})"
    close(dx, xt.grad, f"dx {what}")
    close(dh0, h0t.grad[0], f"dh0 {what}")
    check_rnn_grads(rnn, dWx, dWh, db, what)


@pytest.mark.parametrize("seed", [0, 1])
def test_rnn_cell_backward_matches_autograd(ref, seed):
    rng = np.random.default_rng(200 + seed)
    N, D, H = 4, 3, 5
    x, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((H, D)), rng.standard_normal((H, H)), rng.standard_normal(H)
    dh_next = rng.standard_normal((N, H))
    _, cache = ref.rnn_cell_forward(x, h_prev, Wx, Wh, b)
    grads = ref.rnn_cell_backward(dh_next, cache)
    tensors = [leaf(a) for a in (x, h_prev, Wx, Wh, b)]
    xt, ht, Wxt, Wht, bt = tensors
    torch.tanh(xt @ Wxt.T + ht @ Wht.T + bt).backward(torch.from_numpy(dh_next))
    for name, grad, tensor in zip(("dx_t", "dh_prev", "dWx", "dWh", "db"), grads, tensors,
                                  strict=True):
        close(grad, tensor.grad, name)


def masked_problem(seed, N, T, H, V):
    rng = np.random.default_rng(300 + seed)
    h, Wy, by = rng.standard_normal((N, T, H)), rng.standard_normal((V, H)), rng.standard_normal(V)
    y = rng.integers(0, V, size=(N, T))
    lengths = rng.integers(1, T + 1, size=N)
    lengths[0] = T
    mask = np.arange(T)[None, :] < lengths[:, None]
    return h, Wy, by, np.where(mask, y, -100), mask


def torch_masked_cross_entropy(logits, y, N):
    """Sum over the real steps, mean over the batch: cross_entropy(reduction="sum") / N, with
    PyTorch's ignore_index=-100 for the padded steps."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), torch.from_numpy(y).reshape(-1), reduction="sum") / N


@pytest.mark.parametrize("seed,N,T,H,V", [(0, 2, 4, 3, 6), (1, 1, 1, 2, 2), (2, 4, 5, 5, 3)])
def test_softmax_cross_entropy_and_output_backward_match_autograd(ref, seed, N, T, H, V):
    h, Wy, by, y, mask = masked_problem(seed, N, T, H, V)
    probs, cache = ref.output_forward(h, Wy, by)
    dscores = ref.softmax_cross_entropy_backward(probs, y, mask)
    dh, dWy, dby = ref.output_backward(dscores, cache)

    ht, Wyt, byt = leaf(h), leaf(Wy), leaf(by)
    logits = ht @ Wyt.T + byt
    logits.retain_grad()
    loss = torch_masked_cross_entropy(logits, y, N)
    assert ref.cross_entropy_loss(probs, y, mask) == pytest.approx(loss.item(), rel=1e-12)
    loss.backward()
    close(dscores, logits.grad, "dscores")
    close(dh, ht.grad, "dh")
    close(dWy, Wyt.grad, "dWy")
    close(dby, byt.grad, "dby")


def model_problem(seed, N, T, D, H, V):
    rng = np.random.default_rng(400 + seed)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = {"Wx": 0.6 * rng.standard_normal((H, D)), "Wh": 0.6 * rng.standard_normal((H, H)),
              "b": rng.standard_normal(H), "Wy": rng.standard_normal((V, H)),
              "by": rng.standard_normal(V)}
    y = rng.integers(0, V, size=(N, T))
    return x, h0, params, y


@pytest.mark.parametrize("seed,N,T,D,H,V", [(0, 3, 6, 2, 4, 3), (1, 1, 1, 1, 2, 2),
                                            (2, 2, 9, 3, 5, 4)])
def test_many_to_many_matches_autograd(ref, seed, N, T, D, H, V):
    x, h0, params, y = model_problem(seed, N, T, D, H, V)
    lengths = np.random.default_rng(seed).integers(1, T + 1, size=N)
    mask = np.arange(T)[None, :] < lengths[:, None]
    y = np.where(mask, y, -100)
    loss, grads, h_last = ref.many_to_many_loss_and_grads(x, y, h0, params, mask)

    rnn = torch_rnn(params["Wx"], params["Wh"], params["b"])
    Wyt, byt = leaf(params["Wy"]), leaf(params["by"])
    out, h_n = rnn(torch.from_numpy(x), torch.from_numpy(h0)[None])
    t_loss = torch_masked_cross_entropy(out @ Wyt.T + byt, y, N)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    close(h_last, h_n[0], "h_last")
    check_rnn_grads(rnn, grads["Wx"], grads["Wh"], grads["b"], f"(seed {seed})")
    close(grads["Wy"], Wyt.grad, "dWy")
    close(grads["by"], byt.grad, "dby")


@pytest.mark.parametrize("seed,N,T,D,H", [(0, 4, 6, 3, 5), (1, 1, 1, 2, 2), (2, 3, 8, 1, 4)])
def test_many_to_one_matches_autograd(ref, seed, N, T, D, H):
    rng = np.random.default_rng(500 + seed)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = {"Wx": 0.6 * rng.standard_normal((H, D)), "Wh": 0.6 * rng.standard_normal((H, H)),
              "b": rng.standard_normal(H), "w": rng.standard_normal(H), "c": rng.standard_normal(1)}
    y = rng.integers(0, 2, size=N).astype(float)
    lengths = rng.integers(1, T + 1, size=N)
    loss, grads = ref.many_to_one_loss_and_grads(x, y, lengths, h0, params)

    rnn = torch_rnn(params["Wx"], params["Wh"], params["b"])
    wt, ct = leaf(params["w"]), leaf(params["c"])
    out, _ = rnn(torch.from_numpy(x), torch.from_numpy(h0)[None])
    h_last = out[torch.arange(N), torch.from_numpy(lengths - 1)]
    t_loss = torch.nn.functional.binary_cross_entropy_with_logits(h_last @ wt + ct,
                                                                  torch.from_numpy(y))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-10)
    check_rnn_grads(rnn, grads["Wx"], grads["Wh"], grads["b"], f"(seed {seed})")
    close(grads["w"], wt.grad, "dw")
    close(grads["c"], ct.grad, "dc")


@pytest.mark.parametrize("T,J", [(7, 3), (6, 2), (5, 5), (4, 9), (6, 1)])
def test_truncated_bptt_matches_detach(ref, T, J):
    """Truncated BPTT is autograd with the hidden state detached between chunks."""
    N, D, H, V = 2, 3, 4, 3
    x, h0, params, y = model_problem(10 * T + J, N, T, D, H, V)
    loss, grads, h_last = ref.truncated_bptt_grads(x, y, h0, params, J)

    rnn = torch_rnn(params["Wx"], params["Wh"], params["b"])
    Wyt, byt = leaf(params["Wy"]), leaf(params["by"])
    h = torch.from_numpy(h0)[None]
    t_loss = 0.0
    for start in range(0, T, J):
        out, h = rnn(torch.from_numpy(x[:, start:start + J]), h.detach())
        t_loss = t_loss + torch_masked_cross_entropy(out @ Wyt.T + byt, y[:, start:start + J], N)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    close(h_last, h[0], "h_last")
    check_rnn_grads(rnn, grads["Wx"], grads["Wh"], grads["b"], f"(T={T}, J={J})")
    close(grads["Wy"], Wyt.grad, "dWy")
    close(grads["by"], byt.grad, "dby")
    if J < T:  # and it is not full BPTT
        full = ref.many_to_many_loss_and_grads(x, y, h0, params)[1]
        assert not np.allclose(grads["Wh"], full["Wh"])


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clipping_matches_torch_utils(ref, max_norm):
    rng = np.random.default_rng(600)
    grads = {"Wx": rng.standard_normal((4, 3)), "Wh": 2.0 * rng.standard_normal((4, 4)),
             "b": rng.standard_normal(4)}
    tensors = {name: torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
               for name, g in grads.items()}
    for name, tensor in tensors.items():
        tensor.grad = torch.from_numpy(grads[name].copy())
    norm = torch.nn.utils.clip_grad_norm_(list(tensors.values()), max_norm)
    clipped, total_norm = ref.clip_by_global_norm(grads, max_norm)
    assert total_norm == pytest.approx(norm.item(), rel=1e-12)
    for name, tensor in tensors.items():
        # PyTorch divides by (norm + 1e-6), hence the looser tolerance here
        np.testing.assert_allclose(clipped[name], tensor.grad.numpy(), rtol=1e-5, atol=1e-12)

    for name, tensor in tensors.items():
        tensor.grad = torch.from_numpy(grads[name].copy())
    torch.nn.utils.clip_grad_value_(list(tensors.values()), 0.7)
    by_value = ref.clip_by_value(grads, 0.7)
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(by_value[name], tensor.grad.numpy())
