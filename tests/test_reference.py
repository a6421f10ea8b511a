"""The reference solutions themselves: loaded from the source notebooks, cross-checked against
PyTorch where it is installed (``make torch``), and the loader's own guard rails."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torchref import needs_torch, torch_rnn

from autograder.reference import load_reference, substituted


@pytest.fixture(scope="module")
def ref02():
    return load_reference("02_forward_pass")


def _rnn_problem(seed, N=3, T=7, D=4, H=5):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((N, T, D)),
        rng.standard_normal((N, H)),
        rng.standard_normal((H, D)) * 0.5,
        rng.standard_normal((H, H)) * 0.5,
        rng.standard_normal(H) * 0.1,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rnn_forward_matches_torch(ref02, seed):
    torch = needs_torch()
    x, h0, Wx, Wh, b = _rnn_problem(seed)
    with torch.no_grad():
        out, h_last = torch_rnn(Wx, Wh, b)(torch.from_numpy(x), torch.from_numpy(h0)[None])
    h, cache = ref02.rnn_forward(x, h0, Wx, Wh, b)
    np.testing.assert_allclose(h, out.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h[:, -1], h_last[0].numpy(), rtol=1e-10, atol=1e-12)
    assert len(cache) == x.shape[1]
    h1, _ = ref02.rnn_cell_forward(x[:, 0], h0, Wx, Wh, b)
    np.testing.assert_allclose(h1, out[:, 0].numpy(), rtol=1e-10, atol=1e-12)


def test_output_and_losses_match_torch(ref02):
    torch = needs_torch()
    rng = np.random.default_rng(5)
    N, T, H, V = 2, 4, 3, 6
    h, Wy, by = rng.standard_normal((N, T, H)), rng.standard_normal((V, H)), rng.standard_normal(V)
    y = rng.integers(0, V, size=(N, T))
    probs, _ = ref02.output_forward(h, Wy, by)
    logits = torch.from_numpy(h @ Wy.T + by)
    np.testing.assert_allclose(probs, torch.softmax(logits, -1).numpy(), rtol=1e-12)
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), torch.from_numpy(y).reshape(-1), reduction="sum"
    ).item() / N
    assert ref02.cross_entropy_loss(probs, y) == pytest.approx(ce, rel=1e-10)
    p, t = rng.uniform(0.01, 0.99, 5), rng.integers(0, 2, 5).astype(float)
    bce = torch.nn.functional.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(t))
    assert ref02.binary_cross_entropy(p, t) == pytest.approx(bce.item(), rel=1e-10)


def test_lecture_worked_example(ref02):
    """FAST NUCES example, recomputed: h_1 as printed; y_1 not (see the notebook)."""
    Wx = np.array([[0.2, -0.3, 0.1, 0.4, 0.1], [0.5, 0.1, -0.2, 0.2, -0.4],
                   [-0.1, 0.3, 0.2, -0.1, 0.2]])
    Wh = np.array([[0.1, 0.3, -0.2], [0.4, -0.1, 0.5], [-0.3, 0.2, 0.1]])
    b = np.array([0.1, 0.1, -0.1])
    Wy = np.array([[-0.2, 0.1, 0.2], [0.3, -0.4, 0.5], [0.1, 0.2, -0.3], [-0.5, 0.4, 0.1],
                   [0.2, -0.1, 0.3]])
    by = np.array([0.0, 0.1, 0.0, 0.1, 0.0])
    h1, _ = ref02.rnn_cell_forward(np.eye(5)[[0]], np.zeros((1, 3)), Wx, Wh, b)
    np.testing.assert_allclose(h1[0], np.tanh([0.3, 0.6, -0.2]))
    np.testing.assert_allclose(h1[0], [0.2913, 0.5370, -0.1974], atol=5e-5)
    probs, _ = ref02.output_forward(h1[:, None], Wy, by)
    np.testing.assert_allclose(probs[0, 0], [0.1854, 0.1707, 0.2356, 0.2249, 0.1834], atol=5e-5)
    assert ["I", "love", "deep", "learning", "_"][int(probs[0, 0].argmax())] == "deep"


def test_ner_loss_in_nats_not_log10(ref02):
    probs = np.array([[[0.75, 0.20, 0.05], [0.15, 0.75, 0.10], [0.05, 0.90, 0.05],
                       [0.10, 0.30, 0.60]]])
    y = np.array([[0, 1, 1, 2]])
    assert ref02.cross_entropy_loss(probs, y) == pytest.approx(1.1916, abs=5e-5)
    assert ref02.cross_entropy_loss(probs, y) / np.log(10) == pytest.approx(0.5175, abs=5e-5)


def test_loader_rejects_side_effects(tmp_path, monkeypatch):
    folder = tmp_path / "99_bad"
    folder.mkdir()
    cell = {"cell_type": "code", "execution_count": None, "outputs": [], "source": "print(1)\n",
            "metadata": {"nbgrader": {"solution": True, "grade": False, "grade_id": "bad",
                                      "locked": False, "schema_version": 3, "task": False}}}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "99_bad.ipynb").write_text(json.dumps(nb))
    monkeypatch.setenv("RNNCOURSE_SOURCE", str(tmp_path))
    with pytest.raises(ValueError, match="top-level Expr"):
        load_reference("99_bad")


def test_substituted_restores_the_students_names():
    class Ref:
        f = staticmethod(lambda: "reference")
        g = staticmethod(lambda: "reference g")

    ns = {"f": lambda: "student"}
    with substituted(ns, Ref, "f", "g"):
        assert ns["f"]() == "reference" and ns["g"]() == "reference g"
    assert ns["f"]() == "student"
    assert "g" not in ns
