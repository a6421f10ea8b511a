"""Assignment 6's reference LSTM against PyTorch, in float64.

The reference solutions are read from source/06_lstm/06_lstm.ipynb by ``load_reference``. The
course's fused parameters are PyTorch's own layout (gate blocks i, f, g, o): ``Wx`` is
``weight_ih_l0``, ``Wh`` is ``weight_hh_l0``, and ``b`` is split into ``bias_ih_l0 = bias_hh_l0 =
b / 2``. The forward pass (every hidden state and the last cell state) and every gradient must match
``torch.nn.LSTM`` / ``torch.nn.LSTMCell`` with autograd to 1e-9 relative. Skipped when PyTorch is
not installed (``make torch``).
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, leaf, needs_torch

from autograder.reference import load_reference

torch = needs_torch()

@pytest.fixture(scope="module")
def ref():
    return load_reference("06_lstm")


def lstm_params(rng, D, H):
    """Weights of the size PyTorch would use, and a bias with a visible forget-gate block."""
    Wx, Wh = 0.6 * rng.standard_normal((4 * H, D)), 0.6 * rng.standard_normal((4 * H, H))
    b = 0.5 * rng.standard_normal(4 * H)
    b[H:2 * H] += 1.0
    return Wx, Wh, b


def load_weights(module, Wx, Wh, b, suffix=""):
    half = torch.from_numpy(b / 2)
    with torch.no_grad():
        getattr(module, f"weight_ih{suffix}").copy_(torch.from_numpy(Wx))
        getattr(module, f"weight_hh{suffix}").copy_(torch.from_numpy(Wh))
        getattr(module, f"bias_ih{suffix}").copy_(half)
        getattr(module, f"bias_hh{suffix}").copy_(half)
    return module


def check_weight_grads(module, dWx, dWh, db, what, suffix=""):
    close(dWx, getattr(module, f"weight_ih{suffix}").grad, f"dWx {what}")
    close(dWh, getattr(module, f"weight_hh{suffix}").grad, f"dWh {what}")
    # b = bias_ih + bias_hh: both halves receive the same gradient, which is db
    close(db, getattr(module, f"bias_ih{suffix}").grad, f"db vs bias_ih {what}")
    close(db, getattr(module, f"bias_hh{suffix}").grad, f"db vs bias_hh {what}")


@pytest.mark.parametrize("seed,N,T,D,H,with_c0", [
    (0, 3, 7, 4, 5, False), (1, 1, 1, 2, 3, False), (2, 2, 12, 3, 3, True), (3, 5, 4, 1, 6, True),
    (4, 4, 30, 6, 2, False),
])
def test_lstm_forward_and_backward_match_autograd(ref, seed, N, T, D, H, with_c0):
    rng = np.random.default_rng(seed)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    c0 = rng.standard_normal((N, H)) if with_c0 else None
    Wx, Wh, b = lstm_params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = ref.lstm_forward(x, h0, Wx, Wh, b, c0=c0)
    dx, dh0, dWx, dWh, db = ref.lstm_backward(dh, cache)

    lstm = load_weights(torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64),
                        Wx, Wh, b, suffix="_l0")
    xt, h0t = leaf(x), leaf(h0[None])
    c0t = torch.zeros((1, N, H), dtype=torch.float64) if c0 is None else leaf(c0[None])
    out, (h_n, c_n) = lstm(xt, (h0t, c0t))
    what = f"(seed {seed}, N={N}, T={T}, D={D}, H={H}, c0 {'given' if with_c0 else 'zero'})"
    close(h, out, f"h {what}")
    close(h[:, -1], h_n[0], f"last h {what}")
    close(cache[-1][7], c_n[0], f"last c (cache[-1][7]) {what}")
    out.backward(torch.from_numpy(dh))
    close(dx, xt.grad, f"dx {what}")
    close(dh0, h0t.grad[0], f"dh0 {what}")
    check_weight_grads(lstm, dWx, dWh, db, what, suffix="_l0")


@pytest.mark.parametrize("seed,N,D,H", [(0, 4, 3, 5), (1, 1, 1, 1), (2, 3, 6, 2)])
def test_lstm_cell_matches_lstmcell_autograd(ref, seed, N, D, H):
    rng = np.random.default_rng(100 + seed)
    x, h_prev, c_prev = (rng.standard_normal((N, D)), rng.standard_normal((N, H)),
                         2.0 * rng.standard_normal((N, H)))
    Wx, Wh, b = lstm_params(rng, D, H)
    dh_next, dc_next = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    h_next, c_next, cache = ref.lstm_cell_forward(x, h_prev, c_prev, Wx, Wh, b)
    dx, dh_prev, dc_prev, dWx, dWh, db = ref.lstm_cell_backward(dh_next, dc_next, cache)

    cell = load_weights(torch.nn.LSTMCell(D, H, dtype=torch.float64), Wx, Wh, b)
    xt, ht, ct = leaf(x), leaf(h_prev), leaf(c_prev)
    h1, c1 = cell(xt, (ht, ct))
    what = f"(seed {seed}, N={N}, D={D}, H={H})"
    close(h_next, h1, f"h_next {what}")
    close(c_next, c1, f"c_next {what}")
    torch.autograd.backward([h1, c1], [torch.from_numpy(dh_next), torch.from_numpy(dc_next)])
    close(dx, xt.grad, f"dx_t {what}")
    close(dh_prev, ht.grad, f"dh_prev {what}")
    close(dc_prev, ct.grad, f"dc_prev {what}")
    check_weight_grads(cell, dWx, dWh, db, what)


def test_x_proj_is_the_input_part(ref):
    rng = np.random.default_rng(7)
    x, h_prev, c_prev = (rng.standard_normal(shape) for shape in [(3, 4), (3, 2), (3, 2)])
    Wx, Wh, b = lstm_params(rng, 4, 2)
    plain = ref.lstm_cell_forward(x, h_prev, c_prev, Wx, Wh, b)
    given = ref.lstm_cell_forward(x, h_prev, c_prev, Wx, Wh, b, x_proj=x @ Wx.T + b)
    for k in (0, 1):
        close(given[k], plain[k], "x_proj = x Wx^T + b changes nothing")


def test_float32_stays_float32(ref):
    """The benchmark runs the reference in float32: no silent upcast to float64 anywhere."""
    rng = np.random.default_rng(8)
    N, T, D, H = 4, 6, 5, 3
    f32 = np.float32
    x, h0 = rng.standard_normal((N, T, D)).astype(f32), rng.standard_normal((N, H)).astype(f32)
    Wx, Wh, b = (a.astype(f32) for a in lstm_params(rng, D, H))
    dh = rng.standard_normal((N, T, H)).astype(f32)
    h, cache = ref.lstm_forward(x, h0, Wx, Wh, b)
    grads = ref.lstm_backward(dh, cache)
    assert h.dtype == f32 and all(a.dtype == f32 for a in cache[-1][:8])
    assert [g.dtype for g in grads] == [f32] * 5
    h64, cache64 = ref.lstm_forward(*(a.astype(np.float64) for a in (x, h0, Wx, Wh, b)))
    grads64 = ref.lstm_backward(dh.astype(np.float64), cache64)
    np.testing.assert_allclose(h, h64, rtol=1e-4, atol=1e-5)
    for g, g64 in zip(grads, grads64, strict=True):
        np.testing.assert_allclose(g, g64, rtol=1e-3, atol=1e-4)
