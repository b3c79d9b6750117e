"""One epoch of minibatch training, and evaluation passes, through preallocated buffers.

The parameters live as views into one flat array and their gradients in another
(``Net``), so the optimizer updates every parameter with one call per array operation;
forward and backward passes write into a ``network.Workspace``; minibatches are gathered
a block at a time into reused arrays. A minibatch step thus allocates almost nothing, and
no trial holds a copy of the whole training set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._buffers import Workspace, flat_views
from .network import (
    _backward_from_dlogits,
    _forward,
    _loss_and_dlogits,
    _penalty,
    _predict_from_logits,
)

EVAL_ROWS = 1024
"""Evaluation passes go through the training buffers in chunks of at least this many rows."""


@dataclass
class Data:
    """The training set (inputs, targets, labels) and the dev set, in the array module."""

    X: Any
    T: Any
    y: Any
    X_dev: Any
    y_dev: Any
    block: tuple[Any, ...] | None = None  # X, T, y of the shuffled rows being trained on


def minibatches(
    data: Data, batch_size: int | None, rng: np.random.Generator, xp: Any
) -> Iterator[tuple[Any, Any, Any]]:
    """``(X, T, y)`` of each minibatch of a fresh shuffle, as views of reused arrays.

    Rows are gathered a block of about ``EVAL_ROWS`` at a time: one gather per block keeps
    the per-batch cost low, and a trial never holds a shuffled copy of the whole training
    set (which may be a read-only array shared by every trial on the node).
    """
    m = data.X.shape[0]
    if batch_size is None or batch_size >= m:
        yield data.X, data.T, data.y  # one batch: its order cannot matter, so no shuffle
        return
    perm = rng.permutation(m)
    if xp is not np:
        perm = xp.asarray(perm)
    block = batch_size * max(1, EVAL_ROWS // batch_size)
    sources = (data.X, data.T, data.y)
    if data.block is None:
        data.block = tuple(xp.empty((min(block, m), *a.shape[1:]), a.dtype) for a in sources)
    for start in range(0, m, block):
        rows = perm[start : start + block]
        n = rows.shape[0]
        gathered = [a.take(rows, axis=0, out=b[:n]) for a, b in zip(sources, data.block)]
        for i in range(0, n, batch_size):
            yield tuple(g[i : i + batch_size] for g in gathered)


@dataclass
class Net:
    """The parameters, as views into one flat array, and the buffers that train them."""

    params: dict[str, Any]
    flat: Any
    ws: Workspace

    @classmethod
    def pack(cls, params: dict[str, Any], rows: int, xp: Any) -> "Net":
        flat, views = flat_views({k: v.shape for k, v in params.items()}, params["W1"].dtype, xp)
        for k, v in params.items():
            views[k][...] = v
        return cls(views, flat, Workspace(views, rows, xp))


def run_epoch(net, data, config, keep_probs, optimizer, mask_rng, rng, xp) -> tuple[Any, ...]:
    """One pass over the training set, updating ``net.params`` in place.

    Returns:
        ``(cost, train_error, norm_1, ..., norm_L)``: the mean minibatch cost, the error of
        the minibatch forward passes, and each layer's mean ``||dW_l||_F``, as Python
        floats on the CPU and ``xp`` scalars elsewhere.
    """
    params, ws = net.params, net.ws
    dWs = [ws.grads[f"dW{l}"].ravel() for l in range(1, len(params) // 2 + 1)]
    # Sums as Python floats on the CPU (the cheapest scalars); on a GPU as device scalars,
    # so the host syncs once per epoch, not once per minibatch.
    scalar, sqrt = (float, math.sqrt) if xp is np else (_same, xp.sqrt)
    cost_sum: Any = 0.0
    wrong: Any = 0
    norm_sums: list[Any] = [0.0] * len(dWs)
    n = 0
    for X, T, y in minibatches(data, config.batch_size, rng, xp):
        n += 1
        m = X.shape[0]
        logits, cache = _forward(params, X, config.activation, keep_probs, mask_rng, xp, ws)
        predicted = _predict_from_logits(logits, xp)
        wrong = wrong + xp.count_nonzero(predicted != y)
        top = predicted if logits.shape[1] > 1 else None  # the softmax's row maxima are there
        loss, dZ = _loss_and_dlogits(logits, T, xp, out=ws.at(m).dZ[-1], top=top)
        cost_sum = cost_sum + scalar(loss + _penalty(params, config.lambd, config.l1, m, xp))
        _backward_from_dlogits(
            params, cache, dZ, config.lambd, config.l1, config.activation, xp, ws
        )
        for l, dW in enumerate(dWs):
            norm_sums[l] = norm_sums[l] + sqrt(scalar(xp.vdot(dW, dW)))  # ||dW||_F
        # Every parameter's step at once: the update is elementwise, so one flat pass is
        # exactly the per-parameter update, with one call per array operation in all.
        optimizer._update_in_grad(net.flat, ws.flat_grads, "params")  # grads are spent
    return cost_sum / n, wrong / data.X.shape[0], *(s / n for s in norm_sums)


def _same(value: Any) -> Any:
    return value


def count_errors(params: dict[str, Any], X: Any, y: Any, activation: str, xp: Any, ws: Workspace):
    """Wrong predictions and whether every logit is finite (``xp`` scalars); no dropout.

    Runs in chunks of ``ws.rows`` through the workspace, so no activation the size of the
    whole set is ever allocated.
    """
    wrong: Any = 0
    finite: Any = True
    for i in range(0, X.shape[0], ws.rows):
        logits, _ = _forward(params, X[i : i + ws.rows], activation, None, None, xp, ws)
        # A count, not a mean: it stays an exact integer and skips mean()'s overhead.
        wrong = wrong + xp.count_nonzero(_predict_from_logits(logits, xp) != y[i : i + ws.rows])
        finite = finite & xp.isfinite(logits).all()
    return wrong, finite
