"""``sweeper gradcheck``: the gradient check over every structural variant of a grid."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .sweep import Plan

# The settings that change the backward pass; the others (optimizer, epochs...) do not.
_STRUCTURAL = ("architecture", "activation", "lambda", "l1")


def gradient_checks(the_plan: "Plan", examples: int = 16) -> Iterator[tuple[str, str]]:
    """Yields a report line and a verdict per distinct structural combination.

    The check runs in float64 with dropout off on ``examples`` training rows, from Xavier
    weights whatever the grid's initializer: the backward pass does not depend on it, and
    zeros would make every hidden gradient 0 on both sides (a wrong one passes), while
    ``random``'s tiny weights put ReLU's inputs within ``eps`` of its kink.
    """
    from core.config import replace
    from core.gradcheck import gradient_check

    data = next(iter(the_plan.data.values()))
    X = np.asarray(data.X_train[:examples], dtype=np.float64)
    y = np.asarray(data.y_train[:examples])
    seen = set()
    for trial in the_plan.trials:
        params = trial.config.to_params()
        key = tuple(str(params[k]) for k in _STRUCTURAL)
        if key in seen:
            continue
        seen.add(key)
        config = replace(trial.config, keep_prob=1.0, dtype="float64", initializer="xavier")
        result = gradient_check(config, X, y, data.n_classes, np.random.default_rng(trial.seed))
        label = " ".join(f"{k}={params[k]}" for k in _STRUCTURAL)
        yield (
            f"{result.difference:.2e}  {result.verdict:<11}  {label}  (worst: {result.worst_parameter})",
            result.verdict,
        )
