"""Hidden-layer activations and their derivatives, keyed by the names a user writes in YAML.

``ACTIVATIONS[name](Z, xp, out=None, zero=0)`` returns ``A = g(Z)``; pass ``out=Z`` to
overwrite a pre-activation the caller no longer needs and save an allocation. ``zero`` is
the scalar 0 or a read-only zero array shaped like ``Z`` (the training workspace keeps
one): ReLU compares against it, the others ignore it. NumPy's ``maximum`` runs its vector
loop when both operands are arrays and a much slower loop against a scalar: a 64 x 256
float32 ReLU took 2.8 us against a zero array and 8.9 us against 0 on an AVX2 machine.

``DERIVATIVES[name](A, xp)`` returns ``g'(Z)`` computed from the *output* ``A = g(Z)``.
Every activation here allows it (ReLU and leaky ReLU have ``A > 0`` exactly where
``Z > 0``; tanh' = 1 - A^2; sigmoid' = A(1 - A)), so the forward pass never needs to keep
``Z`` around.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LEAKY_SLOPE = 0.01
"""Slope of leaky ReLU for negative inputs."""


def relu(Z: Any, xp: Any, out: Any = None, zero: Any = 0) -> Any:
    """``max(Z, 0)``; ``zero`` may be a zero array shaped like ``Z`` (faster, same values)."""
    return xp.maximum(Z, zero, out=out)


def leaky_relu(Z: Any, xp: Any, out: Any = None, zero: Any = 0) -> Any:
    """``Z`` for positive inputs, ``0.01 * Z`` otherwise."""
    # For a slope below 1, max(Z, slope * Z) is exactly leaky ReLU, with no boolean mask.
    return xp.maximum(Z, LEAKY_SLOPE * Z, out=out)


def tanh(Z: Any, xp: Any, out: Any = None, zero: Any = 0) -> Any:
    """Hyperbolic tangent."""
    return xp.tanh(Z, out=out)


def sigmoid(Z: Any, xp: Any, out: Any = None, zero: Any = 0) -> Any:
    """Logistic function, stable for any finite ``Z``.

    ``exp(-|Z|)`` never overflows, and each branch divides by a number in [1, 2], so large
    ``|Z|`` neither warns nor loses the tiny probabilities near 0.
    """
    E = xp.exp(-xp.abs(Z))
    R = 1.0 / (1.0 + E)
    A = xp.where(Z >= 0, R, E * R)
    if out is None:
        return A
    out[...] = A
    return out


def relu_derivative(A: Any, xp: Any) -> Any:
    """1 where the unit is active, 0 elsewhere."""
    return (A > 0).astype(A.dtype)


def leaky_relu_derivative(A: Any, xp: Any) -> Any:
    """1 where the unit is active, the leak slope elsewhere."""
    D = (A > 0).astype(A.dtype)
    D *= 1.0 - LEAKY_SLOPE
    D += LEAKY_SLOPE
    return D


def tanh_derivative(A: Any, xp: Any) -> Any:
    """``1 - A^2``."""
    return 1.0 - A * A


def sigmoid_derivative(A: Any, xp: Any) -> Any:
    """``A (1 - A)``."""
    return A * (1.0 - A)


def _times_derivative(dA: Any, A: Any, name: str, xp: Any, zero: Any = 0) -> Any:
    """``dA *= g'(A)`` in place, for the activation ``name``; returns ``dA``.

    ReLU's derivative is its 0/1 mask, applied as a boolean without building a float array
    (``x * True`` is ``x * 1.0`` exactly, and a NaN or inf in ``dA`` still turns into NaN);
    ``zero`` is as for the activations (the comparison, too, is faster against an array).
    """
    if name == "relu":
        return xp.multiply(dA, xp.greater(A, zero), out=dA)
    dA *= DERIVATIVES[name](A, xp)
    return dA


ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}
"""Activation name -> ``g(Z, xp, out=None, zero=0)``."""

DERIVATIVES: dict[str, Callable[[Any, Any], Any]] = {
    "relu": relu_derivative,
    "leaky_relu": leaky_relu_derivative,
    "tanh": tanh_derivative,
    "sigmoid": sigmoid_derivative,
}
"""Activation name -> ``g'(A, xp)``, the derivative written in terms of ``A = g(Z)``."""


__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "LEAKY_SLOPE",
    "leaky_relu",
    "leaky_relu_derivative",
    "relu",
    "relu_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "tanh",
    "tanh_derivative",
]
