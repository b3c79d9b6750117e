"""Forward pass, cost, dropout, initializers and activations of the NumPy network."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from core.activations import ACTIVATIONS, DERIVATIVES, _times_derivative
from core.config import TrainConfig
from core.initializers import INITIALIZERS, init_params
from core.network import (
    backward,
    cost,
    error_rate,
    forward,
    layer_sizes,
    n_params,
    predict,
    predict_proba,
)


def _params(sizes, seed=0, dtype="float64", initializer="he"):
    return init_params(sizes, initializer, np.random.default_rng(seed), dtype=dtype)


class _ReplayedMasks:
    """A mask source that replays the same uniforms, so dropout becomes a fixed function."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def random(self, shape, dtype):
        return self.rng.random(shape, dtype=dtype)

    def replay(self) -> _ReplayedMasks:
        return _ReplayedMasks(self.seed)


# --- initializers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, variance",
    [("xavier", 1 / 1000), ("glorot", 2 / (1000 + 500)), ("he", 2 / 1000)],
)
def test_initializer_variance_matches_its_formula(name, variance):
    W = INITIALIZERS[name](1000, 500, np.random.default_rng(0), 0.01, "float64")
    assert W.shape == (1000, 500)
    assert abs(W.var() / variance - 1) < 0.05
    assert abs(W.mean()) < 0.05 * math.sqrt(variance)


def test_random_initializer_has_std_equal_to_scale():
    W = INITIALIZERS["random"](1000, 1000, np.random.default_rng(0), 10.0, "float32")
    assert W.dtype == np.float32
    assert abs(W.std() / 10.0 - 1) < 0.05


def test_zeros_initializer_is_zeros_and_biases_are_zero():
    params = init_params([4, 3, 1], "zeros", np.random.default_rng(0))
    assert all(not p.any() for p in params.values())
    params = init_params([4, 3, 1], "he", np.random.default_rng(0))
    assert not params["b1"].any() and not params["b2"].any()
    assert params["W1"].any()


def test_init_params_shapes_dtype_and_seed():
    a = init_params([5, 4, 3], "glorot", np.random.default_rng(7), dtype="float32")
    b = init_params([5, 4, 3], "glorot", np.random.default_rng(7), dtype="float32")
    assert {k: v.shape for k, v in a.items()} == {
        "W1": (5, 4),
        "b1": (1, 4),
        "W2": (4, 3),
        "b2": (1, 3),
    }
    assert all(v.dtype == np.float32 for v in a.values())
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="initializer must be one of"):
        init_params([5, 4, 3], "lecun", np.random.default_rng(7))


# --- activations ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    Z = np.linspace(-3, 3, 61) + 0.013  # avoid the kink at exactly 0
    h = 1e-6
    numeric = (ACTIVATIONS[name](Z + h, np) - ACTIVATIONS[name](Z - h, np)) / (2 * h)
    analytic = DERIVATIVES[name](ACTIVATIONS[name](Z, np), np)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_sigmoid_is_stable_for_large_inputs():
    Z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = ACTIVATIONS["sigmoid"](Z, np)
    assert A[3] == 0.5 and A[-1] == 1.0 and A[0] == 0.0
    assert 0 < A[2] < 1e-17  # the tiny tail is kept, not rounded to 0


def test_activation_can_overwrite_its_input():
    Z = np.array([[-1.0, 2.0]])
    out = ACTIVATIONS["leaky_relu"](Z, np, out=Z)
    assert out is Z
    np.testing.assert_allclose(Z, [[-0.01, 2.0]])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_against_a_zero_array_is_the_same_as_against_zero(name):
    """The workspace hands ReLU a zero array instead of 0 (NumPy's fast loop): the same
    values (zeros of either sign compare equal), NaN, infinities and subnormals included."""
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.0e38, -3.0e38]
    rng = np.random.default_rng(5)
    Z = np.concatenate([special, rng.standard_normal(55)]).astype(np.float32).reshape(8, 8)
    zeros = np.zeros_like(Z)
    zeros.flags.writeable = False
    with np.errstate(all="ignore"):
        plain = ACTIVATIONS[name](Z.copy(), np)
        fast = ACTIVATIONS[name](Z.copy(), np, zero=zeros)
        np.testing.assert_array_equal(fast, plain)
        dA = rng.standard_normal(Z.shape).astype(np.float32)
        dA[0, :3] = [np.nan, np.inf, -np.inf]
        expected = _times_derivative(dA.copy(), plain, name, np)
        got = _times_derivative(dA.copy(), plain, name, np, zeros)
    np.testing.assert_array_equal(got, expected)
    assert not zeros.any()


# --- forward, dropout -----------------------------------------------------------------


def test_dropout_keeps_the_expected_activation():
    rng = np.random.default_rng(0)
    params = _params([6, 50, 1])
    X = rng.normal(size=(4, 6))
    _, clean = forward(params, X, "relu", [0.8], None)
    mask_rng = np.random.default_rng(1)
    total = np.zeros_like(clean["A"][1])
    n = 4000
    for _ in range(n):
        _, cache = forward(params, X, "relu", [0.8], mask_rng)
        total += cache["A"][1]
    mean = total / n
    undropped = clean["A"][1]
    assert abs(mean.sum() / undropped.sum() - 1) < 0.01
    # About a fifth of the units are dropped in any one pass.
    zeros = (cache["A"][1] == 0) & (undropped > 0)
    assert 0.1 < zeros.sum() / (undropped > 0).sum() < 0.3


def test_dropout_is_off_at_test_time():
    rng = np.random.default_rng(0)
    params = _params([6, 20, 20, 3])
    X = rng.normal(size=(10, 6))
    a, cache = forward(params, X, "tanh", [0.5, 0.5], None)
    b, _ = forward(params, X, "tanh", [0.5, 0.5], None)
    assert np.array_equal(a, b)
    assert cache["D"] == [None, None, None]
    c, _ = forward(params, X, "tanh", [1.0, 1.0], np.random.default_rng(3))
    assert np.array_equal(a, c)  # keep_prob 1.0 is no dropout even with a mask source


def test_dropout_draws_a_fresh_mask_each_call():
    params = _params([6, 30, 1])
    X = np.random.default_rng(0).normal(size=(10, 6))
    mask_rng = np.random.default_rng(5)
    _, first = forward(params, X, "relu", [0.5], mask_rng)
    _, second = forward(params, X, "relu", [0.5], mask_rng)
    assert not np.array_equal(first["D"][1], second["D"][1])
    assert set(np.unique(first["D"][1])) == {0.0, 2.0}  # already divided by keep_prob



@pytest.mark.parametrize("keep_prob", [0.5, 0.8, 0.86, 0.999])
def test_dropout_mask_keeps_each_unit_with_keep_prob_and_scales_by_its_inverse(keep_prob):
    from core.backend import MASK_LEVELS, dropout_mask

    rng = np.random.default_rng(11)
    D = dropout_mask(rng, (400, 1001), keep_prob, np.float32, np)  # not a multiple of 4
    assert D.shape == (400, 1001) and D.dtype == np.float32
    kept = D != 0
    p = np.round(keep_prob * MASK_LEVELS) / MASK_LEVELS
    assert abs(p - keep_prob) <= 0.5 / MASK_LEVELS
    assert set(np.unique(D[kept]).tolist()) == {np.float32(1 / p)}  # exactly 1 / p
    sigma = np.sqrt(p * (1 - p) / D.size)
    assert abs(kept.mean() - p) < 5 * sigma
    assert abs(D.mean(dtype=np.float64) - 1.0) < 5 * sigma / p  # the expectation is kept
    # Columns and rows are alike: the four decisions a 64-bit draw makes are not correlated.
    assert abs(kept[:, 0::4].mean() - kept[:, 1::4].mean()) < 10 * sigma
    corr = np.corrcoef(kept[:, :1000:4].ravel(), kept[:, 1:1000:4].ravel())[0, 1]
    assert abs(corr) < 0.015  # 5 sigma for 100,000 pairs


def test_dropout_mask_is_reproducible_from_the_seed_and_fresh_on_each_call():
    from core.backend import dropout_mask

    a, b = np.random.default_rng(3), np.random.default_rng(3)
    first = dropout_mask(a, (5, 7), 0.6, np.float64, np)
    assert np.array_equal(first, dropout_mask(b, (5, 7), 0.6, np.float64, np))
    assert not np.array_equal(first, dropout_mask(a, (5, 7), 0.6, np.float64, np))
    assert first.dtype == np.float64


def test_dropout_mask_at_the_ends_of_its_16_bit_steps():
    from core.backend import MASK_LEVELS, dropout_mask

    rng = np.random.default_rng(0)
    # Nearer 1 than 65535/65536: every unit kept, unscaled (not 65535/65536 and 1.0000153).
    assert np.array_equal(dropout_mask(rng, (64, 64), 1 - 1 / (3 * MASK_LEVELS), np.float32, np),
                          np.ones((64, 64), np.float32))
    low = dropout_mask(rng, (64, 1024), 1 / MASK_LEVELS, np.float32, np)  # the smallest step
    assert set(np.unique(low)) <= {0.0, float(MASK_LEVELS)}
    with pytest.raises(ValueError, match="keep_prob 1e-06"):
        dropout_mask(rng, (4, 4), 1e-6, np.float32, np)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(architecture=(4, 3), keep_prob=(0.9,)), "one per hidden layer"),
        (dict(architecture=(4,), keep_prob=(0.9, 0.8)), "one per hidden layer"),
        (dict(architecture=(4,), keep_prob=0.0), r"\(0, 1\]"),
        (dict(architecture=(4, 0)), ">= 1 unit"),
        (dict(architecture=(4,), batch_size=0), "batch_size 0"),
    ],
)
def test_a_config_the_core_cannot_train_is_refused_when_built(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_dropout_mask_from_another_generator_compares_float_uniforms():
    """CuPy's generators take the generic path: one float uniform per decision. A NumPy
    generator behind a plain object stands in for one here (CuPy cannot import)."""
    from core.backend import dropout_mask

    class Uniforms:
        def __init__(self, seed):
            self.rng = np.random.default_rng(seed)

        def random(self, shape, dtype):
            return self.rng.random(shape, dtype=dtype)

    D = dropout_mask(Uniforms(4), (300, 300), 0.75, np.float32, np)
    expected = (np.random.default_rng(4).random((300, 300), dtype=np.float32) < 0.75) / np.float32(0.75)
    np.testing.assert_array_equal(D, expected.astype(np.float32))

def test_backward_applies_the_forward_dropout_mask():
    rng = np.random.default_rng(0)
    params = _params([3, 8, 6, 3], seed=2)
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 3, 12)
    masks = _ReplayedMasks(9)
    _, cache = forward(params, X, "tanh", [0.6, 0.7], masks.replay())
    grads = backward(params, cache, y, 0.0, 0.0, "tanh", np)
    W = params["W1"]
    eps = 1e-6
    for index in [(0, 0), (1, 3), (2, 7)]:
        saved = W[index]
        W[index] = saved + eps
        plus = cost(forward(params, X, "tanh", [0.6, 0.7], masks.replay())[0], y, params, 0, 0, 3)
        W[index] = saved - eps
        minus = cost(forward(params, X, "tanh", [0.6, 0.7], masks.replay())[0], y, params, 0, 0, 3)
        W[index] = saved
        assert grads["dW1"][index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


# --- cost -----------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 4])
def test_cost_with_huge_logits_is_finite_and_silent(n_classes):
    n_out = 1 if n_classes == 2 else n_classes
    rng = np.random.default_rng(0)
    logits = (
        rng.choice([-1.0, 1.0], size=(50, n_out)) * 10.0 ** rng.uniform(3, 30, (50, n_out))
    ).astype(np.float32)
    y = rng.integers(0, n_classes, 50)
    params = {"W1": np.ones((2, n_out), np.float32), "b1": np.zeros((1, n_out), np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = cost(logits, y, params, 0.1, 0.1, n_classes, np)
    assert math.isfinite(J) and J > 1e3


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_cost_of_zero_logits_is_log_k(n_classes):
    n_out = 1 if n_classes == 2 else n_classes
    logits = np.zeros((8, n_out))
    y = np.arange(8) % n_classes
    assert cost(logits, y, {}, 0.0, 0.0, n_classes) == pytest.approx(math.log(n_classes), abs=1e-12)


def test_cost_adds_l2_and_l1_on_weights_only():
    params = {
        "W1": np.array([[1.0, -2.0]]),
        "b1": np.array([[100.0, 100.0]]),
        "W2": np.array([[3.0], [0.0]]),
        "b2": np.array([[5.0]]),
    }
    logits, y = np.zeros((4, 1)), np.array([0, 1, 0, 1])
    base = cost(logits, y, params, 0.0, 0.0, 2)
    assert cost(logits, y, params, 0.8, 0.0, 2) - base == pytest.approx(0.8 / 8 * (1 + 4 + 9))
    assert cost(logits, y, params, 0.0, 0.4, 2) - base == pytest.approx(0.4 / 4 * (1 + 2 + 3))


# --- predictions and bookkeeping -------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_rows_are_distributions_matching_predict(n_classes):
    rng = np.random.default_rng(1)
    params = _params(layer_sizes(4, [7], n_classes))
    X, y = rng.normal(size=(30, 4)), rng.integers(0, n_classes, 30)
    P = predict_proba(params, X, "relu")
    assert P.shape == (30, n_classes)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    labels = predict(params, X, "relu")
    assert np.array_equal(labels, P.argmax(axis=1))
    assert error_rate(params, X, y, "relu") == pytest.approx(np.mean(labels != y))


def test_layer_sizes_and_n_params():
    assert layer_sizes(2, [10, 5], 2) == [2, 10, 5, 1]
    assert layer_sizes(2, (10,), 4) == [2, 10, 4]
    assert n_params(_params([2, 10, 5, 1])) == 2 * 10 + 10 + 10 * 5 + 5 + 5 + 1
    with pytest.raises(ValueError, match="at least 2 classes"):
        layer_sizes(2, [3], 1)


def test_float32_stays_float32_through_forward_and_backward():
    rng = np.random.default_rng(0)
    params = _params([4, 6, 3], dtype="float32")
    X, y = rng.normal(size=(9, 4)).astype(np.float32), rng.integers(0, 3, 9)
    logits, cache = forward(params, X, "relu", [0.5], np.random.default_rng(1))
    grads = backward(params, cache, y, 0.1, 0.1, "relu", np)
    assert logits.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
