"""Optimizers for the course's numpy models: plain/momentum SGD and Adam.

Parameters and gradients are dicts of arrays with the same keys (``{"Wx": ..., "Wh": ...}``);
``step`` updates the parameter arrays in place, so caches and views that hold them see the update.
The update rules are PyTorch's (``torch.optim.SGD`` with ``dampening=0`` and ``torch.optim.Adam``
without weight decay); ``tests/test_optim.py`` checks them against torch where it is installed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Arrays = Mapping[str, np.ndarray]


def _check(params: Arrays, grads: Arrays) -> None:
    if set(params) != set(grads):
        missing, extra = sorted(set(params) - set(grads)), sorted(set(grads) - set(params))
        raise KeyError(f"params and grads have different keys: missing {missing}, extra {extra}")
    for name, p in params.items():
        if np.shape(grads[name]) != p.shape:
            raise ValueError(f"grads[{name!r}] has shape {np.shape(grads[name])}, "
                             f"params[{name!r}] has shape {p.shape}")


class SGD:
    """``p -= lr * v`` with ``v = momentum * v + g`` (``v = g`` when momentum is 0)."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.0):
        self.lr, self.momentum = float(lr), float(momentum)
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: Arrays, grads: Arrays) -> None:
        _check(params, grads)
        for name, p in params.items():
            g = np.asarray(grads[name], dtype=p.dtype)
            if self.momentum:
                v = self.velocity.get(name)
                v = g.copy() if v is None else self.momentum * v + g
                self.velocity[name] = v
                g = v
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam`` computes it."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.lr, self.eps = float(lr), float(eps)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, params: Arrays, grads: Arrays) -> None:
        _check(params, grads)
        self.t += 1
        c1, c2 = 1.0 - self.beta1 ** self.t, 1.0 - self.beta2 ** self.t
        for name, p in params.items():
            g = np.asarray(grads[name], dtype=p.dtype)
            m = self.m.setdefault(name, np.zeros_like(p))
            v = self.v.setdefault(name, np.zeros_like(p))
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
