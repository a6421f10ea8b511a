"""Assignment 8's reference char-RNN against PyTorch, in float64, and its sampling functions.

The reference is read from source/08_char_language_model/08_char_language_model.ipynb by
``load_reference``. ``char_rnn_loss`` must equal ``torch.nn.RNN`` + ``nn.Linear`` + the mean
cross-entropy over the real (unmasked) characters, in value, gradients and last hidden state;
``train_step`` with ``rnncourse.optim.Adam`` must follow ``torch.optim.Adam`` after
``clip_grad_norm_``; the temperature softmax and top-k must match ``torch.softmax`` and
``torch.topk``. The torch tests are skipped when PyTorch is not installed (``make torch``); the
data-pipeline and sampling checks at the end need NumPy only.
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, needs_torch, torch_rnn

from autograder.reference import load_reference
from rnncourse.optim import Adam


@pytest.fixture(scope="module")
def ref():
    return load_reference("08_char_language_model")


def problem(seed, N=3, T=6, V=7, H=5):
    rng = np.random.default_rng(seed)
    params = {"Wx": rng.standard_normal((H, V)), "Wh": 0.5 * rng.standard_normal((H, H)),
              "b": 0.3 * rng.standard_normal(H), "Wy": rng.standard_normal((V, H)),
              "by": 0.3 * rng.standard_normal(V)}
    x, y = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
    lengths = rng.integers(1, T + 1, N)
    mask = np.arange(T) < lengths[:, None]
    return params, x, y, 0.5 * rng.standard_normal((N, H)), mask


def torch_model(torch, params):
    rnn = torch_rnn(params["Wx"], params["Wh"], params["b"])
    head = torch.nn.Linear(*params["Wy"].shape[::-1], dtype=torch.float64)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(params["Wy"]))
        head.bias.copy_(torch.from_numpy(params["by"]))
    return rnn, head


def torch_loss(torch, rnn, head, x, y, h0, mask):
    """Mean cross-entropy over the real characters, and the last hidden state."""
    V = head.weight.shape[0]
    onehot = torch.nn.functional.one_hot(torch.from_numpy(x), V).double()
    out, h_last = rnn(onehot, torch.from_numpy(h0)[None])
    scores = head(out)
    keep = torch.from_numpy(np.ones_like(y, dtype=bool) if mask is None else mask)
    loss = torch.nn.functional.cross_entropy(scores[keep], torch.from_numpy(y)[keep])
    return loss, h_last[0]


def torch_grads(rnn, head):
    return {"Wx": rnn.weight_ih_l0.grad, "Wh": rnn.weight_hh_l0.grad,
            "b": rnn.bias_ih_l0.grad, "Wy": head.weight.grad, "by": head.bias.grad}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_char_rnn_loss_matches_torch(ref, seed, masked):
    torch = needs_torch()
    params, x, y, h0, mask = problem(seed)
    mask = mask if masked else None
    loss, grads, h_last = ref.char_rnn_loss(params, x, y, h0, mask)
    rnn, head = torch_model(torch, params)
    t_loss, t_h_last = torch_loss(torch, rnn, head, x, y, h0, mask)
    t_loss.backward()
    close(loss, t_loss.item(), "loss (nats per real character)")
    close(h_last, t_h_last, "h_last")
    for name, grad in torch_grads(rnn, head).items():
        close(grads[name], grad, f"grads[{name!r}]")


def test_train_step_follows_torch_adam_with_clipping(ref):
    """Four steps of the reference train_step (rnncourse.optim.Adam, clipping at 0.5, which is
    active here) against torch.optim.Adam after clip_grad_norm_. The course's RNN has one bias b;
    PyTorch has two, so its bias_hh is frozen at zero and bias_ih plays b."""
    torch = needs_torch()
    params, x, y, h0, mask = problem(8)
    mine, adam = {k: v.copy() for k, v in params.items()}, Adam(lr=0.05)
    rnn, head = torch_model(torch, params)
    with torch.no_grad():
        rnn.bias_ih_l0.copy_(torch.from_numpy(params["b"]))
        rnn.bias_hh_l0.zero_()
    rnn.bias_hh_l0.requires_grad_(False)
    modules = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, head.weight, head.bias]
    optimizer = torch.optim.Adam(modules, lr=0.05)
    for step in range(4):
        loss, _, norm = ref.train_step(mine, adam, x, y, h0, 0.5, mask)
        optimizer.zero_grad()
        t_loss, _ = torch_loss(torch, rnn, head, x, y, h0, mask)
        t_loss.backward()
        t_norm = torch.nn.utils.clip_grad_norm_(modules, 0.5)
        optimizer.step()
        close(loss, t_loss.item(), f"loss at step {step}")
        assert norm > 0.5 and norm == pytest.approx(t_norm.item(), rel=1e-9), step
        for name, tensor in zip(("Wx", "Wh", "b", "Wy", "by"), modules, strict=True):
            np.testing.assert_allclose(mine[name], tensor.detach().numpy(), rtol=1e-7, atol=1e-10,
                                       err_msg=f"params[{name!r}] after step {step}")


def test_temperature_and_top_k_match_torch(ref):
    torch = needs_torch()
    scores = 3 * np.random.default_rng(3).standard_normal((4, 9))
    for tau in (0.2, 1.0, 4.0):
        expected = torch.softmax(torch.from_numpy(scores) / tau, dim=-1)
        close(ref.softmax_with_temperature(scores, tau), expected, f"temperature {tau}")
    probs = ref.softmax_with_temperature(scores, 1.0)
    for k in (1, 3, 8):
        values, indices = torch.topk(torch.from_numpy(probs), k, dim=-1)
        expected = torch.zeros(4, 9, dtype=torch.float64).scatter(-1, indices, values)
        close(ref.top_k_filter(probs, k), expected / expected.sum(-1, keepdim=True), f"top-{k}")


def test_sampling_distribution_and_stopping(ref):
    """sample_next draws each row from its own distribution (20,000 draws, 5 standard errors);
    sample_sequence stops at EOS and at max_len."""
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.0, 0.1, 0.1, 0.8]])
    M = 10_000
    draws = ref.sample_next(np.repeat(probs, M, axis=0), np.random.default_rng(0))
    for row, p in enumerate(probs):
        counts = np.bincount(draws[row * M:(row + 1) * M], minlength=4)
        sd = np.sqrt(M * p * (1 - p))
        assert np.all(np.abs(counts - M * p) <= 5 * sd), (row, counts)
        assert np.all(counts[p == 0] == 0)
    params, *_ = problem(4, V=6)
    for seed in range(20):
        ids = ref.sample_sequence(params, np.random.default_rng(seed), 12)
        assert len(ids) <= 12 and ref.EOS_ID not in ids
    params["by"][ref.EOS_ID] = 50.0  # EOS is all but certain: the sequence ends at once
    assert len(ref.sample_sequence(params, np.random.default_rng(0), 12)) == 0


def test_windows_cover_each_stream_in_order(ref):
    """Reading row n of the windows one after the other gives stream n of the text unbroken."""
    ids = np.arange(1000)
    x, y = ref.make_windows(ids, 7, 9)
    L = (len(ids) - 1) // 7
    for n in range(7):
        stream = np.concatenate(list(x[:, n]))
        np.testing.assert_array_equal(stream, ids[n * L:n * L + len(stream)])
        np.testing.assert_array_equal(np.concatenate(list(y[:, n])), stream + 1)
