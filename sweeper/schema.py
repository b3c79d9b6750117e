"""What a ``grid.yaml`` may say, stated once as tables of constraints.

Every setting maps to a :class:`Rule` (the vocabulary is in :mod:`sweeper.constraints`):
a few constraints, any one of which a value may meet, and an optional note. One template
renders every complaint, so each message carries the bad value and what is allowed
(scikit-learn's ``_parameter_constraints`` habit), then a hint where one helps.
:class:`Checker` walks mappings against these tables and collects :class:`Problem`
records instead of raising at the first one; :func:`check_dataset` and
:func:`check_split` check the two sections whose keys depend on each other. The built-in
datasets' parameters follow ``core.datasets.PARAM_RULES``, turned into this vocabulary.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.config import (
    ACTIVATION_NAMES,
    DEFAULTS,
    DTYPE_NAMES,
    INITIALIZER_NAMES,
    OPTIMIZER_NAMES,
    TRAIN_KEYS,
)
from core.datasets import (
    BUNDLED,
    GENERATED,
    PARAM_RULES,
    ParamRule,
    dataset_param_names,
    joint_param_problems,
)
from sweeper.constraints import (
    BOOL,
    FALSE,
    MAPPING,
    NULL,
    TEXT,
    WHOLE,
    Fields,
    Kind,
    ListOf,
    MlflowName,
    Num,
    OneOf,
    Rule,
    rule,
)
from sweeper.yamlload import Problem, format_path, number_text_hint, path_key, show

Path_ = tuple  # a YAML path: keys (str, or yamlload.Key) and sequence indices (int)


def type_name(value: Any) -> str:
    """``a list``, ``a mapping``, ``a string``: for complaints about the shape of a section."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return show(value)


_KEEP = Num(0.001, 1)  # a mask decides in steps of 1/65,536; below 0.001 nothing is left to learn from
_POS_INT = Num(1, integer=True)
_POSITIVE = Num(0, low_open=True)
_NONNEG = Num(0)

EARLY_STOPPING = Fields(
    {"patience": rule(_POS_INT), "min_delta": rule(_NONNEG)}, required=("patience",)
)

# The training settings as a user writes them: ``lambda``, and early stopping as a mapping.
TRAIN_RULES: dict[str, Rule] = {
    "architecture": rule(ListOf(_POS_INT), note="the hidden layer sizes"),
    "activation": rule(OneOf(ACTIVATION_NAMES)),
    "initializer": rule(OneOf(INITIALIZER_NAMES)),
    "init_scale": rule(_POSITIVE),
    "lambda": rule(_NONNEG),
    "l1": rule(_NONNEG),
    "keep_prob": rule(_KEEP, ListOf(_KEEP), text="a number in [0.001, 1], one for all hidden layers "
                      "or a list with one per hidden layer"),
    "optimizer": rule(OneOf(OPTIMIZER_NAMES)),
    "learning_rate": rule(_POSITIVE),
    "lr_decay": rule(_NONNEG),
    "beta1": rule(Num(0, 1, high_open=True)),
    "beta2": rule(Num(0, 1, high_open=True)),
    "epsilon": rule(_POSITIVE),
    "epochs": rule(_POS_INT),
    "batch_size": rule(_POS_INT, NULL, note="null trains on the full batch"),
    "early_stopping": rule(EARLY_STOPPING, NULL, FALSE),
    "divergence_factor": rule(Num(1, low_open=True)),
    "normalize": rule(BOOL),
    "dtype": rule(OneOf(DTYPE_NAMES)),
}
if set(TRAIN_RULES) != {k.split(".")[0] for k in TRAIN_KEYS}:
    raise ImportError("sweeper.schema.TRAIN_RULES and core.config.TRAIN_KEYS disagree")

ENSEMBLE_METHODS = ("caruana", "top_k", "none")
ENSEMBLE_RULES: dict[str, Rule] = {
    "method": rule(OneOf(ENSEMBLE_METHODS)),
    "size": rule(_POS_INT, note="the rounds of Caruana selection"),
    "candidates": rule(_POS_INT, note="the best trials the ensemble may draw from"),
    "init": rule(_POS_INT, note="the best trials that start a Caruana ensemble"),
    "k": rule(_POS_INT, note="the trials a top_k ensemble averages"),
}
RESOURCE_RULES: dict[str, Rule] = {
    "cpus_per_trial": rule(_POSITIVE),
    # Ray takes a fraction of one GPU or whole GPUs, never 1.5.
    "gpus_per_trial": rule(Num(0, 1), WHOLE, note="a fraction of one GPU shares it"),
    "timeout_s": rule(_POSITIVE, NULL, note="null for no timeout"),
    "max_retries": rule(Num(0, integer=True)),
    "allow_cpu_fallback": rule(BOOL),
}
TRACKING_RULES: dict[str, Rule] = {
    "history_points": rule(Num(2, integer=True), NULL,
                           note="most points logged per history metric; null: 200 on a database, "
                                "25 on a tracking server"),
}
SPLIT_RULES: dict[str, Rule] = {
    part: rule(Num(0, 1, low_open=True, high_open=True)) for part in ("train", "dev", "test")
}
MAX_SEEDS = 1000
"""The most repeats of a grid point; more is surely a typo (and would take forever to plan)."""
LIST_OF_MAPPINGS = Kind(lambda v: isinstance(v, list), "a list of mappings")

# ``dataset``, ``split``, ``grid``, ``fixed`` and ``exclude`` have shapes of their own;
# their rule here only names the shape, the spec checks the inside.
TOP_RULES: dict[str, Rule] = {
    "name": rule(MlflowName(), note="the MLflow experiment and registered model name"),
    "seed": rule(Num(0, integer=True), note="the root of every random stream"),
    "seeds": rule(Num(1, MAX_SEEDS, integer=True), note="repeats of every grid point"),
    "baseline_error": rule(Num(0, 1), note="human-level or Bayes error"),
    "dataset": rule(MAPPING, note="with one of name, path or train/dev/test"),
    "split": rule(OneOf(("auto",)), Fields(SPLIT_RULES, required=("train", "dev", "test"))),
    "grid": rule(MAPPING, note="from training settings to lists of candidates"),
    "fixed": rule(MAPPING, NULL, note="from training settings to one value each"),
    # Only the list is checked here; each entry gets its own problem (sections._exclude).
    "exclude": rule(LIST_OF_MAPPINGS, NULL, note="partial grid points to leave out"),
    "ensemble": rule(Fields(ENSEMBLE_RULES), NULL, note="null for the defaults"),
    "resources": rule(Fields(RESOURCE_RULES), NULL, note="null for the defaults"),
    "tracking": rule(Fields(TRACKING_RULES), NULL, note="null for the defaults"),
}
TOP_REQUIRED = ("name", "dataset", "grid")


def canonical(key: str, value: Any) -> Any:
    """A valid training value in the one form used for equality, expansion and digests.

    Lists become tuples, ints become floats where the setting is a float (``lambda: 0``
    and ``lambda: 0.0`` are the same trial), and early stopping becomes
    ``(("patience", p), ("min_delta", d))`` or ``None``.
    """
    if key == "early_stopping":
        if not value:
            return None
        delta = float(value.get("min_delta", DEFAULTS["early_stopping.min_delta"]))
        return (("patience", int(value["patience"])), ("min_delta", delta))
    as_float = isinstance(DEFAULTS.get(key), float)
    if isinstance(value, list):
        return tuple(float(v) if as_float else v for v in value)
    if as_float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def plain(value: Any) -> Any:
    """The inverse of :func:`canonical`'s shapes, for showing: tuples of pairs as dicts."""
    if isinstance(value, tuple) and value and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
    ):
        return dict(value)
    return value


FILE_TYPES = (".csv", ".npz")


def _param_constraint(param: ParamRule) -> Any:
    if param.pair:
        return Kind(param.accepts, param.describe())
    return Num(param.low, param.high, param.low_open, param.high_open, param.integer)


# The generators' parameters, from the rules core.datasets checks with, in this schema's terms.
DATASET_RULES: dict[str, Rule] = {k: rule(_param_constraint(p)) for k, p in PARAM_RULES.items()}


def builtin_datasets() -> dict[str, tuple[str, ...]]:
    """Each built-in dataset's name and the parameters it takes, from ``core.datasets``."""
    return {name: dataset_param_names(name) for name in (*GENERATED, *BUNDLED)}


# --------------------------------------------------------------------------- the checker


def _number_hint(value: Any, rule_: Rule) -> str:
    """For text that reads as a number where a number is expected (YAML 1.1's ``1e-3``)."""
    numbers = rule_.numbers()
    items = value if isinstance(value, list) else [value]
    text = next((v for v in items if isinstance(v, str)), None)
    if not numbers or text is None:
        return ""
    return number_text_hint(text, integer=all(n.integer for n in numbers))


class Checker:
    """Collects problems of one file, placing each on the line the loader recorded."""

    def __init__(self, filename: str, locations: Mapping[Path_, int]):
        self.filename = filename
        self.locations = locations
        self.problems: list[Problem] = []

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor the loader saw."""
        path = tuple(path)
        while path:
            if path in self.locations:
                return self.locations[path]
            path = path[:-1]
        return self.locations.get(())

    def add(self, path: Path_, message: str, line: int | None = None) -> None:
        where = line if line is not None else self.line(path)
        shown = format_path(path)
        if any(p.path == shown for p in self.problems):
            return  # the loader already reported this value (a refused tag read as null)
        self.problems.append(Problem(self.filename, shown, where, message))

    def bad(self, path: Path_, value: Any, name: str, rule_: Rule) -> None:
        """The one message template: the bad value, then what is allowed, then a hint."""
        names = [o for c in rule_.anyof if isinstance(c, OneOf) for o in c.options]
        close = difflib.get_close_matches(value, names, n=1) if isinstance(value, str) else []
        hints = [f"did you mean {close[0]}?"] if close else []
        hints += [w for w in (rule_.why(value), _number_hint(value, rule_)) if w]
        hint = "".join(f"; {h}" for h in hints)
        self.add(path, f"got {show(value)}; {name} must be {rule_.describe()}{hint}")

    def unknown(
        self, path: Path_, key: Any, allowed: Iterable[str], what: str = "unknown key",
        takes: str = "",
    ) -> None:
        """A key that is not allowed here, with the closest allowed one as a suggestion.

        ``takes`` replaces the ``allowed: ...`` list when nothing is close.
        """
        allowed = [str(a) for a in allowed]
        close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) else []
        listed = takes or f"allowed: {', '.join(allowed) or 'none'}"
        self.add(path, f"{what} {show(key)}; {f'did you mean {close[0]}?' if close else listed}")

    def value(self, path: Path_, value: Any, name: str, rule_: Rule) -> bool:
        """Checks one value; a mapping rule recurses into its fields. True when valid."""
        fields = rule_.fields()
        if fields is not None and isinstance(value, dict):
            before = len(self.problems)
            self.mapping(path, value, fields.rules, fields.required)
            return len(self.problems) == before
        if rule_.accepts(value):
            return True
        self.bad(path, value, name, rule_)
        return False

    def mapping(
        self,
        path: Path_,
        data: Mapping[Any, Any],
        rules: Mapping[str, Rule],
        required: Iterable[str] = (),
        extra_keys: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Checks a mapping against a table; returns its valid entries.

        Keys in ``extra_keys`` are allowed and returned unchecked, for the caller.
        """
        extra = set(extra_keys)
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in extra:
                out[key] = value
            elif key not in rules:
                self.unknown((*path, path_key(key)), key, [*rules, *extra_keys])
            elif self.value((*path, key), value, key, rules[key]):
                out[key] = value
        for key in required:
            if key not in data:
                self.add((*path, key), f"required key {key} is missing; {key} must be "
                         f"{rules[key].describe() if key in rules else 'given'}")
        return out


def check_dataset(ck: Checker, data: Any, base_dir: Path) -> Any:
    """``dataset``: exactly one source; file paths resolved against ``base_dir``.

    Returns:
        The section's valid entries, files as absolute paths, lists as tuples; or
        ``None`` when it has problems.
    """
    if not isinstance(data, dict):
        return None  # missing or not a mapping: the top-level check said so
    before = len(ck.problems)
    files = [k for k in ("train", "dev", "test") if k in data]
    sources = [k for k in ("name", "path") if k in data] + (["train/dev/test"] if files else [])
    if len(sources) != 1:
        got = " and ".join(sources) if sources else f"keys {', '.join(map(str, data)) or 'none'}"
        ck.add(("dataset",), f"got {got}; dataset must give exactly one of name (a built-in), "
               "path (one .csv or .npz file) or train, dev and test (three files)")
        return None
    if sources == ["name"]:
        out = _builtin_dataset(ck, data)
    else:
        keys = ("path",) if sources == ["path"] else ("train", "dev", "test")
        rules = {k: rule(TEXT, note="a .csv or .npz file") for k in keys}
        rules["target"] = rule(TEXT, note="the label column")
        out = ck.mapping(("dataset",), data, rules, required=(*keys, "target"))
        for key in keys:
            if key in out:
                out[key] = _data_file(ck, key, out[key], base_dir)
    if len(ck.problems) > before:
        return None
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


def _builtin_dataset(ck: Checker, data: dict) -> dict:
    """A built-in dataset's name and parameters, each parameter against its rule."""
    catalogue = builtin_datasets()
    name = data["name"]
    if not ck.value(("dataset", "name"), name, "name", rule(OneOf(tuple(catalogue)))):
        return data  # which parameters it takes is unknown: no more to say
    takes = catalogue[name]
    before = len(ck.problems)
    for key, value in data.items():
        if key == "name":
            continue
        path = ("dataset", path_key(key))
        if not takes:
            ck.add(path, f"unknown key {show(key)}; {name} takes no parameters, only name")
        elif key not in takes:
            ck.unknown(path, key, takes, takes=f"{name} takes {', '.join(takes)}")
        else:
            ck.value(path, value, key, DATASET_RULES[key])
    if len(ck.problems) == before and takes:
        params = {k: v for k, v in data.items() if k != "name"}
        for key, message in joint_param_problems(name, params):
            ck.add(("dataset", key), message)
    return data


def _data_file(ck: Checker, key: str, value: str, base_dir: Path) -> str:
    resolved = Path(value).expanduser()
    resolved = (resolved if resolved.is_absolute() else base_dir / resolved).resolve()
    if resolved.suffix.lower() not in FILE_TYPES:
        ck.add(("dataset", key), f"got {show(value)}; {key} must be a .csv or .npz file")
    elif not resolved.is_file():
        ck.add(("dataset", key), f"got {show(value)}, but there is no file {resolved}; {key} "
               "must name an existing .csv or .npz file, relative to the grid file's folder")
    return str(resolved)


def check_split(ck: Checker, value: Any, dataset: Mapping[str, Any] | None) -> Any:
    """``split``: ``"auto"`` or train/dev/test fractions summing to 1, as a tuple."""
    if not isinstance(value, dict) or not SPLIT_RULES.keys() <= value.keys():
        return "auto"  # valid "auto", or a problem the top-level check reported
    parts = tuple(value[k] for k in ("train", "dev", "test"))
    if not all(SPLIT_RULES["train"].accepts(p) for p in parts):
        return "auto"
    if abs(sum(parts) - 1.0) > 1e-9:
        ck.add(("split",), f"got {show(value)} (sum {sum(parts):g}); the train, dev and test "
               "fractions must sum to 1")
    if dataset is not None and "train" in dataset:
        ck.add(("split",), f"got {show(value)}; split must be auto (or left out) when the "
               "dataset gives train, dev and test files")
    return tuple(float(p) for p in parts)


__all__ = [
    "DATASET_RULES", "ENSEMBLE_METHODS", "ENSEMBLE_RULES", "MAX_SEEDS", "RESOURCE_RULES",
    "SPLIT_RULES", "TOP_REQUIRED", "TOP_RULES", "TRAIN_RULES", "Checker", "Fields", "Kind",
    "ListOf", "MlflowName", "Num", "OneOf", "Rule", "builtin_datasets", "canonical",
    "check_dataset", "check_split", "plain", "rule", "type_name",
]
