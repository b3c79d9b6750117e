"""Datasets: built-in generators, scikit-learn's bundled data, and CSV / NPZ files.

Every source ends as a :class:`Dataset`: ``X`` is ``m x n`` float64 (examples are rows),
``y`` is ``(m,)`` int64 indices into ``classes``, the sorted original label values, so a
served model can answer labels in the data's own values. Generators draw every random
number from the ``np.random.Generator`` they are given. Problems with the data raise one
:class:`DatasetError` that lists every problem found.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._generators import (  # re-exported: the generators are part of this API
    GENERATORS as _GENERATORS,
)
from ._generators import (
    MAX_GENERATED_VALUES,
    PARAM_RULES,
    ParamRule,
    blobs,
    bounds_text,
    circles,
    flower,
    joint_param_problems,
    moons,
    spiral,
)

_SHOWN = 3  # rows quoted per problem before "and N more"


class DatasetError(ValueError):
    """A user-facing problem with the data; ``problems`` holds every message found."""

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):  # keep ``problems`` intact across pickling (Ray workers)
        return (type(self), (self.problems,))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Examples and labels, before any split.

    Attributes:
        X: ``(m, n)`` float64 features, one example per row.
        y: ``(m,)`` int64 class indices into ``classes``.
        classes: ``(K,)`` sorted original label values (numbers or strings).
        feature_names: One name per column of ``X``.
        name: Short name for reports (the generator's name or the file's stem).
        predefined: ``(n_train, n_dev, n_test)`` when the rows are the train, dev and
            test files in that order; ``None`` when the split is still to be made.
    """

    X: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    feature_names: tuple[str, ...]
    name: str
    predefined: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.int64)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(f"X must be (m, n) and y (m,); got {X.shape} and {y.shape}")
        if len(self.feature_names) != X.shape[1]:
            raise ValueError(f"{len(self.feature_names)} feature names for {X.shape[1]} columns")
        if self.predefined is not None and sum(self.predefined) != X.shape[0]:
            raise ValueError(f"predefined sizes {self.predefined} do not sum to {X.shape[0]}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "classes", np.asarray(self.classes))
        object.__setattr__(self, "feature_names", tuple(str(s) for s in self.feature_names))

    @property
    def n_features(self) -> int:
        """Number of input features ``n``."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return int(len(self.classes))


def _make_dataset(X: np.ndarray, labels: np.ndarray, names: Sequence[str], name: str,
                  where: str, predefined: tuple[int, int, int] | None = None) -> Dataset:
    if X.ndim != 2 or X.shape[1] < 1:
        raise DatasetError(f"{where}: the data has no feature columns (X has shape {X.shape}); "
                           "a network needs at least one feature")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DatasetError(f"{where}: the target has one class ({classes[0].item()!r}) in "
                           f"{len(labels)} examples; a classifier needs at least 2")
    return Dataset(X, y.reshape(-1), classes, tuple(names), name, predefined)


# ---------------------------------------------------------------- bundled (scikit-learn)


def _sklearn_loader(function: str) -> Callable[[], tuple[np.ndarray, np.ndarray, tuple]]:
    def load() -> tuple[np.ndarray, np.ndarray, tuple]:
        from sklearn import datasets as sk  # lazy: importing sklearn costs a second

        bunch = getattr(sk, function)()
        labels = np.asarray(bunch.target_names)[bunch.target]  # real labels, not codes
        return bunch.data, labels, tuple(str(s) for s in bunch.feature_names)

    load.__name__ = function
    load.__doc__ = f"scikit-learn's ``{function}()`` as (X, labels, feature_names)."
    return load


_BUNDLED = {name: _sklearn_loader(f"load_{name}")
            for name in ("digits", "breast_cancer", "iris", "wine")}

GENERATED: tuple[str, ...] = tuple(_GENERATORS)
"""Names of the built-in generators."""
BUNDLED: tuple[str, ...] = tuple(_BUNDLED)
"""Names of scikit-learn's bundled datasets (no download)."""
DATASETS: Mapping[str, Callable[..., Any]] = MappingProxyType({**_GENERATORS, **_BUNDLED})
"""Every built-in dataset by the name written in YAML: generators ``fn(rng, **params)
-> (X, y)``, bundled loaders ``fn() -> (X, labels, feature_names)``."""


def dataset_param_names(name: str) -> tuple[str, ...]:
    """The keys a built-in dataset accepts besides ``name`` (empty for bundled data).

    Raises:
        DatasetError: ``name`` is not a built-in dataset.
    """
    if name not in DATASETS:
        raise DatasetError(f"dataset.name: unknown dataset {name!r}; "
                           f"built-in datasets: {', '.join(DATASETS)}")
    if name in _BUNDLED:
        return ()
    return tuple(inspect.signature(_GENERATORS[name]).parameters)[1:]


def _yaml(value: Any) -> str:
    """A value as the grid file spells it: null, true, [1, 2]; strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_yaml, value)) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_params(name: str, params: Mapping[str, Any]) -> None:
    allowed = dataset_param_names(name)
    problems = []
    for key, value in params.items():
        if key not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameters"
            problems.append(f"dataset.{key}: unknown key {key!r}; {name} {takes}")
        elif not PARAM_RULES[key].accepts(value):
            problems.append(f"dataset.{key}: got {_yaml(value)}; {key} must be "
                            f"{PARAM_RULES[key].describe()}")
    if not problems and name in _GENERATORS:
        problems = [f"dataset.{key}: {message}" for key, message in
                    joint_param_problems(name, params)]
    if problems:
        raise DatasetError(problems)


def _builtin(config: Mapping[str, Any], rng: np.random.Generator | None) -> Dataset:
    name = config["name"]
    params = {k: v for k, v in config.items() if k != "name"}
    _check_params(name, params)
    if name in _BUNDLED:
        X, labels, names = _BUNDLED[name]()
        return _make_dataset(X, labels, names, name, "dataset")
    if rng is None:
        raise ValueError(f"the {name!r} generator needs an np.random.Generator")
    X, y = _GENERATORS[name](rng, **params)
    names = tuple(f"x{i}" for i in range(X.shape[1]))
    return Dataset(X, y, np.unique(y), names, name)


# Which keys each file source takes; the first key tells the sources apart.
_FILE_SOURCES = {
    "path": ("path", "target"),
    "train": ("train", "dev", "test", "target"),
}


def load_dataset(config: Mapping[str, Any] | str, base_dir: Path | str = ".",
                 rng: np.random.Generator | None = None) -> Dataset:
    """Loads the dataset a grid's ``dataset:`` section describes.

    Args:
        config: ``{"name": "circles", "n_samples": 400, ...}`` for a built-in dataset (a
            bare name also works), ``{"path": "data.csv", "target": "label"}`` for one CSV
            or NPZ file, or ``{"train": ..., "dev": ..., "test": ..., "target": ...}``.
        base_dir: Folder that relative paths start from (the grid file's folder).
        rng: Source of randomness; required by the generators.

    Returns:
        The dataset; ``predefined`` is set when it came from train/dev/test files.

    Raises:
        DatasetError: Unknown keys or values, missing files, or bad file contents.
        ValueError: A generator was asked for without ``rng``.
    """
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, Mapping):
        raise DatasetError(f"dataset: expected a mapping, got {config!r}")
    sources = [k for k in ("name", *_FILE_SOURCES) if k in config]
    if len(sources) != 1:
        raise DatasetError(f"dataset: give exactly one of 'name', 'path' or 'train' "
                           f"(with dev and test); got keys {sorted(config)}")
    if sources[0] == "name":
        return _builtin(config, rng)
    from . import datafiles  # the file readers import this module's types

    allowed = _FILE_SOURCES[sources[0]]
    unknown = [k for k in config if k not in allowed]
    missing = [k for k in allowed if k not in config]
    problems = [f"dataset.{k}: unknown key; allowed: {', '.join(allowed)}" for k in unknown]
    problems += [f"dataset.{k}: missing; a file dataset needs {', '.join(allowed)}"
                 for k in missing]
    if problems:
        raise DatasetError(problems)
    load = datafiles.read_single_file if sources[0] == "path" else datafiles.read_split_files
    return load(config, Path(base_dir))


__all__ = [
    "BUNDLED",
    "DATASETS",
    "GENERATED",
    "MAX_GENERATED_VALUES",
    "PARAM_RULES",
    "Dataset",
    "DatasetError",
    "ParamRule",
    "blobs",
    "bounds_text",
    "circles",
    "dataset_param_names",
    "flower",
    "joint_param_problems",
    "load_dataset",
    "moons",
    "spiral",
]
