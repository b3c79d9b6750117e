"""Caruana ensemble selection and the top-k average, checked against hand-worked picks."""

from __future__ import annotations

import numpy as np
import pytest

from sweeper.ensemble import average, caruana, error_rate, log_loss, top_k


def _binary(p1_rows: list[list[float]]) -> np.ndarray:
    """(n_models, m, 2) probabilities from each model's P(class 1) per example."""
    p1 = np.array(p1_rows, dtype=np.float64)
    return np.stack([1.0 - p1, p1], axis=2)


# Three models, four examples, y = [1, 1, 0, 0]; each model alone gets one example wrong.
#   A (0): P1 = .90 .40 .20 .10 -> predicts 1 0 0 0, wrong on example 1   error 1/4
#   B (1): P1 = .45 .90 .30 .20 -> predicts 0 1 0 0, wrong on example 0   error 1/4
#   C (2): P1 = .60 .55 .70 .30 -> predicts 1 1 1 0, wrong on example 2   error 1/4
PAIR = _binary([[0.90, 0.40, 0.20, 0.10],
                [0.45, 0.90, 0.30, 0.20],
                [0.60, 0.55, 0.70, 0.30]])
PAIR_Y = np.array([1, 1, 0, 0])

# Two models, three examples, y = [1, 1, 1].
#   A (0): P1 = .8 .8 .4 -> error 1/3;   B (1): P1 = .1 .1 .9 -> error 2/3
TWICE = _binary([[0.8, 0.8, 0.4],
                 [0.1, 0.1, 0.9]])
TWICE_Y = np.array([1, 1, 1])


def test_a_pair_beats_the_best_single_model_and_a_tie_goes_to_the_lower_log_loss():
    # pick 1: A (init).                                    error 1/4
    # pick 2: A+A = A -> 1/4;  (A+B)/2 = .675 .65 .25 .15 -> 0;  (A+C)/2 = .75 .475 .45 .2 -> 1/4
    #         -> B.                                        error 0
    # pick 3: every candidate keeps error 0, so the log-loss decides:
    #         +A: (.75 .567 .233 .133) -> 0.316;  +B: (.6 .733 .267 .167) -> 0.328;
    #         +C: (.65 .617 .4 .2) -> 0.412   -> A again.  error 0
    # kept prefix: error 0 at picks 2 and 3; their log-losses decide:
    #         2 picks (.675 .65 .25 .15) -> 0.319;  3 picks (A, B, A) -> 0.316   -> 3 picks.
    sel = caruana(PAIR, PAIR_Y, size=3)
    assert sel.curve == [0.25, 0.0, 0.0]
    assert sel.best_size == 3
    assert sel.counts.tolist() == [2, 1, 0]
    np.testing.assert_allclose(sel.weights, [2 / 3, 1 / 3, 0.0])
    assert sel.dev_error == 0.0
    assert log_loss(average(PAIR, sel.weights), PAIR_Y) < log_loss(average(PAIR, [0.5, 0.5, 0.0]), PAIR_Y)


def test_equal_error_and_log_loss_keep_the_shorter_prefix():
    # Two identical models: every prefix has the same error and log-loss -> 1 pick.
    same = _binary([[0.9, 0.2], [0.9, 0.2]])
    sel = caruana(same, np.array([1, 0]), size=4)
    assert sel.best_size == 1 and sel.counts.tolist() == [1, 0]


def test_replacement_picks_the_same_model_twice():
    # pick 1: A.                                           error 1/3
    # pick 2: A+A = A -> 1/3;  (A+B)/2 = .45 .45 .65 -> 2/3   -> A again.   error 1/3
    # pick 3: 2A+A = A -> 1/3; (2A+B)/3 = .567 .567 .567 -> 0 -> B.         error 0
    sel = caruana(TWICE, TWICE_Y, size=3)
    assert sel.curve == pytest.approx([1 / 3, 1 / 3, 0.0])
    assert sel.best_size == 3
    assert sel.counts.tolist() == [2, 1]
    np.testing.assert_allclose(sel.weights, [2 / 3, 1 / 3])
    assert error_rate(average(TWICE, sel.weights), TWICE_Y) == sel.dev_error == 0.0


def test_init_starts_from_the_best_models_and_the_kept_prefix_is_never_shorter():
    # init=2 forces A and B: (A+B)/2 -> 2/3. Then (A+B+A)/3 = .567 .567 .567 -> 0, B -> 2/3.
    sel = caruana(TWICE, TWICE_Y, size=3, init=2)
    assert sel.curve == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert sel.counts.tolist() == [2, 1]
    # With only the two forced picks, the worse pair is kept: one model alone is no longer allowed.
    short = caruana(TWICE, TWICE_Y, size=2, init=2)
    assert short.curve == pytest.approx([1 / 3, 2 / 3])
    assert short.best_size == 2
    assert short.counts.tolist() == [1, 1]
    assert short.dev_error == pytest.approx(2 / 3)


def test_the_curve_covers_every_pick_even_past_the_kept_prefix():
    sel = caruana(PAIR, PAIR_Y, size=6)
    assert len(sel.curve) == 6
    assert sel.curve[sel.best_size - 1] == min(sel.curve) == 0.0
    assert sel.counts.sum() == sel.best_size >= 2


def test_weights_sum_to_one_and_reproduce_the_dev_error():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 50, 3))
    probas = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    y = rng.integers(0, 3, size=50)
    for init in (1, 3):
        sel = caruana(probas, y, size=20, init=init)
        assert sel.weights.sum() == pytest.approx(1.0)
        assert sel.counts.sum() == sel.best_size
        assert sel.dev_error == min(sel.curve[init - 1:])
        assert error_rate(average(probas, sel.weights), y) == pytest.approx(sel.dev_error)


def test_top_k_averages_the_first_k_models():
    sel = top_k(PAIR, PAIR_Y, k=2)
    assert sel.counts.tolist() == [1, 1, 0]
    np.testing.assert_allclose(sel.weights, [0.5, 0.5, 0.0])
    assert sel.curve == [0.25, 0.0]
    assert (sel.best_size, sel.dev_error) == (2, 0.0)
    all_three = top_k(PAIR, PAIR_Y, k=3)
    np.testing.assert_allclose(all_three.weights, [1 / 3] * 3)
    np.testing.assert_allclose(average(PAIR, all_three.weights), PAIR.mean(axis=0))


def test_log_loss_is_clipped_and_error_rate_counts_argmax():
    proba = np.array([[1.0, 0.0], [0.3, 0.7]])
    assert error_rate(proba, np.array([0, 0])) == 0.5
    assert log_loss(proba, np.array([1, 1])) == pytest.approx((-np.log(1e-15) - np.log(0.7)) / 2)


@pytest.mark.parametrize("kwargs", [{"size": 2, "init": 3}, {"size": 0}, {"size": 3, "init": 0}])
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError):
        caruana(PAIR, PAIR_Y, **kwargs)
    with pytest.raises(ValueError):
        top_k(PAIR, PAIR_Y, k=4)
