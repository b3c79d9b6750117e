"""Training one network from a ``TrainConfig``: minibatches, early stopping, divergence.

``train`` never raises for numerical trouble: a run whose cost or gradients go non-finite,
or whose cost explodes, ends with status ``"diverged"`` and the best finite weights seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._epoch import EVAL_ROWS, Data, Net, count_errors, run_epoch
from .activations import ACTIVATIONS
from .backend import asarray, make_mask_rng, to_numpy
from .config import TrainConfig
from .initializers import init_params
from .network import (
    _predict_from_logits,
    _proba_from_logits,
    forward,
    layer_sizes,
    n_params,
    targets,
)
from .optimizers import OPTIMIZERS

EXPLODING_GRAD_NORM = 1e3
"""A layer whose mean gradient norm ever exceeds this is reported as exploding."""
VANISHING_RATIO = 1e-4
"""First-layer gradient norm below this fraction of the last layer's counts as vanishing."""


@dataclass(frozen=True, eq=False)  # eq=False: fields hold arrays, which do not compare to a bool
class TrainOutcome:
    """What one training run produced.

    Attributes:
        status: ``"finished"`` or ``"diverged"``.
        reason: Why a run diverged or stopped early; ``None`` when it ran every epoch.
        params: The returned weights as NumPy arrays: the best (lowest dev error) when early
            stopping is on or the run diverged, else the final ones.
        history: Per-epoch lists: ``cost`` (mean minibatch cost with the penalties),
            ``train_error``, ``dev_error``, ``learning_rate`` and ``grad_norm_1`` ..
            ``grad_norm_L`` (mean over minibatches of ``||dW_l||_F``). Like ``cost``, the
            epoch's ``train_error`` comes from the minibatch forward passes that trained
            it: each example is classified once, by the weights just before its step and
            with dropout on, as during training (no second pass over the training set).
            ``dev_error`` is a full pass after the epoch, dropout off.
        train_error: Training error of ``params``, a full pass with dropout off; NaN if
            their outputs are not finite.
        dev_error: Dev error of ``params``; NaN if their outputs are not finite.
        train_cost: ``history["cost"]`` of the epoch ``params`` come from; NaN for the
            initial weights.
        best_epoch: 0-based epoch of the lowest dev error; -1 if no epoch ended finite.
        epochs_run: Epochs run, the diverging one included.
        seconds: Wall time of ``train``.
        n_params: Trainable numbers in the network.
        gradient_health: ``"ok"``, ``"vanishing"`` or ``"exploding"``.
        warnings: Human-readable warnings about the run.
        dev_proba: ``(m_dev, K)`` float32 class probabilities of ``params`` on the dev set.
        n_classes: Number of classes ``K``.
    """

    status: str
    reason: str | None
    params: dict[str, np.ndarray]
    history: dict[str, list[float]]
    train_error: float
    dev_error: float
    train_cost: float
    best_epoch: int
    epochs_run: int
    seconds: float
    n_params: int
    gradient_health: str
    warnings: tuple[str, ...]
    dev_proba: np.ndarray
    n_classes: int


@dataclass
class _Progress:
    """History plus the best weights so far, for early stopping and divergence fallback."""

    history: dict[str, list[float]]
    best_dev: float = math.inf
    best_epoch: int = -1
    best_params: dict[str, Any] | None = None
    since_best: int = 0
    first_cost: float = math.nan

    def observe(
        self, epoch: int, dev_error: float, params: dict[str, Any], min_delta: float
    ) -> None:
        if dev_error < self.best_dev - min_delta:
            self.best_dev, self.best_epoch, self.since_best = dev_error, epoch, 0
            self.best_params = {k: v.copy() for k, v in params.items()}
        else:
            self.since_best += 1


def _prepare(
    config: TrainConfig, X_train: Any, y_train: Any, X_dev: Any, y_dev: Any, n_classes: int, xp: Any
) -> Data:
    """Validates shapes and labels once, then moves everything to ``xp`` in ``config.dtype``."""
    for name, X, y in (("train", X_train, y_train), ("dev", X_dev, y_dev)):
        y_host = np.asarray(to_numpy(y))
        if X.ndim != 2 or y_host.shape != (X.shape[0],) or X.shape[0] == 0:
            raise ValueError(
                f"{name} set: need X (m, n) with m > 0 and y (m,), got {X.shape} and {y_host.shape}"
            )
        if not np.issubdtype(y_host.dtype, np.integer):
            raise ValueError(f"{name} labels must be class indices (integers), got {y_host.dtype}")
        if y_host.min() < 0 or y_host.max() >= n_classes:
            raise ValueError(
                f"{name} labels must lie in 0..{n_classes - 1}, got {y_host.min()}..{y_host.max()}"
            )
    n_out = layer_sizes(X_train.shape[1], (), n_classes)[-1]
    y = xp.asarray(y_train)
    return Data(
        X=asarray(xp, X_train, config.dtype),
        T=targets(y, n_out, config.dtype, xp),
        y=y,
        X_dev=asarray(xp, X_dev, config.dtype),
        y_dev=xp.asarray(y_dev),
    )


def _divergence(
    epoch: int,
    cost: float,
    norms: list[float],
    outputs_finite: bool,
    first_cost: float,
    factor: float,
) -> str | None:
    if not math.isfinite(cost):
        return f"cost became {cost} at epoch {epoch}"
    for l, norm in enumerate(norms, start=1):
        if not math.isfinite(norm):
            return f"gradient of layer {l} became {norm} at epoch {epoch}"
    if not outputs_finite:
        return f"outputs became non-finite at epoch {epoch}"
    if epoch > 0 and first_cost > 0 and cost > factor * first_cost:
        return f"cost exploded from {first_cost:.3g} to {cost:.3g} at epoch {epoch}"
    return None


def _gradient_health(history: dict[str, list[float]], n_layers: int) -> str:
    norms = [history[f"grad_norm_{l}"] for l in range(1, n_layers + 1)]
    if any(not math.isfinite(v) or v > EXPLODING_GRAD_NORM for layer in norms for v in layer):
        return "exploding"
    if not norms[0]:
        return "ok"
    first, last = norms[0][0], norms[-1][0]
    if first < VANISHING_RATIO * last or (first < 1e-10 and n_layers > 1):
        return "vanishing"  # the second: no gradient reaches layer 1 (a dead or zeros net)
    return "ok"


def _symmetry_warnings(params: dict[str, np.ndarray], initializer: str) -> tuple[str, ...]:
    if initializer != "zeros":
        return ()
    found = []
    for l in range(1, len(params) // 2):
        W = params[f"W{l}"]
        spread = float(np.ptp(W, axis=1).max()) if W.size else 0.0
        # A relative tolerance: BLAS may round identical columns a hair apart.
        if W.shape[1] > 1 and spread <= 1e-6 * max(float(np.abs(W).max()), 1e-30):
            found.append(
                f"zeros initialization left the {W.shape[1]} units of hidden layer {l} identical: "
                "they compute the same function, so the layer acts as one unit "
                "(symmetry was never broken)"
            )
    return tuple(found)


def _epoch_metrics(
    net, data, config, keep_probs, optimizer, mask_rng, rng, xp
) -> tuple[dict[str, float], bool]:
    """Trains one epoch, then evaluates on dev with dropout off; one host sync for all numbers.

    The training error comes from the epoch's own minibatch forward passes, as the cost
    does, instead of a second pass over the training set (a third of an epoch's work).
    """
    cost, train_error, *norms = run_epoch(
        net, data, config, keep_probs, optimizer, mask_rng, rng, xp
    )
    dev_wrong, dev_finite = count_errors(
        net.params, data.X_dev, data.y_dev, config.activation, xp, net.ws
    )
    dev_error = dev_wrong / data.X_dev.shape[0]
    values = to_numpy(
        xp.stack(
            [
                xp.asarray(v, dtype=xp.float64)
                for v in (cost, train_error, dev_error, dev_finite, *norms)
            ]
        )
    )
    metrics = {
        "cost": float(values[0]),
        "train_error": float(values[1]),
        "dev_error": float(values[2]),
        "learning_rate": optimizer.lr,
    }
    metrics.update({f"grad_norm_{l}": float(v) for l, v in enumerate(values[4:], start=1)})
    return metrics, bool(values[3])


def _outcome(
    config, data, params, params_epoch, progress, status, reason, started, n_classes, xp, ws
) -> TrainOutcome:
    """Evaluates the returned weights and assembles the record."""
    train_wrong, train_finite = count_errors(params, data.X, data.y, config.activation, xp, ws)
    dev_logits, _ = forward(params, data.X_dev, config.activation, xp=xp)
    dev_wrong = xp.count_nonzero(_predict_from_logits(dev_logits, xp) != data.y_dev)
    finite = bool(train_finite & xp.isfinite(dev_logits).all())
    train_error, dev_error = train_wrong / data.X.shape[0], dev_wrong / data.X_dev.shape[0]
    history = progress.history
    host_params = {k: to_numpy(v) for k, v in params.items()}
    n_layers = len(params) // 2
    return TrainOutcome(
        status=status,
        reason=reason,
        params=host_params,
        history=history,
        train_error=float(train_error) if finite else math.nan,
        dev_error=float(dev_error) if finite else math.nan,
        train_cost=history["cost"][params_epoch] if params_epoch is not None else math.nan,
        best_epoch=progress.best_epoch,
        epochs_run=len(history["cost"]),
        seconds=time.perf_counter() - started,
        n_params=n_params(params),
        gradient_health=_gradient_health(history, n_layers),
        warnings=_symmetry_warnings(host_params, config.initializer),
        dev_proba=to_numpy(_proba_from_logits(dev_logits, xp)).astype(np.float32, copy=False),
        n_classes=int(n_classes),
    )


def train(
    config: TrainConfig,
    X_train: Any,
    y_train: Any,
    X_dev: Any,
    y_dev: Any,
    n_classes: int,
    rng: np.random.Generator,
    xp: Any = np,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainOutcome:
    """Trains a fully-connected network as ``config`` says.

    Args:
        config: Every training setting.
        X_train: Training inputs, ``m x n``.
        y_train: Training labels, class indices of shape ``(m,)``.
        X_dev: Dev inputs, for early stopping and the returned dev error.
        y_dev: Dev labels.
        n_classes: Number of classes ``K`` (one sigmoid output unit when 2).
        rng: The trial's generator: initial weights, shuffles and dropout masks all come
            from it, so the same seed gives a bitwise identical outcome on CPU.
        xp: Array module (``numpy``, or ``cupy`` on GPU).
        on_epoch: Called as ``on_epoch(epoch, metrics)`` after every epoch (0-based).

    Returns:
        The ``TrainOutcome``; numerical trouble ends the run as ``"diverged"``, not an exception.

    Raises:
        ValueError: Malformed data or an unknown activation, initializer or optimizer name.
    """
    started = time.perf_counter()
    if config.activation not in ACTIVATIONS or config.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)} and optimizer one of "
            f"{sorted(OPTIMIZERS)}, got {config.activation!r} and {config.optimizer!r}"
        )
    data = _prepare(config, X_train, y_train, X_dev, y_dev, n_classes, xp)
    sizes = layer_sizes(data.X.shape[1], config.architecture, n_classes)
    initial = init_params(sizes, config.initializer, rng, config.init_scale, config.dtype, xp)
    m, m_dev = data.X.shape[0], data.X_dev.shape[0]
    # Rows of the buffers: a minibatch, and chunks of the evaluation passes.
    rows = min(max(config.batch_size or m, EVAL_ROWS), max(m, m_dev))
    net = Net.pack(initial, rows, xp)
    keys = [
        "cost",
        "train_error",
        "dev_error",
        "learning_rate",
        *(f"grad_norm_{l}" for l in range(1, len(sizes))),
    ]
    progress = _Progress(history={k: [] for k in keys})
    # Divergence is detected and reported explicitly, so NumPy's overflow warnings are noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        status, reason = _fit(config, data, net, progress, rng, xp, on_epoch)
        params, params_epoch = _returned_params(config, net.params, initial, progress, status)
        return _outcome(
            config,
            data,
            params,
            params_epoch,
            progress,
            status,
            reason,
            started,
            n_classes,
            xp,
            net.ws,
        )


def _fit(config, data, net, progress, rng, xp, on_epoch) -> tuple[str, str | None]:
    """The epoch loop; updates ``net.params`` in place and returns ``(status, reason)``."""
    keep_probs = config.keep_probs()
    mask_rng = make_mask_rng(xp, rng) if any(p < 1.0 for p in keep_probs) else None
    optimizer = OPTIMIZERS[config.optimizer](
        config.learning_rate, config.beta1, config.beta2, config.epsilon, config.lr_decay
    )
    keys = list(progress.history)
    for epoch in range(config.epochs):
        optimizer.set_epoch(epoch)
        metrics, finite = _epoch_metrics(
            net, data, config, keep_probs, optimizer, mask_rng, rng, xp
        )
        for k in keys:
            progress.history[k].append(metrics[k])
        if on_epoch is not None:
            on_epoch(epoch, dict(metrics))
        if epoch == 0:
            progress.first_cost = metrics["cost"]
        norms = [metrics[k] for k in keys if k.startswith("grad_norm_")]
        reason = _divergence(
            epoch, metrics["cost"], norms, finite, progress.first_cost, config.divergence_factor
        )
        if reason is not None:
            return "diverged", reason
        progress.observe(epoch, metrics["dev_error"], net.params, config.min_delta)
        if config.patience is not None and progress.since_best >= config.patience:
            return "finished", (
                f"early stopping at epoch {epoch}: dev error did not improve by more than "
                f"{config.min_delta} for {config.patience} epochs"
            )
    return "finished", None


def _returned_params(
    config, params, initial, progress, status
) -> tuple[dict[str, Any], int | None]:
    """Best weights after divergence or with early stopping on, else the final ones."""
    n_run = len(progress.history["cost"])
    if status == "finished" and config.patience is None:
        return params, (n_run - 1 if n_run else None)
    if progress.best_params is None:
        return initial, None
    return progress.best_params, progress.best_epoch


__all__ = ["EXPLODING_GRAD_NORM", "VANISHING_RATIO", "TrainOutcome", "train"]
