"""Weight initializers, keyed by the names a user writes in YAML.

Weights are drawn with NumPy's generator on the CPU and only then moved to the array
module, so a CPU and a GPU trial with the same seed start from identical weights.
Draws are in float64 and then cast, so float32 and float64 trials start alike too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def zeros(
    n_in: int, n_out: int, rng: np.random.Generator, scale: float = 0.01, dtype: Any = "float32"
) -> np.ndarray:
    """All-zero weights; they never break the symmetry between units."""
    return np.zeros((n_in, n_out), dtype=dtype)


def random(
    n_in: int, n_out: int, rng: np.random.Generator, scale: float = 0.01, dtype: Any = "float32"
) -> np.ndarray:
    """``scale * N(0, 1)`` weights."""
    return (scale * rng.standard_normal((n_in, n_out))).astype(dtype)


def _normal(
    rng: np.random.Generator, n_in: int, n_out: int, variance: float, dtype: Any
) -> np.ndarray:
    return (np.sqrt(variance) * rng.standard_normal((n_in, n_out))).astype(dtype)


def xavier(
    n_in: int, n_out: int, rng: np.random.Generator, scale: float = 0.01, dtype: Any = "float32"
) -> np.ndarray:
    """Normal weights with variance ``1 / n_in`` (Xavier, as taught for tanh)."""
    return _normal(rng, n_in, n_out, 1.0 / n_in, dtype)


def glorot(
    n_in: int, n_out: int, rng: np.random.Generator, scale: float = 0.01, dtype: Any = "float32"
) -> np.ndarray:
    """Normal weights with variance ``2 / (n_in + n_out)`` (Glorot)."""
    return _normal(rng, n_in, n_out, 2.0 / (n_in + n_out), dtype)


def he(
    n_in: int, n_out: int, rng: np.random.Generator, scale: float = 0.01, dtype: Any = "float32"
) -> np.ndarray:
    """Normal weights with variance ``2 / n_in`` (He, for ReLU)."""
    return _normal(rng, n_in, n_out, 2.0 / n_in, dtype)


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "zeros": zeros,
    "random": random,
    "xavier": xavier,
    "glorot": glorot,
    "he": he,
}
"""Initializer name -> ``f(n_in, n_out, rng, scale, dtype)`` returning an ``n_in x n_out`` array."""


def init_params(
    layer_sizes: Sequence[int],
    initializer: str,
    rng: np.random.Generator,
    scale: float = 0.01,
    dtype: Any = "float32",
    xp: Any = np,
) -> dict[str, Any]:
    """Initial weights and biases of a fully-connected network.

    Args:
        layer_sizes: ``[n_features, hidden..., n_out]``.
        initializer: A key of ``INITIALIZERS``.
        rng: Generator every weight is drawn from, layer by layer.
        scale: Multiplier for the ``random`` initializer.
        dtype: Floating-point type of the arrays.
        xp: Array module to place the arrays in.

    Returns:
        ``{"W1": (n_0, n_1), "b1": (1, n_1), ..., "WL", "bL"}``; biases are zero.

    Raises:
        ValueError: ``initializer`` is not a known name.
    """
    if initializer not in INITIALIZERS:
        raise ValueError(f"initializer must be one of {sorted(INITIALIZERS)}, got {initializer!r}")
    draw = INITIALIZERS[initializer]
    params: dict[str, Any] = {}
    for l in range(1, len(layer_sizes)):
        n_in, n_out = int(layer_sizes[l - 1]), int(layer_sizes[l])
        params[f"W{l}"] = xp.asarray(draw(n_in, n_out, rng, scale, dtype))
        params[f"b{l}"] = xp.zeros((1, n_out), dtype=dtype)
    return params


__all__ = ["INITIALIZERS", "glorot", "he", "init_params", "random", "xavier", "zeros"]
