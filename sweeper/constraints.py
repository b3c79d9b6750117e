"""The vocabulary the grid-file schema states its rules in.

A :class:`Rule` is a few constraints, any one of which a value may meet: :class:`Num`,
:class:`OneOf`, :class:`Kind`, :class:`ListOf` and :class:`Fields`. Each constraint
answers ``accepts(value)`` and ``describe(plural)``, so one template can say what is
allowed; a constraint may also answer ``why(value)``, the one thing a rejected value
gets wrong, when saying only what is allowed would leave the user guessing.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.datasets import bounds_text


def _finite(v: float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond any float
        return False




@dataclass(frozen=True)
class Num:
    """A finite number (never a boolean) within optional bounds; ``integer`` for ints only."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def accepts(self, v: Any) -> bool:
        kinds = int if self.integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, kinds) or not _finite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def describe(self, plural: bool = False) -> str:
        noun = "integer" if self.integer else "number"
        if self.high is None and not self.integer:
            noun = "finite " + noun
        noun = noun + "s" if plural else ("an " if noun[0] in "aeiou" else "a ") + noun
        return f"{noun} {bounds_text(self.low, self.high, self.low_open, self.high_open)}".rstrip()


@dataclass(frozen=True)
class OneOf:
    """One of a few names (strings only, so ``true`` never passes for ``"true"``)."""

    options: tuple[str, ...]

    def accepts(self, v: Any) -> bool:
        return isinstance(v, str) and v in self.options

    def describe(self, plural: bool = False) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Kind:
    """Values of one kind: a test, and how to say it in the singular and the plural."""

    test: Callable[[Any], bool]
    what: str
    whats: str = ""

    def accepts(self, v: Any) -> bool:
        return self.test(v)

    def describe(self, plural: bool = False) -> str:
        return (self.whats or self.what) if plural else self.what


def _plain(v: Any) -> bool:
    items = v if isinstance(v, list) else [v]
    return all(isinstance(x, (str, int, float, type(None))) for x in items)


NULL = Kind(lambda v: v is None, "null")
FALSE = Kind(lambda v: v is False, "false")
BOOL = Kind(lambda v: isinstance(v, bool), "true or false")
TEXT = Kind(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string",
            "non-empty strings")
MAPPING = Kind(lambda v: isinstance(v, dict), "a mapping", "mappings")
PLAIN = Kind(_plain, "a number, string, boolean, null or a list of them")
WHOLE = Kind(lambda v: Num(1).accepts(v) and float(v).is_integer(), "a whole number >= 1",
             "whole numbers >= 1")


@dataclass(frozen=True)
class MlflowName:
    """A name MLflow takes both for an experiment and for a registered model.

    MLflow refuses ``/`` and ``:`` in model names, and ``.`` or a leading ``..``
    (``mlflow.utils.validation._validate_model_name``). Its API takes experiment names
    of up to 500 characters, but its SQL stores keep experiment and registered-model
    names in 256-character columns, which PostgreSQL and MySQL enforce: ``limit``.
    ``room`` leaves space for the suffix sweeper adds (``-single``). Control characters
    and spaces at either end are refused too: they make names that look alike and
    ``models:/`` URIs that cannot be typed.
    """

    room: int = len("-single")
    limit: int = 256

    @property
    def longest(self) -> int:
        return self.limit - self.room

    def why(self, v: Any) -> str:
        """What is wrong with ``v``, or ``""``."""
        if not isinstance(v, str) or not v:
            return ""
        bad = sorted({c for c in v if c in "/:"})
        if bad:
            return "it contains " + " and ".join(repr(c) for c in bad)
        if any(unicodedata.category(c) == "Cc" for c in v):
            return "it contains a control character (a tab, a line break...)"
        if v != v.strip():
            return "it starts or ends with a space"
        if len(v) > self.longest:
            return f"it has {len(v):,} characters"
        if v == "." or v.startswith(".."):
            return "MLflow refuses '.' and names starting with '..' (it reads them as paths)"
        return ""

    def accepts(self, v: Any) -> bool:
        return isinstance(v, str) and bool(v) and not self.why(v)

    def describe(self, plural: bool = False) -> str:
        return (f"a string of 1 to {self.longest} characters without '/', ':', control "
                "characters or spaces at either end")


@dataclass(frozen=True)
class ListOf:
    """A list whose items all meet ``item``; non-empty unless ``empty`` is true."""

    item: Any
    empty: bool = False

    def accepts(self, v: Any) -> bool:
        return isinstance(v, list) and (self.empty or bool(v)) and all(map(self.item.accepts, v))

    def describe(self, plural: bool = False) -> str:
        kind = "list" if self.empty else "non-empty list"
        return f"{kind + 's' if plural else 'a ' + kind} of {self.item.describe(True)}"


@dataclass(frozen=True)
class Fields:
    """A mapping of known keys, each meeting its own rule (see ``Checker.mapping``)."""

    rules: Mapping[str, Rule]
    required: tuple[str, ...] = ()

    def accepts(self, v: Any) -> bool:
        return (
            isinstance(v, dict)
            and all(k in self.rules and self.rules[k].accepts(x) for k, x in v.items())
            and all(k in v for k in self.required)
        )

    def describe(self, plural: bool = False) -> str:
        inner = ", ".join(f"{k}: {r.describe()}" for k, r in self.rules.items())
        return ("mappings" if plural else "a mapping") + " {" + inner + "}"


@dataclass(frozen=True)
class Rule:
    """What one setting allows: any of ``anyof``; ``note`` adds meaning, ``text`` rewords."""

    anyof: tuple[Any, ...]
    note: str = ""
    text: str = ""

    def accepts(self, v: Any) -> bool:
        return any(c.accepts(v) for c in self.anyof)

    def fields(self) -> Fields | None:
        return next((c for c in self.anyof if isinstance(c, Fields)), None)

    def numbers(self) -> list[Num]:
        """The number constraints a value or a list item may meet."""
        found = [c.item if isinstance(c, ListOf) else c for c in self.anyof]
        return [c for c in found if isinstance(c, Num)]

    def why(self, v: Any) -> str:
        """The first constraint's word on what ``v`` gets wrong, or ``""``."""
        return next((w for c in self.anyof if (w := getattr(c, "why", lambda _: "")(v))), "")

    def describe(self) -> str:
        text = self.text or " or ".join(c.describe() for c in self.anyof)
        return f"{text}, {self.note}" if self.note else text


def rule(*anyof: Any, note: str = "", text: str = "") -> Rule:
    return Rule(tuple(anyof), note, text)


__all__ = [
    "BOOL", "FALSE", "MAPPING", "NULL", "PLAIN", "TEXT", "WHOLE", "Fields", "Kind", "ListOf",
    "MlflowName", "Num", "OneOf", "Rule", "rule",
]
