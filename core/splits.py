"""Train/dev/test splits and input normalization with training-set statistics.

The split rule follows the course: 60/20/20 for datasets under a million examples,
98/1/1 from a million on, or the fractions a grid gives. Normalization statistics come
from the training split alone and are applied unchanged to dev and test, so nothing of
the dev or test rows leaks into training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .datasets import Dataset, DatasetError

LARGE_DATASET = 1_000_000
"""From this many examples on, the ``auto`` split is 98/1/1 instead of 60/20/20."""
_AUTO_SPLITS = {False: (0.6, 0.2, 0.2), True: (0.98, 0.01, 0.01)}  # keyed by "is large"
_PARTS = ("train", "dev", "test")
_SUM_TOLERANCE = 1e-9


def split_fractions(m: int, split: str | Mapping[str, float] | Sequence[float] | None = "auto",
                    ) -> tuple[float, float, float]:
    """The train, dev and test fractions for a dataset of ``m`` examples.

    Args:
        m: Number of examples.
        split: ``"auto"`` (or ``None``) for (0.6, 0.2, 0.2) under 1,000,000 examples and
            (0.98, 0.01, 0.01) from there on; or ``{train, dev, test}`` fractions (a
            mapping or a 3-sequence), each positive, summing to 1.

    Raises:
        ValueError: An unknown rule, missing or extra keys, or fractions that are not
            positive or do not sum to 1.
    """
    if split is None or (isinstance(split, str) and split == "auto"):
        return _AUTO_SPLITS[m >= LARGE_DATASET]
    if isinstance(split, str):
        raise ValueError(f"split: unknown rule {split!r}; use 'auto' or "
                         "{train, dev, test} fractions summing to 1")
    if isinstance(split, Mapping):
        if set(split) != set(_PARTS):
            raise ValueError(f"split: expected keys train, dev, test; got {sorted(split)}")
        values = tuple(split[p] for p in _PARTS)
    else:
        values = tuple(split)
        if len(values) != 3:
            raise ValueError(f"split: expected 3 fractions (train, dev, test); got {split!r}")
    for part, v in zip(_PARTS, values):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not 0 < v < 1:
            raise ValueError(f"split.{part}: {v!r} is not allowed; expected a fraction "
                             "between 0 and 1")
    if abs(sum(values) - 1.0) > _SUM_TOLERANCE:
        raise ValueError(f"split: fractions {values} sum to {sum(values)!r}, not 1")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def split_sizes(m: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Example counts for train, dev and test; they sum to ``m``.

    Dev and test get their fraction of ``m`` rounded half up; train gets the rest.

    Raises:
        DatasetError: A part would be empty, or train would have fewer than 2 examples.
    """
    _, f_dev, f_test = fractions
    n_dev, n_test = (int(math.floor(m * f + 0.5)) for f in (f_dev, f_test))
    sizes = (m - n_dev - n_test, n_dev, n_test)
    _check_sizes(m, sizes)
    return sizes


def _check_sizes(m: int, sizes: tuple[int, int, int]) -> None:
    if sizes[0] < 2 or min(sizes) < 1:
        raise DatasetError(
            f"dataset too small for its split: {m} examples give "
            f"{sizes[0]}/{sizes[1]}/{sizes[2]} (train/dev/test); the training set needs at "
            "least 2 examples and dev and test at least 1 each; add examples or change split")


@dataclass(frozen=True, eq=False)
class Normalizer:
    """Per-feature standardization ``(X - mean) / std``.

    Attributes:
        mean: ``(n,)`` float64 feature means of the training split.
        std: ``(n,)`` float64 standard deviations; 1 where a column is constant.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            values = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            values.flags.writeable = False
            object.__setattr__(self, name, values)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} differ in shape")

    @classmethod
    def fit(cls, X: np.ndarray) -> "Normalizer":
        """Statistics of ``X`` (the training split), column by column.

        A constant column gets std 1, so it becomes all zeros instead of a division by zero.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"fit needs a non-empty (m, n) array; got shape {X.shape}")
        constant = X.max(axis=0) == X.min(axis=0)
        # A constant column's own value as its mean: the computed mean of 0.1s is not 0.1.
        return cls(np.where(constant, X[0], X.mean(axis=0)), np.where(constant, 1.0, X.std(axis=0)))

    @classmethod
    def identity(cls, n: int) -> "Normalizer":
        """A normalizer that changes nothing (mean 0, std 1) for ``n`` features."""
        return cls(np.zeros(n), np.ones(n))

    @property
    def n_features(self) -> int:
        """Number of features ``n``."""
        return int(self.mean.shape[0])

    def transform(self, X: np.ndarray, dtype: Any = None) -> np.ndarray:
        """``(X - mean) / std`` computed in float64, then cast to ``dtype`` (float64 if None)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected (m, {self.n_features}) inputs; got shape {X.shape}")
        return ((X - self.mean) / self.std).astype(np.float64 if dtype is None else dtype, copy=False)


@dataclass(frozen=True, eq=False)
class PreparedData:
    """The split, normalized arrays that trials train on.

    Attributes:
        X_train, y_train, X_dev, y_dev, X_test, y_test: Features (normalized when asked,
            in the chosen float dtype) and int64 class indices of each split.
        normalizer: Training-split statistics in float64 (identity when not normalizing);
            a served model applies it to raw inputs.
        classes: ``(K,)`` original label values; ``y`` indexes into them.
        feature_names: One name per input column.
        name: The dataset's name.
        fingerprint: sha256 hex of the raw split arrays and the classes; the same data and
            split give the same fingerprint whatever the normalization and dtype.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_dev: np.ndarray
    y_dev: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    normalizer: Normalizer
    classes: np.ndarray
    feature_names: tuple[str, ...]
    name: str
    fingerprint: str

    @property
    def n_features(self) -> int:
        """Number of input features ``n``."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return int(len(self.classes))

    def without_test(self) -> "PreparedData":
        """A copy with empty test arrays: trial workers never see the test set."""
        return dataclasses.replace(
            self, X_test=_read_only(self.X_test[:0]), y_test=_read_only(self.y_test[:0]))


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _fingerprint(raw: Sequence[np.ndarray], classes: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in (*raw, np.asarray(classes)):
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f"dtype: {dtype!r} is not a NumPy dtype") from err
    if resolved.kind != "f":
        raise ValueError(f"dtype: {dtype!r} is not a floating-point type; use float32 or float64")
    return resolved


def _split_indices(dataset: Dataset, split: Any,
                   rng: np.random.Generator | None) -> list[np.ndarray | slice]:
    m = dataset.X.shape[0]
    if dataset.predefined is not None:
        if split not in ("auto", None):
            warnings.warn(f"split {split!r} is ignored: the dataset comes as train/dev/test "
                          "files", UserWarning, stacklevel=3)
        sizes = dataset.predefined
        _check_sizes(m, sizes)
        ends = np.cumsum(sizes)
        return [slice(0, ends[0]), slice(ends[0], ends[1]), slice(ends[1], m)]
    if rng is None:
        raise ValueError("prepare needs an np.random.Generator to shuffle before splitting")
    sizes = split_sizes(m, split_fractions(m, split))
    order = rng.permutation(m)
    return np.split(order, np.cumsum(sizes)[:2])


def prepare(dataset: Dataset, split: Any = "auto", rng: np.random.Generator | None = None,
            normalize: bool = True, dtype: Any = "float32") -> PreparedData:
    """Splits a dataset into train, dev and test and normalizes with train statistics.

    Args:
        dataset: The loaded dataset. When it has ``predefined`` sizes its rows are used as
            the train, dev and test blocks in order, without shuffling, and ``split`` is
            ignored (with a warning if one was given).
        split: ``"auto"`` or ``{train, dev, test}`` fractions; see :func:`split_fractions`.
        rng: Shuffles the rows before cutting; required unless the split is predefined.
        normalize: Standardize every split with the training split's mean and std.
        dtype: Floating-point type of the returned feature arrays.

    Returns:
        The prepared splits, read-only, with the fingerprint of the raw split arrays.

    Raises:
        DatasetError: The dataset is too small for its split.
        ValueError: A bad split, dtype, or a missing ``rng``.
    """
    dtype = _float_dtype(dtype)
    parts = _split_indices(dataset, split, rng)
    raw_X = [dataset.X[p] for p in parts]
    raw_y = [dataset.y[p] for p in parts]
    fingerprint = _fingerprint([a for pair in zip(raw_X, raw_y) for a in pair], dataset.classes)
    normalizer = (Normalizer.fit(raw_X[0]) if normalize
                  else Normalizer.identity(dataset.n_features))
    Xs = [normalizer.transform(X, dtype) if normalize else X.astype(dtype) for X in raw_X]
    ys = [np.array(y, dtype=np.int64) for y in raw_y]
    (X_train, X_dev, X_test), (y_train, y_dev, y_test) = map(_read_only_all, (Xs, ys))
    return PreparedData(X_train, y_train, X_dev, y_dev, X_test, y_test, normalizer,
                        _read_only(np.array(dataset.classes)), dataset.feature_names,
                        dataset.name, fingerprint)


def _read_only_all(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [_read_only(a) for a in arrays]


__all__ = [
    "LARGE_DATASET",
    "Normalizer",
    "PreparedData",
    "prepare",
    "split_fractions",
    "split_sizes",
]
