"""A sweep as the user wrote it (``grid.yaml``), checked, and expanded into trials.

:func:`load_spec` / :func:`parse_spec` read and validate a grid file into a frozen
:class:`SweepSpec`, reporting every problem at once in one :class:`SpecError`.
:func:`expand` turns it into :class:`TrialSpec` records, each with a sha256
:func:`trial_digest` of its configuration, the data's fingerprint and its seed. Seeds
come from :func:`derive_seed`, which depends on the root seed and the repeat index only,
so growing a grid changes no existing trial's digest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DEFAULTS, TrainConfig
from sweeper.schema import (
    TOP_REQUIRED,
    TOP_RULES,
    TRAIN_RULES,
    Checker,
    canonical,
    check_dataset,
    check_split,
    plain,
    type_name,
)
from sweeper.yamlload import MAX_BYTES, Problem, YamlError, load_yaml, show, too_large

MAX_POINTS = 1_000_000
"""The most grid points (before repeats) a sweep may have; more is surely a typo."""


class SpecError(Exception):
    """A grid file with problems; ``problems`` lists every one, sorted by line."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        file = self.problems[0].file if self.problems else "grid.yaml"
        lines = [f"{file}: {n} problem{'' if n == 1 else 's'}:"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])


class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable, picklable mapping (the ``dataset`` section)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, Any] | Any = ()):
        self._data = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


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


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated grid file.

    Training values are canonical (see :func:`sweeper.schema.canonical`): lists are
    tuples, float settings are floats, early stopping is ``None`` or
    ``(("patience", p), ("min_delta", d))``.

    Attributes:
        path: The grid file, resolved; ``None`` when parsed from text.
        text: The file's text, as read.
        name: The MLflow experiment name.
        seed: The root seed.
        seeds: Repeats of every grid point, each with its own derived seed.
        baseline_error: Human-level or Bayes error for the bias/variance diagnosis.
        dataset: The dataset section; file paths resolved to absolute paths.
        split: ``"auto"`` or ``(train, dev, test)`` fractions.
        grid: ``(key, candidates)`` per axis, in file order.
        fixed: ``(key, value)`` per fixed setting, in file order.
        exclude: Partial points to leave out, each ``((key, value), ...)``.
        ensemble: The ensemble section.
        resources: The resources section.
        warnings: Questionable choices that still run, each ``file:line: path: message``.
    """

    path: Path | None = None
    text: str = ""
    name: str
    seed: int = 0
    seeds: int = 1
    baseline_error: float = 0.0
    dataset: FrozenMap
    split: str | tuple[float, float, float] = "auto"
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    exclude: tuple[tuple[tuple[str, Any], ...], ...] = ()
    ensemble: EnsembleSpec = field(default_factory=EnsembleSpec)
    resources: Resources = field(default_factory=Resources)
    warnings: tuple[str, ...] = ()

    def points(self) -> Iterator[tuple[tuple[str, Any], ...]]:
        """The grid points left after ``exclude``, in order (the last axis varies fastest)."""
        return _points(self.grid, self.exclude)

    def n_trials(self) -> int:
        """Grid points times repeats."""
        return sum(1 for _ in self.points()) * self.seeds


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a configuration, its repeat, its derived seed, and its digest.

    Attributes:
        config: The full training configuration.
        repeat: The repeat index, ``0 .. seeds - 1``.
        seed: ``derive_seed(root_seed, repeat)``.
        digest: ``trial_digest(config, fingerprint, seed)``, the trial's identity.
        point: This trial's grid-axis values under the YAML names.
    """

    config: TrainConfig
    repeat: int
    seed: int
    digest: str
    point: tuple[tuple[str, Any], ...]

    def params(self) -> dict[str, Any]:
        """Every setting under its YAML name, plus ``repeat`` and ``seed``."""
        return {**self.config.to_params(), "repeat": self.repeat, "seed": self.seed}

    def label(self) -> str:
        """The grid point in a few words, e.g. ``lambda=0.01 architecture=[10, 5]``."""
        return " ".join(f"{k}={v if isinstance(v, str) else show(plain(v))}" for k, v in self.point)


# --------------------------------------------------------------------------- seeds, digests


def derive_seed(root_seed: int, repeat: int) -> int:
    """The training seed of every trial of one repeat: a function of root and repeat only."""
    seq = np.random.SeedSequence(root_seed, spawn_key=(1, repeat))
    return int(seq.generate_state(1, dtype=np.uint64)[0])


def data_seed(root_seed: int) -> int:
    """The seed for generating and splitting the dataset."""
    seq = np.random.SeedSequence(root_seed, spawn_key=(0,))
    return int(seq.generate_state(1, dtype=np.uint64)[0])


def _canonical_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        # 0 and 0.0 are the same setting; integral floats are written as integers.
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, Mapping):
        return {str(k): _canonical_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_json(v) for v in value]
    raise TypeError(f"cannot digest {type(value).__name__}: {value!r}")


def trial_digest(config: TrainConfig, fingerprint: str, seed: int) -> str:
    """The sha256 of a trial's canonical configuration, data fingerprint and seed.

    JSON with sorted keys, lists for tuples and shortest round-trip floats, so equal
    settings give equal digests on every machine and Python version.
    """
    doc = {"config": config.to_params(), "data": fingerprint, "seed": int(seed)}
    text = json.dumps(_canonical_json(doc), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- expansion


def _points(grid: Any, exclude: Any) -> Iterator[tuple[tuple[str, Any], ...]]:
    keys = [key for key, _ in grid]
    for combo in itertools.product(*(values for _, values in grid)):
        point = tuple(zip(keys, combo))
        chosen = dict(point)
        if not any(all(chosen[k] == v for k, v in rule) for rule in exclude):
            yield point


def _flatten(items: Any) -> dict[str, Any]:
    """YAML settings to :class:`TrainConfig` keys: early stopping becomes dotted keys."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key == "early_stopping":
            stop = dict(value or ())
            out["early_stopping.patience"] = stop.get("patience")
            out["early_stopping.min_delta"] = stop.get(
                "min_delta", DEFAULTS["early_stopping.min_delta"]
            )
        else:
            out[key] = value
    return out


def expand(spec: SweepSpec, fingerprint: str) -> list[TrialSpec]:
    """Every trial of a sweep, repeat by repeat, grid points in order within a repeat.

    Args:
        spec: The validated sweep.
        fingerprint: The dataset's fingerprint, part of every digest.

    Returns:
        Trials over ``DEFAULTS``, then ``fixed``, then the point's own values.
    """
    base = {**DEFAULTS, **_flatten(spec.fixed)}
    points = list(spec.points())
    trials = []
    for repeat in range(spec.seeds):
        seed = derive_seed(spec.seed, repeat)
        for point in points:
            config = TrainConfig.from_params({**base, **_flatten(point)})
            digest = trial_digest(config, fingerprint, seed)
            trials.append(TrialSpec(config, repeat, seed, digest, point))
    return trials


# --------------------------------------------------------------------------- reading


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and validates a grid file.

    Raises:
        SpecError: Every problem in the file, or why it could not be read.
    """
    name = str(path)
    path = Path(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise SpecError([too_large(name, path.stat().st_size, MAX_BYTES)])
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise SpecError([Problem(name, "", None, f"cannot read {path.resolve()}: "
                                 f"{exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(name, "", None, f"not UTF-8 text: {exc}")]) from None
    return parse_spec(text, name, path.parent, path=path.resolve())


def parse_spec(
    text: str, filename: str = "grid.yaml", base_dir: str | Path = ".", *, path: Path | None = None
) -> SweepSpec:
    """Validates a grid file's text into a :class:`SweepSpec`.

    Args:
        text: The YAML.
        filename: How problems name the file.
        base_dir: The folder relative dataset paths start from.
        path: Recorded as :attr:`SweepSpec.path`.

    Raises:
        SpecError: Every problem found, at once.
    """
    yaml_problems: list[Problem] = []
    try:
        data, locations = load_yaml(text, filename, recoverable=yaml_problems)
    except YamlError as exc:
        raise SpecError(exc.problems) from None
    ck = Checker(filename, locations)
    ck.problems.extend(yaml_problems)
    if not isinstance(data, dict):
        what = "nothing (the file is empty)" if data is None else type_name(data)
        ck.add((), f"got {what}; a grid file must be a mapping with keys {', '.join(TOP_RULES)} "
               f"(required: {', '.join(TOP_REQUIRED)})")
        raise SpecError(ck.problems)
    top = ck.mapping((), data, TOP_RULES, TOP_REQUIRED)
    dataset = check_dataset(ck, top.get("dataset"), Path(base_dir))
    split = check_split(ck, top.get("split", "auto"), dataset)
    grid, fixed = _training(ck, data)
    exclude = _exclude(ck, top.get("exclude") or [], grid, data.get("grid"))
    _keep_prob_lengths(ck, grid, fixed, exclude)
    n_points = _count_points(ck, grid, exclude, bad_grid=set(_dict(data.get("grid"))) - set(grid))
    ensemble = _ensemble(ck, top.get("ensemble", {}))
    if ck.problems:
        raise SpecError(ck.problems)
    seeds = top.get("seeds", 1)
    return SweepSpec(
        path=path,
        text=text,
        name=top["name"],
        seed=top.get("seed", 0),
        seeds=seeds,
        baseline_error=float(top.get("baseline_error", 0.0)),
        dataset=FrozenMap(dataset),
        split=split,
        grid=tuple(grid.items()),
        fixed=tuple(fixed.items()),
        exclude=tuple(exclude),
        ensemble=ensemble,
        resources=_resources(top.get("resources", {})),
        warnings=_ensemble_warnings(filename, ck, ensemble, n_points * seeds),
    )


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
            ck.unknown(("grid", key), key, TRAIN_RULES)
        else:
            axis = _axis(ck, key, values)
            if axis is not None:
                grid[key] = axis
    for key in grid_raw.keys() & fixed_raw.keys():
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
    out = []
    for i, entry in enumerate(entries):
        path = ("exclude", i)
        if not entry:
            ck.add(path, "got {}; an empty exclude entry would leave out every point; give "
                   "grid axes and their values")
            continue
        rule = []
        for key, value in entry.items():
            if key not in _dict(grid_raw):
                ck.unknown((*path, key), key, _dict(grid_raw), what="not a grid axis:")
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
    for path, kp in candidates:
        if not isinstance(kp, tuple):
            continue
        clash = [a for a in archs if len(a) != len(kp) and not any(
            r.get("keep_prob", kp) == kp and r.get("architecture", a) == a for r in pair_rules)]
        if clash:
            meets = ", ".join(f"{show(a)} ({len(a)} hidden layers)" for a in clash)
            ck.add(path, f"got {show(kp)} ({len(kp)} values); it meets architecture {meets}; "
                   f"keep_prob must be {TRAIN_RULES['keep_prob'].describe()} (or exclude the pair)")


def _count_points(ck: Checker, grid: dict, exclude: list, bad_grid: set) -> int:
    """Grid points after exclude; problems for a grid too large or excluded to nothing."""
    if bad_grid or not grid:
        return 0
    total = math.prod(len(v) for v in grid.values())
    if total > MAX_POINTS:
        ck.add(("grid",), f"got {total:,} grid points; a sweep may have at most {MAX_POINTS:,}")
        return 0
    n = sum(1 for _ in _points(tuple(grid.items()), exclude)) if exclude else total
    if n == 0:
        ck.add(("exclude",), f"got exclude rules that leave none of the {total} grid points; "
               "exclude must leave at least one")
    return n


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


__all__ = [
    "MAX_POINTS", "EnsembleSpec", "FrozenMap", "Problem", "Resources", "SpecError", "SweepSpec",
    "TrialSpec", "data_seed", "derive_seed", "expand", "load_spec", "parse_spec", "trial_digest",
]
