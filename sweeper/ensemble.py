"""Ensembles of trained networks chosen on dev-set probabilities.

Caruana et al. (2004), *Ensemble selection from libraries of models*: start from the best
few models, then add, one pick at a time and with replacement, the model that lowers the
averaged prediction's dev error the most; a model picked ``c`` times weighs ``c / picks``.
The prefix of picks with the lowest dev error is kept. A plain top-k average is the simple
alternative. Everything here is pure NumPy; the caller touches the test set afterwards.

Shapes: ``probas`` is ``(n_models, m, K)`` (candidates sorted best first), ``y`` is ``(m,)``
class indices, a single model's or an ensemble's probabilities are ``(m, K)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CLIP = 1e-15  # log-loss clip, so a confident wrong answer costs a lot but stays finite


@dataclass(frozen=True, eq=False)  # eq=False: counts and weights are arrays
class Selection:
    """The models an ensemble keeps and how much each weighs.

    Attributes:
        counts: ``(n_models,)`` int64 times each candidate was picked in the kept prefix.
        weights: ``counts / counts.sum()``; they sum to 1.
        curve: Dev error after each pick, for every pick made (the whole run, not only
            the kept prefix), for the report's size-against-error plot.
        best_size: Number of picks kept.
        dev_error: Dev error of the kept ensemble.
    """

    counts: np.ndarray
    weights: np.ndarray
    curve: list[float]
    best_size: int
    dev_error: float


def average(probas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average of the models' probabilities.

    Args:
        probas: ``(n_models, m, K)`` probabilities.
        weights: ``(n_models,)`` non-negative weights, not all zero; normalized here.

    Returns:
        ``(m, K)`` averaged probabilities.
    """
    probas = np.asarray(probas, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != probas.shape[:1] or weights.sum() <= 0 or (weights < 0).any():
        raise ValueError(f"need {probas.shape[0]} non-negative weights with a positive sum, "
                         f"got {weights!r}")
    return np.tensordot(weights / weights.sum(), probas, axes=1)


def error_rate(proba: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose most probable class (the first on ties) is not ``y``."""
    return float((np.asarray(proba).argmax(axis=-1) != np.asarray(y)).mean())


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true class, clipped at ``1e-15``."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    true = proba[np.arange(y.shape[0]), y]
    return float(-np.log(np.clip(true, _CLIP, 1.0)).mean())


def _check(probas: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probas = np.asarray(probas, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if probas.ndim != 3 or probas.shape[0] == 0 or y.shape != (probas.shape[1],):
        raise ValueError(f"probas must be (n_models, m, K) with n_models > 0 and y (m,); "
                         f"got {probas.shape} and {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= probas.shape[2]):
        raise ValueError(f"labels must be class indices 0..{probas.shape[2] - 1}")
    return probas, y


def _scores(candidates: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dev error and log-loss of each ``(m, K)`` slice of ``candidates``, vectorized."""
    wrong = candidates.argmax(axis=2) != y[None, :]
    true = candidates[:, np.arange(y.shape[0]), y]
    return wrong.mean(axis=1), -np.log(np.clip(true, _CLIP, 1.0)).mean(axis=1)


def _next_pick(total: np.ndarray, picks: int, probas: np.ndarray, y: np.ndarray) -> int:
    """The model whose addition gives the lowest error, then log-loss, then index."""
    errors, losses = _scores((total[None] + probas) / (picks + 1), y)
    # lexsort sorts by the last key first; the index breaks the remaining ties
    return int(np.lexsort((np.arange(len(errors)), losses, errors))[0])


def _selection(order: list[int], curve: list[float], n_models: int, keep: int) -> Selection:
    counts = np.bincount(np.asarray(order[:keep], dtype=np.int64), minlength=n_models)
    return Selection(counts=counts, weights=counts / counts.sum(), curve=curve,
                     best_size=keep, dev_error=float(curve[keep - 1]))


def caruana(probas: np.ndarray, y: np.ndarray, size: int, init: int = 1) -> Selection:
    """Caruana ensemble selection: greedy forward selection with replacement.

    The ``init`` best candidates are picked once each; then, until ``size`` picks, the
    candidate whose addition gives the averaged probabilities the lowest dev error is
    picked again (ties: lower dev log-loss, then the better-ranked candidate). The kept
    ensemble is the prefix of picks, at least ``init`` long, with the lowest dev error;
    among equal errors the one with the lowest dev log-loss, then the shorter.

    Args:
        probas: ``(n_models, m, K)`` dev-set probabilities, candidates sorted best first.
        y: ``(m,)`` dev labels as class indices.
        size: Total number of picks, ``init`` included; may exceed ``n_models``.
        init: Candidates the ensemble starts from, ``1 <= init <= min(size, n_models)``.

    Returns:
        The kept picks as counts and weights, with the dev error after every pick.

    Raises:
        ValueError: Malformed arrays, or ``init`` and ``size`` out of range.
    """
    probas, y = _check(probas, y)
    n_models = probas.shape[0]
    if not 1 <= init <= min(size, n_models):
        raise ValueError(f"need 1 <= init <= min(size, n_models); got init={init}, "
                         f"size={size}, n_models={n_models}")
    order, curve, losses = [], [], []
    total = np.zeros(probas.shape[1:], dtype=np.float64)
    for step in range(size):
        pick = step if step < init else _next_pick(total, step, probas, y)
        total += probas[pick]
        order.append(pick)
        curve.append(error_rate(total / (step + 1), y))
        losses.append(log_loss(total / (step + 1), y))
    # Lowest error; among equal errors the lowest log-loss (a dev set of a few hundred
    # examples ties often, and averaging mostly improves calibration); then the shortest.
    tail = range(init - 1, size)
    keep = 1 + min(tail, key=lambda i: (curve[i], round(losses[i], 12), i))  # rounding: float noise
    return _selection(order, curve, n_models, keep)


def top_k(probas: np.ndarray, y: np.ndarray, k: int) -> Selection:
    """The plain average of the ``k`` best candidates.

    Args:
        probas: ``(n_models, m, K)`` dev-set probabilities, candidates sorted best first.
        y: ``(m,)`` dev labels as class indices.
        k: Candidates to average, ``1 <= k <= n_models``.

    Returns:
        Equal weights on the first ``k`` candidates; ``curve`` holds the dev error of the
        average of the first 1, 2, ..., ``k`` candidates and ``best_size`` is ``k``.

    Raises:
        ValueError: Malformed arrays, or ``k`` out of range.
    """
    probas, y = _check(probas, y)
    if not 1 <= k <= probas.shape[0]:
        raise ValueError(f"need 1 <= k <= n_models={probas.shape[0]}; got k={k}")
    running = np.cumsum(probas[:k], axis=0) / np.arange(1, k + 1)[:, None, None]
    curve = [float(e) for e in _scores(running, y)[0]]
    return _selection(list(range(k)), curve, probas.shape[0], k)


__all__ = ["Selection", "average", "caruana", "error_rate", "log_loss", "top_k"]
