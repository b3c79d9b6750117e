"""One epoch of minibatch training, and evaluation passes, through preallocated buffers.

The parameters live as views into one flat array and their gradients in another
(``Net``), so the optimizer updates every parameter with one call per array operation;
forward and backward passes write into a ``network.Workspace``; minibatches are gathered
a block at a time into reused arrays. A minibatch step thus allocates almost nothing, and
no trial holds a copy of the whole training set.
"""

from __future__ import annotations

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
    _softmax_dlogits,
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
    blocks: Blocks | None = None  # what every epoch reuses (see ``Blocks``)


@dataclass
class Blocks:
    """Arrays every epoch reuses: a block of shuffled rows and what its steps leave.

    An epoch gathers its shuffled rows a block (a whole number of minibatches) at a time
    into ``X``, ``T`` and ``y`` (``None`` when one batch holds the whole set: it is used as
    it is, never copied). Each step writes its predictions into ``predicted`` and its
    softmax row sums into ``totals``, which are reduced once per block, and its loss terms
    and squared gradient norms into a row of ``terms`` and ``norms``, reduced once per epoch.
    """

    X: Any
    T: Any
    y: Any
    predicted: Any  # (block,) predicted classes
    totals: Any  # (block, 1) each row's sum of exp(shifted logits), for softmax outputs
    row_starts: Any  # (batch,) 0, K, 2K, ...: where each row starts in a batch's flat logits
    ones: Any  # (K, 1)
    terms: Any  # (steps,) a step's cost times its rows, less the sum of log(totals)
    log_sums: Any  # (steps,) a step's sum of log(totals) over its rows
    norms: Any  # (steps, L) a step's ||dW_l||^2
    sizes: Any  # (steps,) a step's rows

    @classmethod
    def allocate(cls, data: Data, batch_size: int, n_layers: int, xp: Any) -> Blocks:
        m, n_out = data.T.shape
        block = min(m, batch_size * max(1, EVAL_ROWS // batch_size))
        steps = -(-m // batch_size)
        sizes = np.full(steps, float(batch_size))
        sizes[-1] = m - batch_size * (steps - 1)
        shuffled = batch_size < m
        return cls(
            *(
                xp.empty((block, *a.shape[1:]), a.dtype) if shuffled else None
                for a in (data.X, data.T, data.y)
            ),
            predicted=xp.empty(block, np.intp),
            totals=xp.ones((block, 1), data.X.dtype),
            row_starts=xp.arange(0, batch_size * n_out, n_out),
            ones=xp.ones((n_out, 1), data.X.dtype),
            terms=xp.zeros(steps, np.float64),
            log_sums=xp.zeros(steps, np.float64),
            norms=xp.zeros((steps, n_layers), np.float64),
            sizes=xp.asarray(sizes),
        )


def gathered_blocks(
    data: Data, batch_size: int, rng: np.random.Generator, xp: Any
) -> Iterator[tuple[Any, Any, Any]]:
    """``(X, T, y)`` of each block of a fresh shuffle, as views of ``data.blocks``' arrays.

    Every block but the last holds a whole number of minibatches. Gathering a block of
    about ``EVAL_ROWS`` rows at a time keeps the per-batch cost low, and a trial never holds
    a shuffled copy of the whole training set (which may be a read-only array shared by
    every trial on the node). One batch as large as the set is not shuffled: its order
    cannot matter.
    """
    m = data.X.shape[0]
    if batch_size >= m:
        yield data.X, data.T, data.y
        return
    perm = rng.permutation(m)
    if xp is not np:
        perm = xp.asarray(perm)
    pairs = ((data.X, data.blocks.X), (data.T, data.blocks.T), (data.y, data.blocks.y))
    block = data.blocks.X.shape[0]
    for start in range(0, m, block):
        rows = perm[start : start + block]
        n = rows.shape[0]
        yield tuple(a.take(rows, axis=0, out=g[:n]) for a, g in pairs)


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

    A step leaves its loss terms, predictions and gradient norms in arrays that are
    reduced once per block or epoch, so a step is little more than the array operations
    that train.

    Returns:
        ``(cost, train_error, norm_1, ..., norm_L)``: the mean minibatch cost, the error of
        the minibatch forward passes, and each layer's mean ``||dW_l||_F``, as ``xp``
        scalars (on a GPU the host syncs once per epoch, not once per minibatch).
    """
    params, ws = net.params, net.ws
    n_layers = len(params) // 2
    dWs = [ws.grads[f"dW{l}"].ravel() for l in range(1, n_layers + 1)]
    m_all = data.X.shape[0]
    batch_size = min(config.batch_size or m_all, m_all)
    if data.blocks is None:
        data.blocks = Blocks.allocate(data, batch_size, n_layers, xp)
    b = data.blocks
    softmax = data.T.shape[1] > 1
    penalty = bool(config.lambd or config.l1)
    wrong: Any = 0
    step = 0
    for X_block, T_block, y_block in gathered_blocks(data, batch_size, rng, xp):
        n = X_block.shape[0]
        first = step
        for i in range(0, n, batch_size):
            X, T = X_block[i : i + batch_size], T_block[i : i + batch_size]
            m = X.shape[0]
            logits, cache = _forward(params, X, config.activation, keep_probs, mask_rng, xp, ws)
            top = _predict_from_logits(logits, xp, out=b.predicted[i : i + m])
            if softmax:
                dZ = ws.at(m).dZ[-1]
                flat_top = xp.add(top, b.row_starts[:m])
                term = -_softmax_dlogits(logits, T, flat_top, b.ones, dZ, b.totals[i : i + m], xp)
            else:
                loss, dZ = _loss_and_dlogits(logits, T, xp)
                term = loss * m
            if penalty:  # J's penalty, lambd / (2 m_all) sum ||W||^2, in every step's cost
                term = term + m * _penalty(params, config.lambd, config.l1, m_all, xp)
            b.terms[step] = term
            _backward_from_dlogits(
                params, cache, dZ, config.lambd, config.l1, config.activation, xp, ws, m_all
            )
            for l, dW in enumerate(dWs):
                b.norms[step, l] = xp.vdot(dW, dW)
            # Every parameter's step at once: the update is elementwise, so one flat pass is
            # exactly the per-parameter update, with one call per array operation in all.
            optimizer._update_in_grad(net.flat, ws.flat_grads, "params")  # grads are spent
            step += 1
        wrong = wrong + xp.count_nonzero(b.predicted[:n] != y_block)
        if softmax:  # each step's sum of log(totals): the log-sum-exp half of its loss
            logs = xp.log(b.totals[:n, 0])
            whole = n - n % batch_size
            b.log_sums[first : first + whole // batch_size] = logs[:whole].reshape(
                -1, batch_size
            ).sum(axis=1)
            if whole < n:
                b.log_sums[step - 1] = logs[whole:].sum()
    costs = (b.log_sums + b.terms) / b.sizes  # each step's mean cost over its rows
    return costs.mean(), wrong / m_all, *xp.sqrt(b.norms).mean(axis=0)


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
