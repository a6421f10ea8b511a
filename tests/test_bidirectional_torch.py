"""Assignment 7's reference bidirectional and deep layers against PyTorch, in float64.

The reference is read from source/07_bidirectional_deep/07_bidirectional_deep.ipynb by
``load_reference``. Each direction of each layer maps onto PyTorch's weights as in the other
cross-checks: ``Wx``/``Wh`` are ``weight_ih_l{k}``/``weight_hh_l{k}`` (``_reverse`` for the
backward direction); the RNN's and LSTM's ``b`` is split into ``bias_ih = bias_hh = b / 2`` (both
get the gradient ``db``); the GRU's update-gate block is negated in every array (the course writes
the candidate where z = 1, PyTorch keeps the old state there; see test_gru_torch.py). The course's
``out[..., :H]`` and ``out[..., H:]`` are PyTorch's forward and reverse halves; a batch of variable
lengths goes through ``pack_padded_sequence(enforce_sorted=False)`` and ``pad_packed_sequence``,
whose zeros at padded steps are the course's. Outputs, final states, and the gradients of the
inputs, initial states and every weight must agree to 1e-9 relative. Skipped when PyTorch is not
installed (``make torch``).
"""

from __future__ import annotations

import numpy as np
import pytest
from torchref import close, leaf, needs_torch

from autograder.reference import load_reference

torch = needs_torch()
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

MODULES = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
KINDS = sorted(MODULES)
# (N, T, lengths): all T steps real; variable lengths; variable lengths all shorter than T
BATCHES = {"equal": (3, 5, None), "variable": (4, 7, [7, 2, 5, 1]), "short": (3, 6, [3, 5, 1])}


@pytest.fixture(scope="module")
def ref():
    return load_reference("07_bidirectional_deep")


def blocks(kind):
    """How many blocks of H rows the cell's weights have."""
    return {"rnn": 1, "gru": 3, "lstm": 4}[kind]


def sign(kind, H):
    """Multiply the rows of every array by this to change conventions (the GRU's z block)."""
    flip = np.ones(blocks(kind) * H)
    if kind == "gru":
        flip[H:2 * H] = -1.0
    return flip


def random_params(rng, kind, D, H):
    rows = blocks(kind) * H
    params = {"Wx": 0.6 * rng.standard_normal((rows, D)),
              "Wh": 0.6 * rng.standard_normal((rows, H))}
    if kind == "gru":
        params["bx"], params["bh"] = rng.standard_normal(rows), rng.standard_normal(rows)
    else:
        params["b"] = rng.standard_normal(rows)
    return params


def random_stack(rng, kind, D, H, num_layers, bidirectional):
    directions = 2 if bidirectional else 1
    layers = []
    for _ in range(num_layers):
        layers.append({"kind": kind, "bidirectional": bidirectional,
                       "params": [random_params(rng, kind, D, H) for _ in range(directions)]})
        D = directions * H
    return layers


def suffix(k, direction):
    return f"_l{k}" + ("_reverse" if direction else "")


def torch_stack(layers):
    """The torch module computing the course's stack (all layers of one kind and direction)."""
    kind, bidirectional = layers[0]["kind"], layers[0]["bidirectional"]
    Wx = layers[0]["params"][0]["Wx"]
    H, D = Wx.shape[0] // blocks(kind), Wx.shape[1]
    module = MODULES[kind](D, H, num_layers=len(layers), bidirectional=bidirectional,
                           batch_first=True, dtype=torch.float64)
    flip = sign(kind, H)
    with torch.no_grad():
        for k, spec in enumerate(layers):
            for direction, p in enumerate(spec["params"]):
                if kind == "gru":
                    b_ih, b_hh = flip * p["bx"], flip * p["bh"]
                else:
                    b_ih = b_hh = p["b"] / 2
                arrays = {"weight_ih": flip[:, None] * p["Wx"],
                          "weight_hh": flip[:, None] * p["Wh"], "bias_ih": b_ih, "bias_hh": b_hh}
                for name, value in arrays.items():
                    getattr(module, name + suffix(k, direction)).copy_(torch.from_numpy(value))
    return module


def torch_grads(module, kind, k, direction, H):
    """The gradients of one direction of one layer, in the course's layout."""
    flip = sign(kind, H)
    g = {name: getattr(module, name + suffix(k, direction)).grad.numpy()
         for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    grads = {"Wx": flip[:, None] * g["weight_ih"], "Wh": flip[:, None] * g["weight_hh"]}
    if kind == "gru":
        grads["bx"], grads["bh"] = flip * g["bias_ih"], flip * g["bias_hh"]
    else:
        close(g["bias_ih"], g["bias_hh"], "the two halves of b")  # b = bias_ih + bias_hh
        grads["b"] = g["bias_ih"]
    return grads


def run_torch(module, kind, x, lengths, h0=None):
    """Forward through torch, packed when the lengths vary; returns (x leaf, h0 leaf, out, h_n)."""
    N, T = x.shape[:2]
    xt = leaf(x)
    inputs = xt if lengths is None else pack_padded_sequence(
        xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    h0t = None if h0 is None else leaf(h0)
    hx = h0t
    if kind == "lstm" and h0 is not None:
        hx = (h0t, torch.zeros_like(h0t))
    out, h_n = module(inputs, hx)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    if kind == "lstm":
        h_n = h_n[0]
    return xt, h0t, out, h_n


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_layer_matches_torch(ref, kind, batch):
    N, T, lengths = BATCHES[batch]
    D, H = 3, 4
    rng = np.random.default_rng(sum(map(ord, kind + batch)))
    x = rng.standard_normal((N, T, D))
    (layer,) = random_stack(rng, kind, D, H, 1, True)
    h0 = rng.standard_normal((2, N, H))
    out, cache = ref.bidirectional_forward(x, lengths, kind, *layer["params"], h0[0], h0[1])
    dout = rng.standard_normal(out.shape)  # also at padded steps, where torch's out is constant
    dx, dh0_fw, dh0_bw, grads_fw, grads_bw = ref.bidirectional_backward(dout, cache)

    module = torch_stack([layer])
    xt, h0t, out_t, h_n = run_torch(module, kind, x, lengths, h0)
    what = f"({kind}, {batch} lengths)"
    close(out, out_t, f"out {what}")
    real = np.full(N, T) if lengths is None else np.asarray(lengths)
    close(out[np.arange(N), real - 1, :H], h_n[0], f"forward final state {what}")
    close(out[:, 0, H:], h_n[1], f"backward final state (at step 0) {what}")
    out_t.backward(torch.from_numpy(dout))
    close(dx, xt.grad, f"dx {what}")
    close(dh0_fw, h0t.grad[0], f"dh0_fw {what}")
    close(dh0_bw, h0t.grad[1], f"dh0_bw {what}")
    for direction, grads in enumerate((grads_fw, grads_bw)):
        expected = torch_grads(module, kind, 0, direction, H)
        assert set(grads) == set(expected)
        for name in expected:
            close(grads[name], expected[name], f"{name} of direction {direction} {what}")


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "unidirectional"])
@pytest.mark.parametrize("kind", KINDS)
def test_two_layer_stack_matches_torch(ref, kind, bidirectional, batch):
    N, T, lengths = BATCHES[batch]
    D, H = 2, 3
    rng = np.random.default_rng(sum(map(ord, kind + batch)) + bidirectional)
    x = rng.standard_normal((N, T, D))
    layers = random_stack(rng, kind, D, H, 2, bidirectional)
    out, cache = ref.deep_forward(x, lengths, layers)
    dout = rng.standard_normal(out.shape)
    dx, grads = ref.deep_backward(dout, cache)

    module = torch_stack(layers)
    xt, _, out_t, _ = run_torch(module, kind, x, lengths)
    what = f"({kind}, {'bi' if bidirectional else 'uni'}directional, {batch} lengths)"
    close(out, out_t, f"out {what}")
    out_t.backward(torch.from_numpy(dout))
    close(dx, xt.grad, f"dx {what}")
    assert len(grads) == len(layers)
    for k, layer_grads in enumerate(grads):
        assert len(layer_grads) == (2 if bidirectional else 1)
        for direction, g in enumerate(layer_grads):
            expected = torch_grads(module, kind, k, direction, H)
            assert set(g) == set(expected)
            for name in expected:
                close(g[name], expected[name], f"{name} of layer {k} direction {direction} {what}")


def test_reverse_padded_is_torchs_reversal(ref):
    """What the reverse direction of a packed sequence reads: each sequence flipped within its own
    length, the padding left at the end."""
    rng = np.random.default_rng(3)
    x, lengths = rng.standard_normal((4, 6, 2)), [6, 3, 1, 4]
    got = ref.reverse_padded(x, lengths)
    for n, length in enumerate(lengths):
        close(got[n, :length], torch.flip(torch.from_numpy(x[n, :length]), dims=[0]), f"row {n}")
        close(got[n, length:], x[n, length:], f"padding of row {n}")


def test_review_question_parameter_count(ref):
    """GRU_PARAMETERS is what torch counts for the question's GRU, and what init_layer builds."""
    gru = torch.nn.GRU(10, 20, num_layers=2, bidirectional=True)
    assert ref.GRU_PARAMETERS == sum(p.numel() for p in gru.parameters())
    rng = np.random.default_rng(0)
    stack = [ref.init_layer("gru", D, 20, rng) for D in (10, 10, 40, 40)]
    assert ref.GRU_PARAMETERS == sum(value.size for p in stack for value in p.values())


def test_init_layer_bounds_and_shapes(ref):
    """init_layer's weights are PyTorch's: uniform in (-1/sqrt(H), 1/sqrt(H)), PyTorch's shapes."""
    rng = np.random.default_rng(1)
    for kind in KINDS:
        params = ref.init_layer(kind, 5, 16, rng)
        module = MODULES[kind](5, 16)
        assert params["Wx"].shape == tuple(module.weight_ih_l0.shape)
        assert params["Wh"].shape == tuple(module.weight_hh_l0.shape)
        assert all(np.abs(v).max() <= 0.25 for v in params.values())
