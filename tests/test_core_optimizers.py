"""Each optimizer against two steps worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.optimizers import OPTIMIZERS

G1 = np.array([0.5, 1.0])
G2 = np.array([-0.2, 0.4])


def _two_steps(name: str, **hyper) -> tuple[np.ndarray, np.ndarray]:
    optimizer = OPTIMIZERS[name](**hyper)
    p = np.array([1.0, -2.0])
    optimizer.update(p, G1, "W1")
    first = p.copy()
    optimizer.update(p, G2, "W1")
    return first, p


def test_gd_steps():
    first, second = _two_steps("gd", learning_rate=0.1)
    np.testing.assert_allclose(first, [0.95, -2.1])
    np.testing.assert_allclose(second, [0.97, -2.14])


def test_momentum_steps():
    # v1 = 0.1 g1 = [0.05, 0.1];  v2 = 0.9 v1 + 0.1 g2 = [0.025, 0.13]
    first, second = _two_steps("momentum", learning_rate=0.1, beta1=0.9)
    np.testing.assert_allclose(first, [0.995, -2.01])
    np.testing.assert_allclose(second, [0.9925, -2.023])


def test_rmsprop_steps():
    # s1 = 0.1 g1^2 = [0.025, 0.1], so g1 / sqrt(s1) = sqrt(10) for both entries;
    # s2 = 0.9 s1 + 0.1 g2^2 = [0.0265, 0.106].
    first, second = _two_steps("rmsprop", learning_rate=0.01, beta2=0.9, epsilon=1e-8)
    step1 = 0.01 * math.sqrt(10)
    np.testing.assert_allclose(first, [1 - step1, -2 - step1], rtol=1e-7)
    step2 = [0.01 * -0.2 / math.sqrt(0.0265), 0.01 * 0.4 / math.sqrt(0.106)]
    np.testing.assert_allclose(second, [1 - step1 - step2[0], -2 - step1 - step2[1]], rtol=1e-7)


def test_adam_steps_with_bias_correction():
    first, second = _two_steps("adam", learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8)
    # t = 1: m_hat = g1 and v_hat = g1^2, so the step is lr * sign(g1).
    np.testing.assert_allclose(first, [0.99, -2.01], rtol=1e-7)
    # t = 2: m = 0.09 g1 + 0.1 g2 = [0.025, 0.13]; v = 0.000999 g1^2 + 0.001 g2^2.
    m_hat = np.array([0.025, 0.13]) / (1 - 0.9**2)
    v_hat = np.array([0.00024975 + 0.00004, 0.000999 + 0.00016]) / (1 - 0.999**2)
    np.testing.assert_allclose(second, first - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-7)
    # Without the correction the second step would be about 5x smaller: make sure it is not.
    assert first[0] - second[0] == pytest.approx(0.003456, rel=1e-3)


def test_learning_rate_decay():
    optimizer = OPTIMIZERS["gd"](learning_rate=0.1, lr_decay=0.5)
    p = np.array([1.0, -2.0])
    optimizer.set_epoch(0)
    optimizer.update(p, G1, "W1")
    assert optimizer.lr == pytest.approx(0.1)
    optimizer.set_epoch(2)  # 0.1 / (1 + 0.5 * 2)
    optimizer.update(p, G2, "W1")
    assert optimizer.lr == pytest.approx(0.05)
    np.testing.assert_allclose(p, [1 - 0.05 + 0.01, -2 - 0.1 - 0.02])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_is_in_place_and_state_is_per_parameter(name):
    optimizer = OPTIMIZERS[name](learning_rate=0.1)
    storage = np.zeros(4)
    params = {
        "W1": storage[:2],
        "b1": storage[2:],
    }  # views: only an in-place update reaches storage
    optimizer.step(params, {"dW1": np.array([1.0, 1.0]), "db1": np.array([-1.0, -1.0])})
    assert (storage[:2] < 0).all() and (storage[2:] > 0).all()
    assert params["W1"].base is storage
    if name != "gd":
        assert set(optimizer.cache) == {"W1", "b1"}
    assert optimizer.hyperparameters["learning_rate"] == 0.1


def test_adam_counts_steps_per_parameter():
    optimizer = OPTIMIZERS["adam"](learning_rate=0.01)
    a, b = np.array([1.0]), np.array([1.0])
    optimizer.update(a, np.array([0.5]), "a")
    optimizer.update(a, np.array([0.5]), "a")
    optimizer.update(b, np.array([0.5]), "b")
    assert optimizer.cache["a"]["t"] == 2 and optimizer.cache["b"]["t"] == 1
    assert b[0] == pytest.approx(0.99)  # b's first step is bias-corrected as a first step
