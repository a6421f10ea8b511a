"""Assignment 5's reference GRU against ``torch.nn.GRU``, forward and backward, in float64.

The reference is read from source/05_gru/05_gru.ipynb by ``load_reference``. The course's GRU is
PyTorch's with the update gate pointing the other way: ours writes the candidate where z = 1
(h = (1 - z) h_prev + z n), PyTorch's keeps the old state there (h = (1 - z) n + z h_prev). Since
sigmoid(-a) = 1 - sigmoid(a), the course's weights become PyTorch's by negating the z block (rows
H:2H of both weight matrices and both biases), and PyTorch's gradients become ours the same way.
Everything else (the gate order r, z, n, the reset applied after the hidden product, the two
biases) is PyTorch's own layout. Skipped when PyTorch is not installed (``make torch``).
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, leaf, needs_torch

from autograder.reference import load_reference

torch = needs_torch()

@pytest.fixture(scope="module")
def ref():
    """The reference of assignment 5; it carries what its course_layers gets from 02 and 03."""
    return load_reference("05_gru")


def z_flip(H):
    """+1 on the r and n blocks, -1 on the z block: multiply rows by it to change conventions."""
    flip = np.ones(3 * H)
    flip[H:2 * H] = -1.0
    return flip


def gru_problem(seed, N, T, D, H):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            0.7 * rng.standard_normal((3 * H, D)), 0.7 * rng.standard_normal((3 * H, H)),
            rng.standard_normal(3 * H), rng.standard_normal(3 * H))


def torch_gru(Wx, Wh, bx, bh):
    """torch.nn.GRU(batch_first) computing the course's GRU: the z block negated."""
    H, D = Wh.shape[1], Wx.shape[1]
    flip = z_flip(H)
    gru = torch.nn.GRU(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(flip[:, None] * Wx))
        gru.weight_hh_l0.copy_(torch.from_numpy(flip[:, None] * Wh))
        gru.bias_ih_l0.copy_(torch.from_numpy(flip * bx))
        gru.bias_hh_l0.copy_(torch.from_numpy(flip * bh))
    return gru


SHAPES = [(0, 3, 7, 4, 5), (1, 1, 1, 2, 3), (2, 2, 12, 3, 3), (3, 5, 4, 1, 6), (4, 1, 9, 6, 2)]


@pytest.mark.parametrize("seed,N,T,D,H", SHAPES)
def test_gru_forward_and_backward_match_torch(ref, seed, N, T, D, H):
    x, h0, Wx, Wh, bx, bh = gru_problem(seed, N, T, D, H)
    dh = np.random.default_rng(100 + seed).standard_normal((N, T, H))
    h, cache = ref.gru_forward(x, h0, Wx, Wh, bx, bh)
    dx, dh0, dWx, dWh, dbx, dbh = ref.gru_backward(dh, cache)

    gru = torch_gru(Wx, Wh, bx, bh)
    xt, h0t = leaf(x), leaf(h0[None])
    out, h_n = gru(xt, h0t)
    what = f"(seed {seed}, N={N}, T={T}, D={D}, H={H})"
    close(h, out, f"h {what}")
    close(h[:, -1], h_n[0], f"h_n {what}")
    out.backward(torch.from_numpy(dh))
    flip = z_flip(H)
    close(dx, xt.grad, f"dx {what}")
    close(dh0, h0t.grad[0], f"dh0 {what}")
    close(dWx, flip[:, None] * gru.weight_ih_l0.grad.numpy(), f"dWx {what}")
    close(dWh, flip[:, None] * gru.weight_hh_l0.grad.numpy(), f"dWh {what}")
    close(dbx, flip * gru.bias_ih_l0.grad.numpy(), f"dbx {what}")
    close(dbh, flip * gru.bias_hh_l0.grad.numpy(), f"dbh {what}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gru_cell_matches_torch_gru_cell(ref, seed):
    rng = np.random.default_rng(200 + seed)
    N, D, H = 4, 3, 5
    x_t, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh = rng.standard_normal((3 * H, D)), rng.standard_normal((3 * H, H))
    bx, bh = rng.standard_normal(3 * H), rng.standard_normal(3 * H)
    dh_next = rng.standard_normal((N, H))
    h_next, cache = ref.gru_cell_forward(x_t, h_prev, Wx, Wh, bx, bh)
    grads = ref.gru_cell_backward(dh_next, cache)

    flip = z_flip(H)
    cell = torch.nn.GRUCell(D, H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(flip[:, None] * Wx))
        cell.weight_hh.copy_(torch.from_numpy(flip[:, None] * Wh))
        cell.bias_ih.copy_(torch.from_numpy(flip * bx))
        cell.bias_hh.copy_(torch.from_numpy(flip * bh))
    xt, ht = leaf(x_t), leaf(h_prev)
    out = cell(xt, ht)
    close(h_next, out, "h_next")
    out.backward(torch.from_numpy(dh_next))
    expected = (xt.grad.numpy(), ht.grad.numpy(),
                flip[:, None] * cell.weight_ih.grad.numpy(),
                flip[:, None] * cell.weight_hh.grad.numpy(),
                flip * cell.bias_ih.grad.numpy(), flip * cell.bias_hh.grad.numpy())
    for name, grad, want in zip(("dx_t", "dh_prev", "dWx", "dWh", "dbx", "dbh"), grads, expected,
                                strict=True):
        close(grad, want, name)


def test_cache_holds_the_gates(ref):
    """The cache's r, z, n, hn are the gates torch computes (z in the course's direction)."""
    x, h0, Wx, Wh, bx, bh = gru_problem(7, 3, 1, 4, 5)
    H = 5
    _, (x_t, h_prev, r, z, n, hn, Wx_c, Wh_c) = ref.gru_cell_forward(x[:, 0], h0, Wx, Wh, bx, bh)
    gi = torch.from_numpy(x[:, 0] @ Wx.T + bx)
    gh = torch.from_numpy(h0 @ Wh.T + bh)
    close(r, torch.sigmoid(gi[:, :H] + gh[:, :H]), "r")
    close(1 - z, torch.sigmoid(-(gi[:, H:2 * H] + gh[:, H:2 * H])), "1 - z (PyTorch's z)")
    close(hn, gh[:, 2 * H:], "hn")
    close(n, torch.tanh(gi[:, 2 * H:] + torch.from_numpy(r) * gh[:, 2 * H:]), "n")
    assert x_t is x[:, 0] or np.array_equal(x_t, x[:, 0])
    assert np.array_equal(h_prev, h0) and Wx_c is Wx and Wh_c is Wh


def test_reset_placement_matters(ref):
    """The course resets the hidden product (PyTorch, cuDNN), not the state (Cho et al., the
    lectures): with a non-diagonal Wh_n and a nonzero b_hn the two differ."""
    x, h0, Wx, Wh, bx, bh = gru_problem(8, 2, 1, 3, 4)
    H = 4
    h_next, (_, _, r, z, _, _, _, _) = ref.gru_cell_forward(x[:, 0], h0, Wx, Wh, bx, bh)
    gx = x[:, 0] @ Wx.T + bx
    n_before = np.tanh(gx[:, 2 * H:] + (r * h0) @ Wh[2 * H:].T + bh[2 * H:])
    assert not np.allclose(h_next, (1 - z) * h0 + z * n_before)
