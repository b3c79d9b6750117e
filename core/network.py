"""A fully-connected network: forward pass, cost, backward pass and predictions.

Shapes: ``X`` is ``m x n`` (examples as rows), ``W{l}`` is ``n_{l-1} x n_l``, ``b{l}`` is
``1 x n_l``, ``y`` holds class indices of shape ``(m,)``. The output layer is one sigmoid
unit for two classes and a softmax over ``K`` units for ``K > 2`` classes; the forward pass
returns its *logits* and the cost works from them, which keeps it finite for any finite
logit. Every function takes the array module ``xp`` (NumPy or CuPy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._buffers import Workspace, layer_names, rows_of
from .activations import ACTIVATIONS, _times_derivative, sigmoid
from .backend import dropout_mask


def layer_sizes(n_features: int, architecture: Sequence[int], n_classes: int) -> list[int]:
    """``[n_features, *architecture, n_out]``, with one output unit for two classes.

    Raises:
        ValueError: Fewer than two classes.
    """
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    return [
        int(n_features),
        *(int(n) for n in architecture),
        1 if n_classes == 2 else int(n_classes),
    ]


def n_params(params: dict[str, Any]) -> int:
    """Number of trainable numbers (weights and biases)."""
    return int(sum(p.size for p in params.values()))


def targets(y: Any, n_out: int, dtype: Any, xp: Any = np) -> Any:
    """Labels as the output layer's target matrix.

    Args:
        y: Class indices, shape ``(m,)``.
        n_out: Output units: 1 (sigmoid) or ``K`` (softmax).
        dtype: Floating-point type of the result.
        xp: Array module.

    Returns:
        ``(m, 1)`` labels for one sigmoid unit, else the ``(m, K)`` one-hot matrix.
    """
    y = xp.asarray(y)
    if n_out == 1:
        return y.reshape(-1, 1).astype(dtype)
    T = xp.zeros((y.shape[0], n_out), dtype=dtype)
    T[xp.arange(y.shape[0]), y] = 1
    return T


def forward(
    params: dict[str, Any],
    X: Any,
    activation: str,
    keep_probs: Sequence[float] | None = None,
    mask_rng: Any = None,
    xp: Any = np,
) -> tuple[Any, dict[str, Any]]:
    """Forward pass, with inverted dropout on the hidden layers while training.

    Args:
        params: ``{"W1", "b1", ..., "WL", "bL"}``.
        X: Inputs, ``m x n``.
        activation: Hidden-layer activation, a key of ``ACTIVATIONS``.
        keep_probs: Keep probability of each hidden layer; ``None`` means no dropout.
        mask_rng: Source of dropout masks (see ``backend.make_mask_rng``). ``None`` turns
            dropout off, as at evaluation time; otherwise each call draws fresh masks.
        xp: Array module.

    Returns:
        ``(logits, cache)``: logits are ``m x 1`` (two classes) or ``m x K``. The cache
        holds lists indexed by layer: ``"A"`` (layer inputs as the next layer saw them,
        ``A[0] = X``), ``"H"`` (hidden activations before dropout), ``"D"`` (dropout masks
        already divided by keep_prob, or ``None``), plus ``"logits"``.
    """
    return _forward(params, X, activation, keep_probs, mask_rng, xp, None)


def _forward(params, X, activation, keep_probs, mask_rng, xp, ws) -> tuple[Any, dict[str, Any]]:
    """``forward``, writing into ``ws`` when given (its arrays are reused by the next call)."""
    g = ACTIVATIONS[activation]
    n_layers = len(params) // 2
    names = layer_names(n_layers)
    out = rows_of(ws, X.shape[0], n_layers)
    A = X
    cache: dict[str, Any] = {"A": [X], "H": [None], "D": [None]}
    for l in range(1, n_layers):
        W, b, _, _ = names[l]
        H = xp.matmul(A, params[W], out=out.H[l])
        H += params[b]
        # The pre-activation is never needed again: derivatives work from H.
        g(H, xp, out=H, zero=out.zeros[l])
        D = None
        keep_prob = 1.0 if keep_probs is None else float(keep_probs[l - 1])
        if mask_rng is not None and keep_prob < 1.0:
            # Inverted dropout: the expected activation is unchanged.
            D = dropout_mask(mask_rng, H.shape, keep_prob, H.dtype, xp)
            A = xp.multiply(H, D, out=out.A[l])
        else:
            A = H
        cache["A"].append(A)
        cache["H"].append(H)
        cache["D"].append(D)
    W, b, _, _ = names[n_layers]
    logits = xp.matmul(A, params[W], out=out.H[n_layers])
    logits += params[b]
    cache["logits"] = logits
    return logits, cache


def _data_loss(logits: Any, T: Any, xp: Any) -> Any:
    """Mean cross-entropy from logits, as an ``xp`` scalar; finite for any finite logit."""
    m = logits.shape[0]
    if logits.shape[1] == 1:
        # log(1 + exp(z)) - z*y written so that exp only ever sees -|z|
        E = xp.exp(-xp.abs(logits))
        return (xp.maximum(logits, 0) - logits * T + xp.log1p(E)).sum() / m
    # logsumexp(z) - z_y, shifted by the row maximum so exp never overflows
    shifted = logits - logits.max(axis=1, keepdims=True)
    total = xp.exp(shifted).sum(axis=1, keepdims=True)
    return (xp.log(total).sum() - xp.vdot(shifted.ravel(), T.ravel())) / m


def _penalty(params: dict[str, Any], lambd: float, l1: float, m: int, xp: Any) -> Any:
    """``lambd/(2m) sum ||W||^2 + l1/m sum |W|`` over the weights (never the biases)."""
    total = 0.0
    if not (lambd or l1):
        return total
    n_layers = len(params) // 2
    for l in range(1, n_layers + 1):
        W = params[f"W{l}"]
        if lambd:
            total = total + (lambd / (2.0 * m)) * xp.vdot(W.ravel(), W.ravel())
        if l1:
            total = total + (l1 / m) * xp.abs(W).sum()
    return total


def _output_proba(logits: Any, xp: Any) -> Any:
    """Sigmoid of one logit column, or the softmax across ``K`` columns."""
    if logits.shape[1] == 1:
        return sigmoid(logits, xp)
    E = xp.exp(logits - logits.max(axis=1, keepdims=True))
    E /= E.sum(axis=1, keepdims=True)
    return E


def _loss_and_dlogits(logits: Any, T: Any, xp: Any) -> tuple[Any, Any]:
    """``_data_loss`` and its gradient with respect to the logits, sharing the exponentials."""
    m = logits.shape[0]
    if logits.shape[1] == 1:
        E = xp.exp(-xp.abs(logits))
        loss = (xp.maximum(logits, 0) - logits * T + xp.log1p(E)).sum() / m
        R = 1.0 / (1.0 + E)
        dZ = xp.where(logits >= 0, R, E * R)
        dZ -= T
        dZ *= 1.0 / m
        return loss, dZ
    flat_top = logits.argmax(axis=1) + xp.arange(0, logits.size, logits.shape[1])
    dZ, totals = xp.empty_like(logits), xp.empty((m, 1), logits.dtype)
    ones = xp.ones((logits.shape[1], 1), logits.dtype)
    picked = _softmax_dlogits(logits, T, flat_top, ones, dZ, totals, xp)
    return (xp.log(totals).sum() - picked) / m, dZ


def _softmax_dlogits(
    logits: Any, T: Any, flat_top: Any, ones: Any, dZ: Any, totals: Any, xp: Any
) -> Any:
    """Writes the gradient of the mean softmax cross-entropy with respect to the logits
    into ``dZ``, and returns its loss in two parts.

    Args:
        logits: ``m x K``, C-contiguous.
        T: One-hot targets, ``m x K``.
        flat_top: Each row's argmax as an index into ``logits.ravel()``.
        ones: ``K x 1`` ones.
        dZ: ``m x K`` output.
        totals: ``m x 1`` output: each row's sum of ``exp(logits - row maximum)``.
        xp: Array module.

    Returns:
        ``picked``, the sum over rows of the label's shifted logit: the loss is
        ``(sum(log(totals)) - picked) / m``, finite for any finite logits.
    """
    row_max = xp.take(logits.ravel(), flat_top)
    xp.subtract(logits, row_max[:, None], out=dZ)
    picked = xp.vdot(dZ, T)
    xp.exp(dZ, out=dZ)
    xp.matmul(dZ, ones, out=totals)  # row sums: BLAS beats a reduction along short rows
    dZ /= totals
    dZ -= T
    dZ *= 1.0 / logits.shape[0]
    return picked


def cost(
    logits: Any,
    y: Any,
    params: dict[str, Any],
    lambd: float,
    l1: float,
    n_classes: int,
    xp: Any = np,
    m_train: int | None = None,
) -> float:
    """Cross-entropy of the logits plus the L2 and L1 penalties on the weights.

    Args:
        logits: Output of ``forward``, ``m x 1`` or ``m x K``.
        y: Class indices, shape ``(m,)``.
        params: The network's parameters, for the penalties.
        lambd: L2 strength: adds ``lambd / (2 m_train) * sum ||W||^2``.
        l1: L1 strength: adds ``l1 / m_train * sum |W|``.
        n_classes: Number of classes ``K``.
        xp: Array module.
        m_train: The training set's size, for a minibatch's share of the whole cost;
            defaults to ``m``, the rows of ``logits``.

    Returns:
        The cost as a Python float; huge finite logits give a huge finite cost, silently.

    Raises:
        ValueError: ``logits`` has the wrong number of columns for ``n_classes``.
    """
    n_out = 1 if n_classes == 2 else n_classes
    if logits.shape[1] != n_out:
        raise ValueError(f"{n_classes} classes need {n_out} logit column(s), got {logits.shape[1]}")
    m = logits.shape[0]
    T = targets(y, n_out, logits.dtype, xp)
    return float(_data_loss(logits, T, xp) + _penalty(params, lambd, l1, m_train or m, xp))


def _backward_from_dlogits(
    params: dict[str, Any],
    cache: dict[str, Any],
    dZ: Any,
    lambd: float,
    l1: float,
    activation: str,
    xp: Any,
    ws: Workspace | None = None,
    m_train: int | None = None,
) -> dict[str, Any]:
    """Backpropagates ``dZ`` (the cost's gradient with respect to the logits).

    With a workspace the gradients are written into ``ws.grads`` (and returned). The
    penalties' gradients are ``lambd / m_train * W`` and ``l1 / m_train * sign(W)``, with
    ``m_train`` the training set's size (default: this batch's), so a minibatch's step
    follows the whole cost ``J``, whatever the batch size.
    """
    m = cache["A"][0].shape[0]
    m_train = m if m_train is None else m_train
    n_layers = len(params) // 2
    names = layer_names(n_layers)
    out = rows_of(ws, m, n_layers)
    grads: dict[str, Any] = {}
    A, H, D = cache["A"], cache["H"], cache["D"]
    for l in range(n_layers, 0, -1):
        W_name, _, dW_name, db_name = names[l]
        W = params[W_name]
        dW = xp.matmul(A[l - 1].T, dZ, out=None if ws is None else ws.grads[dW_name])
        if lambd:
            dW += (lambd / m_train) * W
        if l1:
            dW += (l1 / m_train) * xp.sign(W)
        grads[dW_name] = dW
        if ws is None:
            grads[db_name] = dZ.sum(axis=0, keepdims=True)
        else:
            grads[db_name] = xp.matmul(out.ones, dZ, out=ws.grads[db_name])
        if l > 1:
            dA = xp.matmul(dZ, W.T, out=out.dZ[l - 1])
            if D[l - 1] is not None:
                dA *= D[l - 1]  # the same mask the forward pass used
            dZ = _times_derivative(dA, H[l - 1], activation, xp, out.zeros[l - 1])
    return grads


def backward(
    params: dict[str, Any],
    cache: dict[str, Any],
    y: Any,
    lambd: float,
    l1: float,
    activation: str,
    xp: Any = np,
    m_train: int | None = None,
) -> dict[str, Any]:
    """Gradients of ``cost`` with respect to every parameter.

    Args:
        params: The parameters the forward pass used.
        cache: The cache ``forward`` returned (its dropout masks are applied here).
        y: Class indices, shape ``(m,)``.
        lambd: L2 strength; adds ``lambd / m_train * W`` to each ``dW``.
        l1: L1 strength; adds ``l1 / m_train * sign(W)`` to each ``dW``.
        activation: The hidden activation the forward pass used.
        xp: Array module.
        m_train: As for ``cost``; defaults to the batch's ``m``.

    Returns:
        ``{"dW1", "db1", ..., "dWL", "dbL"}``, each shaped like its parameter.
    """
    logits = cache["logits"]
    T = targets(y, logits.shape[1], logits.dtype, xp)
    _, dZ = _loss_and_dlogits(logits, T, xp)
    return _backward_from_dlogits(params, cache, dZ, lambd, l1, activation, xp, m_train=m_train)


def _predict_from_logits(logits: Any, xp: Any, out: Any = None) -> Any:
    """Predicted classes, written into ``out`` (an ``intp`` array) when given."""
    if logits.shape[1] == 1:
        if out is None:
            return (logits[:, 0] > 0).astype(xp.int64)
        return xp.greater(logits[:, 0], 0, out=out)
    return logits.argmax(axis=1, out=out)


def _proba_from_logits(logits: Any, xp: Any) -> Any:
    P = _output_proba(logits, xp)
    if P.shape[1] == 1:
        return xp.concatenate([1.0 - P, P], axis=1)
    return P


def predict_proba(params: dict[str, Any], X: Any, activation: str, xp: Any = np) -> Any:
    """Class probabilities, ``m x K`` (``[1 - p, p]`` for two classes), dropout off."""
    logits, _ = forward(params, X, activation, xp=xp)
    return _proba_from_logits(logits, xp)


def predict(params: dict[str, Any], X: Any, activation: str, xp: Any = np) -> Any:
    """Predicted class indices, shape ``(m,)``, dropout off."""
    logits, _ = forward(params, X, activation, xp=xp)
    return _predict_from_logits(logits, xp)


def error_rate(params: dict[str, Any], X: Any, y: Any, activation: str, xp: Any = np) -> float:
    """Fraction of examples whose predicted class is wrong."""
    return float((predict(params, X, activation, xp) != xp.asarray(y)).mean())


__all__ = [
    "backward",
    "cost",
    "error_rate",
    "forward",
    "layer_sizes",
    "n_params",
    "predict",
    "predict_proba",
    "targets",
]
