"""Optimizers as small state machines, keyed by the names a user writes in YAML.

Each keeps a per-parameter cache and updates parameters *in place* through
``update(param, grad, name)``, which works unchanged on NumPy and CuPy arrays. The
learning rate at epoch ``t`` is ``learning_rate / (1 + lr_decay * t)``; call
``set_epoch(t)`` at the start of each epoch.
"""

from __future__ import annotations

import math
from typing import Any


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

    def update(self, param: Any, grad: Any, name: str) -> None:
        """Moves ``param`` (in place) one step against ``grad``; ``name`` keys its state."""
        raise NotImplementedError

    def step(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """Updates every parameter ``p`` from the gradient ``grads["d" + p]``."""
        for name, param in params.items():
            self.update(param, grads["d" + name], name)

    def _state(self, name: str, param: Any, *slots: str) -> dict[str, Any]:
        if name not in self.cache:
            self.cache[name] = {"t": 0, **{slot: _zeros_like(param) for slot in slots}}
        return self.cache[name]


class GradientDescent(Optimizer):
    """Plain (minibatch) gradient descent: ``p -= lr * g``."""

    def update(self, param: Any, grad: Any, name: str) -> None:
        """See ``Optimizer.update``."""
        param -= self.lr * grad


class Momentum(Optimizer):
    """Gradient descent with momentum: ``v = b1 v + (1 - b1) g``, ``p -= lr * v``."""

    def update(self, param: Any, grad: Any, name: str) -> None:
        """See ``Optimizer.update``."""
        beta1 = self.hyperparameters["beta1"]
        v = self._state(name, param, "v")["v"]
        v *= beta1
        v += (1.0 - beta1) * grad
        param -= self.lr * v


class RMSprop(Optimizer):
    """RMSprop: ``s = b2 s + (1 - b2) g^2``, ``p -= lr * g / (sqrt(s) + eps)``."""

    def update(self, param: Any, grad: Any, name: str) -> None:
        """See ``Optimizer.update``."""
        hp = self.hyperparameters
        s = self._state(name, param, "s")["s"]
        s *= hp["beta2"]
        s += (1.0 - hp["beta2"]) * (grad * grad)
        denominator = s**0.5
        denominator += hp["epsilon"]
        param -= (self.lr * grad) / denominator


class Adam(Optimizer):
    """Adam with bias correction; each parameter's step counter t starts at 1.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    """

    def update(self, param: Any, grad: Any, name: str) -> None:
        """See ``Optimizer.update``."""
        hp = self.hyperparameters
        state = self._state(name, param, "m", "v")
        state["t"] += 1
        t = state["t"]
        m, v = state["m"], state["v"]
        m *= hp["beta1"]
        m += (1.0 - hp["beta1"]) * grad
        v *= hp["beta2"]
        v += (1.0 - hp["beta2"]) * (grad * grad)
        # The two corrections folded into scalars: the same step with two fewer array passes.
        correction1 = 1.0 - hp["beta1"] ** t
        root_correction2 = math.sqrt(1.0 - hp["beta2"] ** t)
        denominator = v**0.5
        denominator += hp["epsilon"] * root_correction2
        step = m / denominator
        step *= self.lr * root_correction2 / correction1
        param -= step


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "adam": Adam,
}
"""Optimizer name -> class taking ``(learning_rate, beta1, beta2, epsilon, lr_decay)``."""


__all__ = ["OPTIMIZERS", "Adam", "GradientDescent", "Momentum", "Optimizer", "RMSprop"]
