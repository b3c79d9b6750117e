"""The training settings of one trial, as a frozen record.

Field names follow the YAML keys a user writes in ``grid.yaml`` with two exceptions:
``lambda`` is a Python keyword, so the L2 strength is the field ``lambd``; and the
``early_stopping: {patience, min_delta}`` mapping is flattened into ``patience`` and
``min_delta``, named ``early_stopping.patience`` and ``early_stopping.min_delta`` as keys.
:meth:`TrainConfig.to_params` writes the key names back, so MLflow shows what the
user wrote.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

# The names a user may write for each table-driven setting. The core's lookup tables
# (ACTIVATIONS, INITIALIZERS, OPTIMIZERS) are keyed by exactly these names.
ACTIVATION_NAMES = ("relu", "leaky_relu", "tanh", "sigmoid")
INITIALIZER_NAMES = ("zeros", "random", "xavier", "glorot", "he")
OPTIMIZER_NAMES = ("gd", "momentum", "rmsprop", "adam")
DTYPE_NAMES = ("float32", "float64")

# YAML key -> dataclass field, where they differ.
_KEY_TO_FIELD = {
    "lambda": "lambd",
    "early_stopping.patience": "patience",
    "early_stopping.min_delta": "min_delta",
}
_FIELD_TO_KEY = {v: k for k, v in _KEY_TO_FIELD.items()}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that shapes one training run.

    Attributes:
        architecture: Hidden layer sizes; the input and output sizes come from the data.
        activation: Hidden-layer activation, one of ``ACTIVATION_NAMES``.
        initializer: Weight initializer, one of ``INITIALIZER_NAMES``.
        init_scale: Multiplier of N(0, 1) for the ``random`` initializer.
        lambd: L2 strength; the cost gains ``lambd / (2m) * sum ||W||^2``, with m the
            number of training examples at every batch size (each minibatch step's
            weight decay is ``lambd / m * W``), so a lambda means the same whatever
            ``batch_size`` is.
        l1: L1 strength; the cost gains ``l1 / m * sum |W|``, m as for ``lambd``.
        keep_prob: Inverted-dropout keep probability, one for every hidden layer or one
            per hidden layer. 1.0 switches dropout off.
        optimizer: One of ``OPTIMIZER_NAMES``.
        learning_rate: Initial step size.
        lr_decay: Learning rate at epoch t is ``learning_rate / (1 + lr_decay * t)``.
        beta1: Momentum / Adam first-moment decay.
        beta2: RMSprop / Adam second-moment decay.
        epsilon: RMSprop / Adam denominator guard.
        epochs: Passes over the training set.
        batch_size: Minibatch size; ``None`` trains on the full batch.
        patience: Early stopping: epochs without a dev-error improvement before stopping;
            ``None`` switches early stopping off.
        min_delta: Early stopping: the smallest dev-error drop that counts as improvement.
        divergence_factor: A cost above this multiple of the first epoch's cost ends the
            trial as diverged.
        normalize: Standardize inputs with the training set's mean and variance.
        dtype: Floating-point type of the training arrays.
    """

    architecture: tuple[int, ...]
    activation: str = "relu"
    initializer: str = "he"
    init_scale: float = 0.01
    lambd: float = 0.0
    l1: float = 0.0
    keep_prob: float | tuple[float, ...] = 1.0
    optimizer: str = "adam"
    learning_rate: float = 0.001
    lr_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    epochs: int = 100
    batch_size: int | None = 64
    patience: int | None = None
    min_delta: float = 0.0
    divergence_factor: float = 1e3
    normalize: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "architecture", tuple(int(n) for n in self.architecture))
        if isinstance(self.keep_prob, (list, tuple)):
            object.__setattr__(self, "keep_prob", tuple(float(p) for p in self.keep_prob))
        # The shapes the core relies on; sweeper's grid schema checks every setting with
        # YAML paths before a config is built, this catches direct use of the library.
        problems = []
        if any(n < 1 for n in self.architecture):
            problems.append(f"architecture {self.architecture}: every layer needs >= 1 unit")
        if isinstance(self.keep_prob, tuple) and len(self.keep_prob) != len(self.architecture):
            problems.append(f"keep_prob {self.keep_prob}: one per hidden layer "
                            f"({len(self.architecture)}) or a single number")
        if not all(0.0 < p <= 1.0 for p in self.keep_probs()):
            problems.append(f"keep_prob {self.keep_prob}: must lie in (0, 1]")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"batch_size {self.batch_size}: must be >= 1, or None for full batch")
        if problems:
            raise ValueError("; ".join(problems))

    def keep_probs(self) -> tuple[float, ...]:
        """The keep probability of each hidden layer, expanded from a single value."""
        if isinstance(self.keep_prob, tuple):
            return self.keep_prob
        return (float(self.keep_prob),) * len(self.architecture)

    def to_params(self) -> dict[str, Any]:
        """The settings under the YAML's own key names (``lambda``, not ``lambd``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            out[_FIELD_TO_KEY.get(f.name, f.name)] = value
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "TrainConfig":
        """Builds a config from YAML-named settings; unknown keys raise ``TypeError``."""
        kwargs = {_KEY_TO_FIELD.get(k, k): v for k, v in params.items()}
        return cls(**kwargs)


TRAIN_KEYS: tuple[str, ...] = tuple(
    _FIELD_TO_KEY.get(f.name, f.name) for f in dataclasses.fields(TrainConfig)
)
"""Every training setting's YAML key, in declaration order."""

DEFAULTS: dict[str, Any] = {
    _FIELD_TO_KEY.get(f.name, f.name): f.default
    for f in dataclasses.fields(TrainConfig)
    if f.default is not dataclasses.MISSING
}
"""Default value of every optional training setting, by YAML key."""


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with some fields changed (``dataclasses.replace``)."""
    return dataclasses.replace(config, **changes)


__all__ = [
    "ACTIVATION_NAMES",
    "DEFAULTS",
    "DTYPE_NAMES",
    "INITIALIZER_NAMES",
    "OPTIMIZER_NAMES",
    "TRAIN_KEYS",
    "TrainConfig",
    "replace",
]
