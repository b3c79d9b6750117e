"""The backward pass agrees with central differences; a broken one is caught."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import TrainConfig, replace
from core.gradcheck import GradCheckResult, gradient_check, verdict_for
from core.network import backward as network_backward


def _data(n_classes: int, m: int = 20, n: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)), np.arange(m) % n_classes


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_backward_matches_finite_differences_with_l2(activation, n_classes):
    X, y = _data(n_classes)
    config = TrainConfig(
        architecture=(5, 3), activation=activation, initializer="xavier", lambd=0.7
    )
    result = gradient_check(config, X, y, n_classes, np.random.default_rng(1))
    assert result.difference < 2e-7
    assert result.verdict == "fine"


@pytest.mark.parametrize("n_classes", [2, 4])
def test_backward_matches_finite_differences_with_l1(n_classes):
    # L1 has a kink at W = 0. With these seeds the smallest |W| is about 0.06, far
    # beyond eps = 1e-7, so no central difference straddles the kink.
    X, y = _data(n_classes, seed=3)
    config = TrainConfig(
        architecture=(6, 4), activation="tanh", initializer="he", lambd=0.2, l1=0.5
    )
    result = gradient_check(config, X, y, n_classes, np.random.default_rng(2))
    assert result.difference < 2e-7


def test_backward_without_the_l2_term_is_a_bug():
    X, y = _data(2)
    config = TrainConfig(architecture=(5,), activation="relu", initializer="he", lambd=5.0)

    def forgets_l2(params, cache, y, lambd, l1, activation, xp):
        return network_backward(params, cache, y, 0.0, l1, activation, xp)

    result = gradient_check(config, X, y, 2, np.random.default_rng(1), backward=forgets_l2)
    assert result.difference > 1e-3
    assert result.verdict == "bug"


def test_a_scaled_gradient_is_caught_and_located():
    X, y = _data(3)
    config = TrainConfig(architecture=(5, 4), activation="tanh", initializer="xavier")

    def doubles_dw2(params, cache, y, lambd, l1, activation, xp):
        grads = network_backward(params, cache, y, lambd, l1, activation, xp)
        grads["dW2"] = grads["dW2"] * 2.0
        return grads

    result = gradient_check(config, X, y, 3, np.random.default_rng(1), backward=doubles_dw2)
    assert result.difference > 1e-3
    assert result.worst_parameter == "W2"


def test_zero_weights_agree_but_are_inconclusive_even_for_a_wrong_backward_pass():
    X, y = _data(2)
    config = TrainConfig(architecture=(3,), activation="tanh", initializer="zeros")
    result = gradient_check(config, X, y, 2, np.random.default_rng(0))
    assert isinstance(result, GradCheckResult)
    assert result.difference < 2e-7 and result.verdict == "inconclusive"

    def doubles_hidden(params, cache, y, lambd, l1, activation, xp):
        grads = network_backward(params, cache, y, lambd, l1, activation, xp)
        grads["dW1"] = grads["dW1"] * 2.0  # 0 stays 0: the check cannot see it
        return grads

    broken = gradient_check(config, X, y, 2, np.random.default_rng(0), backward=doubles_hidden)
    assert broken.verdict == "inconclusive"
    xavier = gradient_check(replace(config, initializer="xavier"), X, y, 2, np.random.default_rng(0),
                            backward=doubles_hidden)
    assert xavier.verdict == "bug"


@pytest.mark.parametrize(
    "difference, verdict",
    [
        (3e-9, "fine"),
        (9.9e-8, "fine"),
        (1e-7, "look closer"),
        (1e-5, "look closer"),
        (1e-3, "bug"),
        (0.4, "bug"),
        (float("nan"), "bug"),
    ],
)
def test_verdict_thresholds(difference, verdict):
    assert verdict_for(difference) == verdict
