"""Optimizers as small state machines, keyed by the names a user writes in YAML.

Each keeps a per-parameter cache and updates parameters *in place* through
``update(param, grad, name)``, which works unchanged on NumPy and CuPy arrays (NumPy's
ufuncs hand CuPy arrays to CuPy). The cache also holds a scratch array per parameter, so
an update allocates nothing. Training instead calls ``_update_in_grad`` once per minibatch
on one flat array holding every parameter: the same step, using the spent gradient as the
scratch array (one array fewer streaming through the cache each step). The learning rate
at epoch ``t`` is ``learning_rate / (1 + lr_decay * t)``; call ``set_epoch(t)`` at the
start of each epoch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _zeros_like(a: Any) -> Any:
    # Neither numpy nor cupy is named here, so the state lives wherever the parameter does.
    z = a.copy()
    z.fill(0)
    return z


class Optimizer:
    """Base class: hyperparameters, the decayed learning rate and the per-parameter cache.

    Args:
        learning_rate: Initial step size.
        beta1: Momentum / Adam first-moment decay.
        beta2: RMSprop / Adam second-moment decay.
        epsilon: Guard added to the RMSprop / Adam denominator.
        lr_decay: Learning-rate decay: the rate at epoch t is
            ``learning_rate / (1 + lr_decay * t)``.
    """

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        lr_decay: float = 0.0,
    ) -> None:
        self.hyperparameters: dict[str, Any] = {
            "id": type(self).__name__,
            "learning_rate": float(learning_rate),
            "beta1": float(beta1),
            "beta2": float(beta2),
            "epsilon": float(epsilon),
            "lr_decay": float(lr_decay),
        }
        self.cache: dict[str, dict[str, Any]] = {}
        self.lr = float(learning_rate)

    def set_epoch(self, t: int) -> None:
        """Sets the learning rate for epoch ``t`` (0-based) from the decay schedule."""
        hp = self.hyperparameters
        self.lr = hp["learning_rate"] / (1.0 + hp["lr_decay"] * t)

    SLOTS: tuple[str, ...] = ()
    """The per-parameter state arrays a subclass keeps, besides the step count ``t``."""

    def update(self, param: Any, grad: Any, name: str) -> None:
        """Moves ``param`` (in place) one step against ``grad``; ``name`` keys its state."""
        state = self._state(name, param, *self.SLOTS, "scratch")
        self._step(param, grad, state, state["scratch"])

    def _update_in_grad(self, param: Any, grad: Any, name: str) -> None:
        """``update``, with ``grad``'s storage as the scratch array: ``grad`` is garbage after."""
        self._step(param, grad, self._state(name, param, *self.SLOTS), grad)

    def _step(self, param: Any, grad: Any, state: dict[str, Any], scratch: Any) -> None:
        """One step; ``scratch`` is shaped like ``param`` and may be ``grad`` itself, so
        ``grad`` is read before ``scratch`` is first written."""
        raise NotImplementedError

    def step(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """Updates every parameter ``p`` from the gradient ``grads["d" + p]``."""
        for name, param in params.items():
            self.update(param, grads["d" + name], name)

    def _state(self, name: str, param: Any, *slots: str) -> dict[str, Any]:
        state = self.cache.setdefault(name, {"t": 0})
        for slot in slots:
            if slot not in state:
                state[slot] = _zeros_like(param)
        return state


class GradientDescent(Optimizer):
    """Plain (minibatch) gradient descent: ``p -= lr * g``."""

    def _step(self, param: Any, grad: Any, state: dict[str, Any], scratch: Any) -> None:
        np.multiply(grad, self.lr, out=scratch)
        param -= scratch


class Momentum(Optimizer):
    """Gradient descent with momentum: ``v = b1 v + (1 - b1) g``, ``p -= lr * v``."""

    SLOTS = ("v",)

    def _step(self, param: Any, grad: Any, state: dict[str, Any], scratch: Any) -> None:
        beta1, v = self.hyperparameters["beta1"], state["v"]
        v *= beta1
        np.multiply(grad, 1.0 - beta1, out=scratch)
        v += scratch
        np.multiply(v, self.lr, out=scratch)
        param -= scratch


class RMSprop(Optimizer):
    """RMSprop: ``s = b2 s + (1 - b2) g^2``, ``p -= lr * g / (sqrt(s) + eps)``."""

    SLOTS = ("s", "denominator")

    def _step(self, param: Any, grad: Any, state: dict[str, Any], scratch: Any) -> None:
        hp = self.hyperparameters
        s, denominator = state["s"], state["denominator"]
        s *= hp["beta2"]
        np.square(grad, out=denominator)
        denominator *= 1.0 - hp["beta2"]
        s += denominator
        np.sqrt(s, out=denominator)
        denominator += hp["epsilon"]
        np.divide(grad, denominator, out=scratch)
        scratch *= self.lr
        param -= scratch


class Adam(Optimizer):
    """Adam with bias correction; each parameter's step counter t starts at 1.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

    The cache keeps the moments divided by ``1 - b1`` and ``1 - b2`` (``m = b1 m + g``,
    ``v = b2 v + g^2``): the same step, with those factors and both bias corrections folded
    into two scalars, so an update is ten passes over the arrays instead of fourteen.
    """

    SLOTS = ("m", "v")

    def _step(self, param: Any, grad: Any, state: dict[str, Any], scratch: Any) -> None:
        hp = self.hyperparameters
        beta1, beta2 = hp["beta1"], hp["beta2"]
        state["t"] += 1
        t = state["t"]
        m, v = state["m"], state["v"]
        m *= beta1
        m += grad
        v *= beta2
        np.square(grad, out=scratch)  # grad's last read; square beats multiply(g, g)
        v += scratch
        # sqrt(v_true / c2) = sqrt(v / r) with r = c2 / (1 - b2); m_true / c1 = m (1 - b1) / c1.
        root_r = math.sqrt((1.0 - beta2**t) / (1.0 - beta2))
        np.sqrt(v, out=scratch)
        scratch += hp["epsilon"] * root_r
        np.divide(m, scratch, out=scratch)
        scratch *= self.lr * (1.0 - beta1) * root_r / (1.0 - beta1**t)
        param -= scratch


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "adam": Adam,
}
"""Optimizer name -> class taking ``(learning_rate, beta1, beta2, epsilon, lr_decay)``."""


__all__ = ["OPTIMIZERS", "Adam", "GradientDescent", "Momentum", "Optimizer", "RMSprop"]
