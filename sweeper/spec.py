"""A sweep as the user wrote it (``grid.yaml``), checked, and expanded into trials.

:func:`load_spec` / :func:`parse_spec` read and validate a grid file into a frozen
:class:`SweepSpec`, reporting every problem at once in one :class:`SpecError`.
:func:`expand` turns it into :class:`TrialSpec` records, each with a sha256
:func:`trial_digest` of its configuration, the data's fingerprint and its seed. Seeds
come from :func:`derive_seed`, which depends on the root seed and the repeat index only,
so growing a grid changes no existing trial's digest.
"""

from __future__ import annotations

import codecs
import hashlib
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
    Checker,
    check_dataset,
    check_split,
    plain,
    type_name,
)
from sweeper.sections import (
    MAX_POINTS,
    MAX_TRIALS,
    EnsembleSpec,
    Resources,
    _count_points,
    _count_trials,
    _dict,
    _ensemble,
    _ensemble_warnings,
    _exclude,
    _keep_prob_lengths,
    _points,
    _resources,
    _training,
    count_points,
)
from sweeper.yamlload import MAX_BYTES, Problem, YamlError, load_yaml, show, too_large


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
        history_points: ``tracking.history_points``: most points logged per history
            metric; None leaves it to the tracker (by store).
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
    history_points: int | None = None
    warnings: tuple[str, ...] = ()

    def points(self) -> Iterator[tuple[tuple[str, Any], ...]]:
        """The grid points left after ``exclude``, in order (the last axis varies fastest)."""
        return _points(self.grid, self.exclude)

    def n_points(self) -> int:
        """The grid points left after ``exclude``, counted without building them."""
        return count_points(self.grid, self.exclude)

    def n_trials(self) -> int:
        """Grid points (after ``exclude``) times repeats, counted without building them.

        Cheap enough to check a trial budget before :func:`expand` or a plan: at most
        the product of the axes that ``exclude`` names is walked, never the trials.
        """
        return self.n_points() * self.seeds


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
    if (config.lambd or config.l1) and config.batch_size is not None:
        # Minibatch steps once scaled L2 and L1 by the batch's size, not the training
        # set's: trials that change meaning get a new identity, so no store reuses them.
        doc["penalty_m"] = "training set"
    text = json.dumps(_canonical_json(doc), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- expansion


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
    except OSError as exc:
        raise SpecError([Problem(name, "", None, f"cannot read {path.resolve()}: "
                                 f"{exc.strerror or exc}")]) from None
    return parse_spec(_decode(raw, name), name, path.parent, path=path.resolve())


def _decode(raw: bytes, name: str) -> str:
    """UTF-8 text (a byte-order mark dropped), or a problem at the first bad byte's line."""
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        column = exc.start - body.rfind(b"\n", 0, exc.start)
        message = (f"not UTF-8 text: byte 0x{body[exc.start]:02x} at column {column} "
                   f"({exc.reason}); save the file as UTF-8")
        raise SpecError([Problem(name, "", line, message)]) from None


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
    seeds = top.get("seeds", 1)
    _count_trials(ck, n_points, seeds)
    ensemble = _ensemble(ck, top.get("ensemble") or {})
    if ck.problems:
        raise SpecError(ck.problems)
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
        resources=_resources(top.get("resources") or {}),
        history_points=(top.get("tracking") or {}).get("history_points"),
        warnings=_ensemble_warnings(filename, ck, ensemble, n_points * seeds),
    )


__all__ = [
    "MAX_POINTS", "MAX_TRIALS", "EnsembleSpec", "FrozenMap", "Problem", "Resources", "SpecError",
    "SweepSpec", "TrialSpec", "data_seed", "derive_seed", "expand", "load_spec", "parse_spec",
    "trial_digest",
]
