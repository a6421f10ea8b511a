"""PyTorch modules carrying the course's weights, for the cross-check tests (torch is optional)."""

from __future__ import annotations

import numpy as np

RTOL, ATOL = 1e-9, 1e-12  # float64 agreement required of every reference gradient


def needs_torch():
    """The torch module, or a clean skip of the calling test (module) when it is not installed."""
    import pytest

    return pytest.importorskip("torch", reason="PyTorch not installed (run `make torch`)")


def close(actual, expected, what):
    """assert_allclose at RTOL/ATOL; ``expected`` may be a torch tensor."""
    if not isinstance(expected, np.ndarray | float | int):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def leaf(array):
    """A float64 torch tensor that collects a gradient."""
    import torch

    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def torch_rnn(Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray):
    """torch.nn.RNN(tanh, batch_first, float64) equal to the course's RNN with (Wx, Wh, b).

    PyTorch has two biases, bias_ih + bias_hh; each gets half of b, and each receives the full
    gradient db in backward.
    """
    import torch

    H, D = Wx.shape
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True, dtype=torch.float64)
    half = torch.from_numpy(b / 2)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(Wx))
        rnn.weight_hh_l0.copy_(torch.from_numpy(Wh))
        rnn.bias_ih_l0.copy_(half)
        rnn.bias_hh_l0.copy_(half)
    return rnn
