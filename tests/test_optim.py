"""rnncourse.optim: the update rules, by hand and against torch.optim where torch is installed."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse.optim import SGD, Adam


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(3)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(5)]
    return params, grads


def test_sgd_plain_step_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    SGD(lr=0.5).step(p, {"w": np.array([2.0, 4.0])})
    np.testing.assert_allclose(p["w"], [0.0, -4.0])


def test_sgd_momentum_by_hand():
    p, opt = {"w": np.array([0.0])}, SGD(lr=1.0, momentum=0.5)
    for _ in range(3):
        opt.step(p, {"w": np.array([1.0])})
    # velocities 1, 1.5, 1.75
    np.testing.assert_allclose(p["w"], [-4.25])


def test_adam_first_step_is_lr_times_sign():
    p = {"w": np.array([1.0, 1.0, 1.0])}
    Adam(lr=0.1).step(p, {"w": np.array([3.0, -0.5, 1e-3])})
    np.testing.assert_allclose(p["w"], [0.9, 1.1, 0.9], rtol=1e-4)


def test_updates_in_place_and_keeps_dtype():
    w = np.ones(4, dtype=np.float32)
    params = {"w": w}
    Adam().step(params, {"w": np.ones(4)})
    assert params["w"] is w and w.dtype == np.float32 and np.all(w < 1)


def test_mismatched_keys_and_shapes_are_refused():
    with pytest.raises(KeyError, match="missing"):
        SGD().step({"a": np.zeros(2), "b": np.zeros(2)}, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match="shape"):
        Adam().step({"a": np.zeros(2)}, {"a": np.zeros(3)})


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_matches_torch_optim(kind):
    torch = pytest.importorskip("torch")
    params, grads = _problem()
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    if kind == "adam":
        ours = Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6)
        theirs = torch.optim.Adam(tparams.values(), lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    else:
        momentum = 0.9 if kind == "momentum" else 0.0
        ours = SGD(lr=0.05, momentum=momentum)
        theirs = torch.optim.SGD(tparams.values(), lr=0.05, momentum=momentum)
    for g in grads:
        ours.step(params, g)
        for k, t in tparams.items():
            t.grad = torch.tensor(g[k])
        theirs.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-12)
