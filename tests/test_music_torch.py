"""Assignment 10's reference model (embedding, LSTM, output layer) against PyTorch, in float64.

The reference is read from source/10_music_generation/10_music_generation.ipynb by
``load_reference``. ``tune_lstm_loss`` must equal ``nn.Embedding`` + ``nn.LSTM`` (the course's
gate blocks i, f, g, o are PyTorch's; ``b`` is split into ``bias_ih_l0 = bias_hh_l0 = b / 2``, and
each half receives the whole ``db``) + ``nn.Linear`` + ``F.cross_entropy`` over the real (unmasked)
tokens: the loss, every gradient (the inputs repeat ids, so ``dE`` must add up) and the last hidden
and cell state, from a given initial state (h0, c0). The torch tests are skipped when PyTorch is
not installed (``make torch``); the check of the state carried across windows needs NumPy only.
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, leaf, needs_torch

from autograder.reference import load_reference


@pytest.fixture(scope="module")
def ref():
    return load_reference("10_music_generation")


def problem(seed, N=3, T=6, V=9, D=4, H=5):
    """float64 parameters and a batch whose inputs repeat ids, with a mask of ragged lengths."""
    rng = np.random.default_rng(seed)
    params = {"E": rng.standard_normal((V, D)), "Wx": 0.6 * rng.standard_normal((4 * H, D)),
              "Wh": 0.6 * rng.standard_normal((4 * H, H)), "b": 0.5 * rng.standard_normal(4 * H),
              "Wy": rng.standard_normal((V, H)), "by": 0.3 * rng.standard_normal(V)}
    params["b"][H:2 * H] += 1.0  # a forget-gate bias, as the notebook initialises it
    x = rng.integers(0, V // 2, (N, T))  # half the vocabulary: ids repeat, some never occur
    y = rng.integers(0, V, (N, T))
    lengths = rng.integers(1, T + 1, N)
    lengths[0] = T
    mask = np.arange(T) < lengths[:, None]
    state0 = (0.5 * rng.standard_normal((N, H)), 0.5 * rng.standard_normal((N, H)))
    return params, x, y, state0, mask


def torch_model(torch, params):
    """nn.Embedding, nn.LSTM (batch_first) and nn.Linear carrying the course's weights."""
    V, D = params["E"].shape
    H = params["Wh"].shape[1]
    embedding = torch.nn.Embedding(V, D, dtype=torch.float64)
    lstm = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(H, V, dtype=torch.float64)
    half = torch.from_numpy(params["b"] / 2)
    with torch.no_grad():
        embedding.weight.copy_(torch.from_numpy(params["E"]))
        lstm.weight_ih_l0.copy_(torch.from_numpy(params["Wx"]))
        lstm.weight_hh_l0.copy_(torch.from_numpy(params["Wh"]))
        lstm.bias_ih_l0.copy_(half)
        lstm.bias_hh_l0.copy_(half)
        head.weight.copy_(torch.from_numpy(params["Wy"]))
        head.bias.copy_(torch.from_numpy(params["by"]))
    return embedding, lstm, head


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_tune_lstm_loss_matches_torch(ref, seed, masked):
    torch = needs_torch()
    params, x, y, state0, mask = problem(seed)
    mask = mask if masked else None
    loss, grads, (h_last, c_last) = ref.tune_lstm_loss(params, x, y, state0, mask)

    embedding, lstm, head = torch_model(torch, params)
    h0, c0 = leaf(state0[0][None]), leaf(state0[1][None])
    out, (h_n, c_n) = lstm(embedding(torch.from_numpy(x)), (h0, c0))
    scores = head(out)
    keep = torch.from_numpy(np.ones_like(y, dtype=bool) if mask is None else mask)
    t_loss = torch.nn.functional.cross_entropy(scores[keep], torch.from_numpy(y)[keep])
    t_loss.backward()

    what = f"(seed {seed}, {'masked' if masked else 'no mask'})"
    close(loss, t_loss.item(), f"loss, nats per real token {what}")
    close(h_last, h_n[0], f"h_last {what}")
    close(c_last, c_n[0], f"c_last {what}")
    expected = {"E": embedding.weight.grad, "Wx": lstm.weight_ih_l0.grad,
                "Wh": lstm.weight_hh_l0.grad, "b": lstm.bias_ih_l0.grad, "Wy": head.weight.grad,
                "by": head.bias.grad}
    assert set(grads) == set(expected)
    for name, grad in expected.items():
        close(grads[name], grad, f"grads[{name!r}] {what}")
    close(grads["b"], lstm.bias_hh_l0.grad, f"grads['b'] against bias_hh {what}")
    unused = sorted(set(range(params["E"].shape[0])) - set(x.ravel()))
    assert unused and not np.any(grads["E"][unused]), "ids that never occur get no gradient"


def test_mask_matches_torch_ignore_index(ref):
    """Padded targets set to -100 (PyTorch's ignore_index) give the same loss and gradients as
    the mask: the reference never reads a target where the mask is False."""
    torch = needs_torch()
    params, x, y, state0, mask = problem(5, N=4, T=7)
    y_padded = np.where(mask, y, -100)
    loss, grads, _ = ref.tune_lstm_loss(params, x, y_padded, state0, mask)
    embedding, lstm, head = torch_model(torch, params)
    out, _ = lstm(embedding(torch.from_numpy(x)),
                  (torch.from_numpy(state0[0][None]), torch.from_numpy(state0[1][None])))
    scores = head(out)
    t_loss = torch.nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]),
                                               torch.from_numpy(y_padded).reshape(-1),
                                               ignore_index=-100)
    t_loss.backward()
    close(loss, t_loss.item(), "loss with ignore_index")
    close(grads["E"], embedding.weight.grad, "grads['E'] with ignore_index")
    close(grads["Wh"], lstm.weight_hh_l0.grad, "grads['Wh'] with ignore_index")


def test_state_carried_across_windows_equals_one_long_window(ref):
    """Two windows with the state carried equal one window of twice the length (NumPy only):
    what truncated BPTT in the notebook's train_tunes relies on."""
    params, x, y, state0, _ = problem(7, N=2, T=8)
    _, _, state_half = ref.tune_lstm_loss(params, x[:, :4], y[:, :4], state0)
    loss_second, _, state_end = ref.tune_lstm_loss(params, x[:, 4:], y[:, 4:], state_half)
    _, _, state_whole = ref.tune_lstm_loss(params, x, y, state0)
    np.testing.assert_allclose(state_end[0], state_whole[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state_end[1], state_whole[1], rtol=1e-12, atol=1e-14)
    loss_first, _, _ = ref.tune_lstm_loss(params, x[:, :4], y[:, :4], state0)
    loss_whole, _, _ = ref.tune_lstm_loss(params, x, y, state0)
    assert (loss_first + loss_second) / 2 == pytest.approx(loss_whole, rel=1e-12)
