"""Datasets: built-in generators, scikit-learn's bundled data, and CSV / NPZ files.

Every source ends as a :class:`Dataset`: ``X`` is ``m x n`` float64 (examples are rows),
``y`` is ``(m,)`` int64 indices into ``classes``, the sorted original label values, so a
served model can answer labels in the data's own values. Generators draw every random
number from the ``np.random.Generator`` they are given. Problems with the data raise one
:class:`DatasetError` that lists every problem found.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

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
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DatasetError(f"{where}: the target has one class ({classes[0].item()!r}) in "
                           f"{len(labels)} examples; a classifier needs at least 2")
    return Dataset(X, y.reshape(-1), classes, tuple(names), name, predefined)


# ---------------------------------------------------------------- generators


def _class_sizes(n_samples: int, classes: int) -> np.ndarray:
    return np.array([n_samples // classes + (j < n_samples % classes) for j in range(classes)])


def circles(rng: np.random.Generator, n_samples: int = 400, noise: float = 0.05,
            factor: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric rings: outer radius 1 (class 0), inner radius ``factor`` (class 1).

    Args:
        rng: Source of every random draw.
        n_samples: Number of points, split evenly between the rings.
        noise: Standard deviation of the Gaussian noise added to each coordinate.
        factor: Inner radius over outer radius, between 0 and 1.
    """
    y = np.repeat([0, 1], _class_sizes(n_samples, 2))
    t = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    r = np.where(y == 0, 1.0, factor)
    X = np.c_[r * np.cos(t), r * np.sin(t)] + rng.normal(0.0, noise, (n_samples, 2))
    return X, y


def moons(rng: np.random.Generator, n_samples: int = 400,
          noise: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles.

    Args:
        rng: Source of every random draw.
        n_samples: Number of points, split evenly between the moons.
        noise: Standard deviation of the Gaussian noise added to each coordinate.
    """
    sizes = _class_sizes(n_samples, 2)
    t_out, t_in = rng.uniform(0.0, np.pi, sizes[0]), rng.uniform(0.0, np.pi, sizes[1])
    outer = np.c_[np.cos(t_out), np.sin(t_out)]
    inner = np.c_[1.0 - np.cos(t_in), 0.5 - np.sin(t_in)]
    X = np.vstack([outer, inner]) + rng.normal(0.0, noise, (n_samples, 2))
    return X, np.repeat([0, 1], sizes)


def flower(rng: np.random.Generator, n_samples: int = 400, noise: float = 0.2,
           radius: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """The course's planar 'flower': two classes of interleaved petals.

    Args:
        rng: Source of every random draw.
        n_samples: Number of points, half per class.
        noise: Standard deviation of the noise on the angle and on the ray (0.2 in the course).
        radius: Maximum ray of a petal (``a`` in the course).
    """
    blocks = []
    for j, n in enumerate(_class_sizes(n_samples, 2)):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + rng.normal(0.0, 1.0, n) * noise
        r = radius * np.sin(4.0 * t) + rng.normal(0.0, 1.0, n) * noise
        blocks.append(np.c_[r * np.sin(t), r * np.cos(t)])
    return np.vstack(blocks), np.repeat([0, 1], _class_sizes(n_samples, 2))


def spiral(rng: np.random.Generator, n_samples: int = 300, noise: float = 0.2,
           classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A spiral with one arm per class (CS231n).

    Args:
        rng: Source of every random draw.
        n_samples: Number of points, split evenly between the arms.
        noise: Standard deviation of the noise on each point's angle.
        classes: Number of arms.
    """
    sizes = _class_sizes(n_samples, classes)
    blocks = []
    for j, n in enumerate(sizes):
        r = np.linspace(0.0, 1.0, n)
        t = np.linspace(j * 4.0, (j + 1) * 4.0, n) + rng.normal(0.0, noise, n)
        blocks.append(np.c_[r * np.sin(t), r * np.cos(t)])
    return np.vstack(blocks), np.repeat(np.arange(classes), sizes)


def blobs(rng: np.random.Generator, n_samples: int = 300, classes: int = 3,
          n_features: int = 2, cluster_std: float = 1.0,
          center_box: Sequence[float] = (-10.0, 10.0)) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs, one per class.

    Args:
        rng: Source of every random draw.
        n_samples: Number of points, split evenly between the blobs.
        classes: Number of blobs.
        n_features: Dimension of each point.
        cluster_std: Standard deviation of each blob.
        center_box: ``[low, high]``: the centers are drawn uniformly in this box.
    """
    y = np.repeat(np.arange(classes), _class_sizes(n_samples, classes))
    centers = rng.uniform(center_box[0], center_box[1], (classes, n_features))
    return centers[y] + rng.normal(0.0, cluster_std, (n_samples, n_features)), y


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)


def _is_box(v: Any) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(_is_real, v))
            and v[0] < v[1])


# Each generator parameter's rule, stated once: (accepts, what is allowed).
_PARAM_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_samples": (lambda v: _is_int(v) and v >= 2, "an integer >= 2"),
    "noise": (lambda v: _is_real(v) and v >= 0, "a number >= 0"),
    "factor": (lambda v: _is_real(v) and 0 < v < 1, "a number between 0 and 1"),
    "radius": (lambda v: _is_real(v) and v > 0, "a number > 0"),
    "classes": (lambda v: _is_int(v) and v >= 2, "an integer >= 2"),
    "n_features": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "cluster_std": (lambda v: _is_real(v) and v > 0, "a number > 0"),
    "center_box": (_is_box, "[low, high] with low < high"),
}

_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "circles": circles, "moons": moons, "flower": flower, "spiral": spiral, "blobs": blobs,
}


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


def _check_params(name: str, params: Mapping[str, Any]) -> None:
    allowed = dataset_param_names(name)
    problems = []
    for key, value in params.items():
        if key not in allowed:
            problems.append(f"dataset.{key}: {name!r} takes no key {key!r}; "
                            f"allowed: {', '.join(allowed) or 'none'}")
        elif not _PARAM_RULES[key][0](value):
            problems.append(f"dataset.{key}: {value!r} is not allowed; "
                            f"expected {_PARAM_RULES[key][1]}")
    if not problems and "classes" in allowed:
        defaults = inspect.signature(_GENERATORS[name]).parameters
        n, k = (params.get(p, defaults[p].default) for p in ("n_samples", "classes"))
        if n < k:
            problems.append(f"dataset.n_samples: {n} points cannot fill {k} classes")
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
    "Dataset",
    "DatasetError",
    "GENERATED",
    "blobs",
    "circles",
    "dataset_param_names",
    "flower",
    "load_dataset",
    "moons",
    "spiral",
]
