"""The built-in generators and the rules their parameters follow, stated once as data.

Each generator is ``fn(rng, **params) -> (X, y)`` and draws every random number from the
``np.random.Generator`` it is given. :data:`PARAM_RULES` says what each parameter allows;
:mod:`core.datasets` checks with it, and so does sweeper's grid-file schema.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np


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


def _is_real(v: Any) -> bool:
    return (isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
            and math.isfinite(v))


@dataclass(frozen=True)
class ParamRule:
    """What one generator parameter allows, stated once as data.

    The core checks with it when it loads a dataset, and sweeper's grid-file schema turns
    it into its own constraint, so a bad value is reported with the rest of the file.

    Attributes:
        low, high: Bounds; ``None`` for none.
        low_open, high_open: Whether a bound itself is excluded.
        integer: Whole ints only (never a float or a boolean).
        pair: ``[low, high]`` of two numbers within the bounds, the first the smaller.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    pair: bool = False

    def _number(self, v: Any) -> bool:
        if not _is_real(v) or (self.integer and not isinstance(v, (int, np.integer))):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def accepts(self, v: Any) -> bool:
        if self.pair:
            return (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(self._number, v))
                    and v[0] < v[1])
        return self._number(v)

    def describe(self) -> str:
        if self.pair:
            return "[low, high]: two finite numbers with low < high"
        noun = "an integer" if self.integer else "a number"
        return f"{noun} {bounds_text(self.low, self.high, self.low_open, self.high_open)}".rstrip()


def bounds_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """``in [0, 1)``, ``> 0`` or ``''``: the bounds as every message about a number says them.

    sweeper's grid-file constraints say theirs with it too, so both read alike.
    """
    if low is not None and high is not None:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        return f"in {lo}{_num(low)}, {_num(high)}{hi}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_num(low)}"
    return ""


def _num(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}" if abs(x) >= 100_000 else str(int(x))
    return repr(x)


MAX_GENERATED_VALUES = 20_000_000
"""The most values (examples x features) a generator makes: 160 MB of float64."""

PARAM_RULES: Mapping[str, ParamRule] = MappingProxyType({
    "n_samples": ParamRule(2, 10_000_000, integer=True),
    "noise": ParamRule(0),
    "factor": ParamRule(0, 1, low_open=True, high_open=True),
    "radius": ParamRule(0, low_open=True),
    "classes": ParamRule(2, 1000, integer=True),
    "n_features": ParamRule(1, 10_000, integer=True),
    "cluster_std": ParamRule(0, low_open=True),
    "center_box": ParamRule(pair=True),
})
"""Each generator parameter's allowed values, by the name written in YAML."""


GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "circles": circles, "moons": moons, "flower": flower, "spiral": spiral, "blobs": blobs,
}


def joint_param_problems(name: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems between a generator's parameters, each valid alone, as ``(key, message)``.

    Too few points for the classes, or more values (points x features) than
    :data:`MAX_GENERATED_VALUES`. A problem is placed on a parameter the user wrote.
    """
    defaults = {k: p.default for k, p in inspect.signature(GENERATORS[name]).parameters.items()
                if k != "rng"}
    given = {**defaults, **params}
    n, k, f = given["n_samples"], given.get("classes", 2), given.get("n_features", 2)
    out = []
    if n < k:
        key = "n_samples" if "n_samples" in params else "classes"
        out.append((key, (f"got {given[key]}; n_samples must be >= classes (here {n} points "
                          f"for {k} classes)")))
    if n * f > MAX_GENERATED_VALUES:
        key = "n_samples" if "n_samples" in params or "n_features" not in params else "n_features"
        out.append((key, (f"got {given[key]:,}; n_samples x n_features must be at most "
                          f"{MAX_GENERATED_VALUES:,} (here {n:,} x {f:,} = {n * f:,})")))
    return out


__all__ = [
    "GENERATORS", "MAX_GENERATED_VALUES", "PARAM_RULES", "ParamRule", "blobs", "bounds_text", "circles",
    "flower", "joint_param_problems", "moons", "spiral",
]
