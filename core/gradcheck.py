"""Gradient checking: the backward pass against two-sided finite differences of the cost.

Runs in float64 with dropout off (a fresh mask per evaluation would make the cost a
different function each time) and with the config's L2 and L1 penalties included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import TrainConfig
from .initializers import init_params
from .network import backward as network_backward
from .network import cost, forward, layer_sizes

FINE = 1e-7
"""Below this relative difference the backward pass is right."""
LOOK_CLOSER = 1e-3
"""Below this (and above ``FINE``) it is probably right, but check: the course's ~1e-5 zone."""


@dataclass(frozen=True)
class GradCheckResult:
    """Outcome of a gradient check.

    Attributes:
        difference: ``||g - g_approx|| / (||g|| + ||g_approx||)`` over every parameter.
        verdict: ``"fine"``, ``"look closer"`` or ``"bug"`` (see ``verdict_for``), or
            ``"inconclusive"`` where the weights of a layer before the output are all zero.
        worst_parameter: The parameter (``"W2"``, ``"b1"`` ...) with the largest
            ``||g - g_approx||``, where a bug most likely sits.
    """

    difference: float
    verdict: str
    worst_parameter: str


INCONCLUSIVE = "inconclusive"
"""The verdict where a hidden layer's weights are all zero: every hidden unit is the same
and the hidden gradients are 0 on both sides, so a wrong backward pass would agree."""


def verdict_for(difference: float) -> str:
    """``"fine"`` below 1e-7, ``"look closer"`` below 1e-3, else (or NaN) ``"bug"``."""
    if difference < FINE:
        return "fine"
    if difference < LOOK_CLOSER:
        return "look closer"
    return "bug"


def _numerical_gradient(
    params: dict[str, np.ndarray], J: Callable[[], float], name: str, eps: float
) -> np.ndarray:
    theta = params[name]
    approx = np.empty_like(theta)
    for index in np.ndindex(theta.shape):
        saved = theta[index]
        theta[index] = saved + eps
        plus = J()
        theta[index] = saved - eps
        minus = J()
        theta[index] = saved
        approx[index] = (plus - minus) / (2.0 * eps)
    return approx


def gradient_check(
    config: TrainConfig,
    X: Any,
    y: Any,
    n_classes: int,
    rng: np.random.Generator,
    eps: float = 1e-7,
    backward: Callable[..., dict[str, Any]] | None = None,
) -> GradCheckResult:
    """Compares the backward pass with central differences on freshly initialized weights.

    Args:
        config: Supplies architecture, activation, initializer, init_scale, lambd and l1;
            dropout and dtype are ignored (always off, always float64).
        X: Inputs, ``m x n``; keep them small, every parameter costs two forward passes.
        y: Class indices, shape ``(m,)``.
        n_classes: Number of classes.
        rng: Generator for the initial weights.
        eps: Finite-difference step.
        backward: A stand-in for ``network.backward`` with the same signature (tests pass
            a deliberately broken one); defaults to ``network.backward``.

    Returns:
        The ``GradCheckResult``. Near kinks (ReLU at 0, L1 at W = 0) central differences
        are wrong by design, so a kink within ``eps`` of some point can raise the difference.
    """
    backward = network_backward if backward is None else backward
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    sizes = layer_sizes(X.shape[1], config.architecture, n_classes)
    params = init_params(sizes, config.initializer, rng, config.init_scale, "float64")

    def J() -> float:
        logits, _ = forward(params, X, config.activation)
        return cost(logits, y, params, config.lambd, config.l1, n_classes)

    _, cache = forward(params, X, config.activation)
    grads = backward(params, cache, y, config.lambd, config.l1, config.activation, np)
    numerator = denominator_g = denominator_a = 0.0
    worst, worst_error = next(iter(params)), -1.0
    for name in params:
        g = np.asarray(grads["d" + name], dtype=np.float64)
        approx = _numerical_gradient(params, J, name, eps)
        error = float(np.sum((g - approx) ** 2))
        rank = math.inf if math.isnan(error) else error  # a NaN gradient is the worst of all
        if rank > worst_error:
            worst, worst_error = name, rank
        numerator += error
        denominator_g += float(np.sum(g**2))
        denominator_a += float(np.sum(approx**2))
    denominator = math.sqrt(denominator_g) + math.sqrt(denominator_a)
    # Both gradients exactly zero (e.g. a zeros initialization) agree perfectly.
    difference = (
        math.sqrt(numerator) / denominator
        if denominator > 0
        else (0.0 if numerator == 0 else math.inf)
    )
    n_layers = len(params) // 2
    blind = any(not params[f"W{l}"].any() for l in range(1, n_layers))
    verdict = verdict_for(difference)
    return GradCheckResult(
        difference=difference,
        verdict=INCONCLUSIVE if blind and verdict == "fine" else verdict,
        worst_parameter=worst,
    )


__all__ = ["FINE", "INCONCLUSIVE", "LOOK_CLOSER", "GradCheckResult", "gradient_check", "verdict_for"]
