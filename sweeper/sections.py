"""The sections of a grid file checked one by one: training keys, grid axes, exclude,
keep_prob against architectures, ensemble and resources. :mod:`sweeper.spec` assembles them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sweeper.schema import TRAIN_RULES, Checker, canonical, plain
from sweeper.yamlload import Problem, path_key, show

MAX_POINTS = 1_000_000
"""The most grid points (before repeats) a sweep may have; more is surely a typo."""
MAX_TRIALS = 1_000_000
"""The most trials (grid points x seeds) a sweep may have."""


@dataclass(frozen=True)
class EnsembleSpec:
    """How the best trials are combined: Caruana selection, a top-k average, or not at all."""

    method: str = "caruana"
    size: int = 25
    candidates: int = 10
    init: int = 1
    k: int = 5


@dataclass(frozen=True)
class Resources:
    """What each trial asks of the cluster, and how hard the runner tries."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    timeout_s: float | None = None
    max_retries: int = 2
    allow_cpu_fallback: bool = False


def _points(grid: Any, exclude: Any) -> Iterator[tuple[tuple[str, Any], ...]]:
    keys = [key for key, _ in grid]
    for combo in itertools.product(*(values for _, values in grid)):
        point = tuple(zip(keys, combo))
        chosen = dict(point)
        if not any(all(chosen[k] == v for k, v in rule) for rule in exclude):
            yield point


def count_points(grid: Any, exclude: Any) -> int:
    """How many of ``grid``'s points ``exclude`` leaves, without building them all.

    Only the axes that some exclude entry names are walked; the others multiply.
    """
    sizes = {key: len(values) for key, values in grid}
    named = {key for entry in exclude for key, _ in entry}
    free = math.prod(n for key, n in sizes.items() if key not in named)
    if not exclude:
        return free
    walked = tuple((key, values) for key, values in grid if key in named)
    return free * sum(1 for _ in _points(walked, exclude))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _training(ck: Checker, data: Mapping[str, Any]) -> tuple[dict[str, tuple], dict[str, Any]]:
    """``grid`` and ``fixed``: their valid entries, canonical, in file order."""
    grid_raw, fixed_raw = _dict(data.get("grid")), _dict(data.get("fixed"))
    if isinstance(data.get("grid"), dict) and not grid_raw:
        ck.add(("grid",), "got an empty grid; grid must map at least one training setting "
               "to a list of candidates")
    fixed = {k: canonical(k, v) for k, v in ck.mapping(("fixed",), fixed_raw, TRAIN_RULES).items()}
    grid = {}
    for key, values in grid_raw.items():
        if key not in TRAIN_RULES:
            ck.unknown(("grid", path_key(key)), key, TRAIN_RULES)
        else:
            axis = _axis(ck, key, values)
            if axis is not None:
                grid[key] = axis
    for key in grid_raw.keys() & fixed_raw.keys() & TRAIN_RULES.keys():
        ck.add(("fixed", key), f"got {key} in both grid (line {ck.line(('grid', key))}) and "
               f"fixed (line {ck.line(('fixed', key))}); a key is in grid or fixed, never both")
    if "architecture" not in grid_raw and "architecture" not in fixed_raw:
        ck.add(("fixed", "architecture"), "got no architecture; architecture is required, in "
               f"grid or fixed, and must be {TRAIN_RULES['architecture'].describe()}")
    return grid, fixed


def _axis(ck: Checker, key: str, values: Any) -> tuple | None:
    """One grid axis: a non-empty list of distinct valid candidates, canonical."""
    path, rule = ("grid", key), TRAIN_RULES[key]
    if not isinstance(values, list) or not values:
        ck.add(path, f"got {show(values)}; a grid axis must be a non-empty list of candidates, "
               f"each {rule.describe()} (one value belongs under fixed)")
        return None
    if key == "architecture" and all(type(v) is int for v in values):  # [10, 5] for [[10, 5]]
        ck.add(path, f"got {show(values)}; in grid, architecture must be a list of candidate "
               f"architectures, each {rule.describe()}; for one, write [{show(values)}]")
        return None
    good = [ck.value((*path, i), v, key, rule) for i, v in enumerate(values)]
    if not all(good):
        return None
    axis = [canonical(key, v) for v in values]
    first = {}
    for i, value in enumerate(axis):
        if value in first:
            ck.add((*path, i), f"got {show(values[i])} again (first at {key}[{first[value]}]); "
                   "the candidates of a grid axis must differ")
        first.setdefault(value, i)
    return tuple(axis) if len(first) == len(axis) else None


def _exclude(ck: Checker, entries: list, grid: dict[str, tuple], grid_raw: Any) -> list[tuple]:
    """``exclude``: each entry a partial point over grid axes, with values from those axes."""
    axes = [key for key in _dict(grid_raw) if key in TRAIN_RULES]
    out = []
    for i, entry in enumerate(entries):
        path = ("exclude", i)
        if not isinstance(entry, dict):
            ck.add(path, f"got {show(entry)}; an exclude entry must be a mapping of grid axes "
                   f"to values, such as {{{axes[0] if axes else 'lambda'}: ...}}")
            continue
        if not entry:
            ck.add(path, "got {}; an empty exclude entry would leave out every point; give "
                   "grid axes and their values")
            continue
        rule = []
        for key, value in entry.items():
            if key not in axes:
                if key not in _dict(grid_raw):  # a bad grid key is reported in grid
                    ck.unknown((*path, path_key(key)), key, axes, what="not a grid axis:")
            elif key in grid:
                valid = TRAIN_RULES[key].accepts(value)
                if not valid or canonical(key, value) not in grid[key]:
                    shown = ", ".join(show(plain(v)) for v in grid[key])
                    ck.add((*path, key), f"got {show(value)}; exclude values must be among "
                           f"grid.{key}: {shown}")
                else:
                    rule.append((key, canonical(key, value)))
        if len(rule) == len(entry):
            out.append(tuple(rule))
    return out


def _keep_prob_lengths(ck: Checker, grid: dict, fixed: dict, exclude: list) -> None:
    """A keep_prob list must have one value per hidden layer of every architecture it meets."""
    archs = grid.get("architecture") or [fixed[k] for k in ("architecture",) if k in fixed]
    if "keep_prob" in grid:
        candidates = [(("grid", "keep_prob", i), kp) for i, kp in enumerate(grid["keep_prob"])]
    else:
        candidates = [(("fixed", "keep_prob"), fixed["keep_prob"])] if "keep_prob" in fixed else []
    pair_rules = [dict(r) for r in exclude if {k for k, _ in r} <= {"keep_prob", "architecture"}]
    # exclude names grid axes only: a clash of fixed values cannot be excluded.
    escape = ""
    if "architecture" in grid:
        escape = f" (or exclude {'the pair' if 'keep_prob' in grid else 'that architecture'})"
    for path, kp in candidates:
        if not isinstance(kp, tuple):
            continue
        clash = [a for a in archs if len(a) != len(kp) and not any(
            r.get("keep_prob", kp) == kp and r.get("architecture", a) == a for r in pair_rules)]
        if clash:
            meets = ", ".join(f"{show(a)} ({len(a)} hidden layer{'' if len(a) == 1 else 's'})" for a in clash)
            ck.add(path, f"got {show(kp)} ({len(kp)} values); it meets architecture {meets}; "
                   f"keep_prob must be {TRAIN_RULES['keep_prob'].describe()}{escape}")


def _count_points(ck: Checker, grid: dict, exclude: list, bad_grid: set) -> int:
    """Grid points after exclude; problems for a grid too large or excluded to nothing."""
    if bad_grid or not grid:
        return 0
    total = math.prod(len(v) for v in grid.values())
    if total > MAX_POINTS:
        ck.add(("grid",), f"got {total:,} grid points; a sweep may have at most {MAX_POINTS:,}")
        return 0
    n = count_points(tuple(grid.items()), exclude)
    if n == 0:
        ck.add(("exclude",), f"got exclude rules that leave none of the {total} grid points; "
               "exclude must leave at least one")
    return n


def _count_trials(ck: Checker, n_points: int, seeds: int) -> None:
    """Points times repeats, within :data:`MAX_TRIALS`."""
    if n_points * seeds > MAX_TRIALS:
        ck.add(("seeds",), f"got {seeds:,} seeds x {n_points:,} grid points = "
               f"{n_points * seeds:,} trials; a sweep may have at most {MAX_TRIALS:,} trials")


def _ensemble(ck: Checker, section: dict) -> EnsembleSpec:
    ens = EnsembleSpec(**section)
    for limit in ("size", "candidates"):
        if ens.method == "caruana" and ens.init > getattr(ens, limit):
            ck.add(("ensemble", "init"), f"got {ens.init}; init must be <= {limit} "
                   f"({getattr(ens, limit)}): the Caruana ensemble starts from init of the "
                   "best candidates")
    return ens


def _ensemble_warnings(filename: str, ck: Checker, ens: EnsembleSpec, n_trials: int) -> tuple:
    """Ensembles that ask for more than the sweep can give: they run, smaller.

    A Caruana ``size`` above ``candidates`` is not one of them: selection is with
    replacement, so 25 rounds over 10 candidates is the usual case, not a mistake.
    """
    said = []
    written = ("ensemble", "candidates") in ck.locations  # the default 10 is no one's mistake
    if ens.method != "none" and ens.candidates > n_trials and written:
        said.append(("candidates", (f"{ens.candidates} candidates, but the sweep has "
                                    f"{n_trials} trials; the ensemble draws from all of them")))
    if ens.method == "top_k" and ens.k > min(ens.candidates, n_trials):
        said.append(("k", (f"k={ens.k}, but top_k can average at most "
                           f"{min(ens.candidates, n_trials)} (the candidates, or the trials "
                           "if fewer)")))
    return tuple(str(Problem(filename, f"ensemble.{key}", ck.line(("ensemble", key)), msg))
                 for key, msg in said)


def _resources(section: dict) -> Resources:
    floats = {k: float(v) for k, v in section.items() if k in ("cpus_per_trial", "gpus_per_trial")}
    if section.get("timeout_s") is not None:
        floats["timeout_s"] = float(section["timeout_s"])
    return Resources(**{**section, **floats})


__all__ = ["MAX_POINTS", "MAX_TRIALS", "EnsembleSpec", "Resources", "count_points"]
