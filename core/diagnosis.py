"""Bias / variance diagnosis from training and dev error, with the course's recipes."""

from __future__ import annotations

import math
from dataclasses import dataclass

RECIPES: dict[str, str] = {
    "high bias": "bigger network, train longer or a better optimizer, another architecture",
    "high variance": "more data, regularization (L2, dropout), another architecture",
    "high bias and high variance": (
        "bigger network, train longer or a better optimizer, another architecture; then "
        "more data, regularization (L2, dropout), another architecture"
    ),
    "fine": "ship it: bias and variance are both within tolerance",
    "unknown": "no diagnosis: an error is not a finite number (see the trial's status)",
}
"""Verdict -> what to try next."""


_ROUNDING = 1e-12
"""Error fractions are counts over a set's size; their differences carry float rounding."""


@dataclass(frozen=True)
class Diagnosis:
    """Where the error comes from.

    Attributes:
        avoidable_bias: Training error above the baseline (e.g. human-level) error.
        variance: Dev error above training error.
        verdict: ``"high bias"``, ``"high variance"``, ``"high bias and high variance"``,
            ``"fine"``, or ``"unknown"`` where an error is NaN or infinite.
        recipe: What to try next, from ``RECIPES``.
    """

    avoidable_bias: float
    variance: float
    verdict: str
    recipe: str


def diagnose(
    train_error: float, dev_error: float, baseline_error: float = 0.0, tolerance: float = 0.02
) -> Diagnosis:
    """Splits the dev error into avoidable bias and variance and names the problem.

    Args:
        train_error: Training-set error, a fraction.
        dev_error: Dev-set error, a fraction.
        baseline_error: The best achievable error (human level, Bayes estimate).
        tolerance: A gap above this is "high"; one equal to it (up to rounding, as
            0.10 - 0.08 is 0.020000000000000004) is not.

    Returns:
        The ``Diagnosis``.
    """
    avoidable_bias = train_error - baseline_error
    variance = dev_error - train_error
    limit = tolerance + _ROUNDING
    high_bias, high_variance = avoidable_bias > limit, variance > limit
    if not all(map(math.isfinite, (train_error, dev_error, baseline_error))):
        verdict = "unknown"
    elif high_bias and high_variance:
        verdict = "high bias and high variance"
    elif high_bias:
        verdict = "high bias"
    elif high_variance:
        verdict = "high variance"
    else:
        verdict = "fine"
    return Diagnosis(
        avoidable_bias=avoidable_bias, variance=variance, verdict=verdict, recipe=RECIPES[verdict]
    )


__all__ = ["RECIPES", "Diagnosis", "diagnose"]
