"""A guarded YAML reader that remembers where every key and item came from.

PyYAML's ``SafeLoader`` already refuses to build Python objects; on top of it this
reader refuses duplicate keys (instead of keeping the last), unknown tags, oversized
files, deep nesting and alias bombs, and records the line of every mapping key and
sequence item so the spec can say ``grid.yaml:12: grid.keep_prob[2]: ...``. Its
:class:`Problem` is the record every check of a grid file reports with.

The document is composed into PyYAML nodes (which aliases share, so composing is linear
in the text) and then built by one walk that counts every node it produces, so a
"billion laughs" file stops after ``max_nodes`` values, not a billion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a grid file.

    Attributes:
        file: The file name as the user gave it.
        path: The YAML path, like ``grid.keep_prob[2]``; ``""`` for the whole file.
        line: 1-based line, where known.
        message: What is wrong: the bad value and what is allowed.
    """

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass(frozen=True)
class Key:
    """A mapping key that is not a string (``1``, ``null``, ``true``) as part of a YAML path.

    Sequence indices are plain ints in a path, so a mapping's int key must not be one:
    ``grid: {1: [2]}`` is ``grid.1``, not ``grid[1]``.
    """

    value: Any

    def __str__(self) -> str:
        return _show(self.value)


def path_key(key: Any) -> Any:
    """A mapping key as a path part: strings as they are, anything else as a :class:`Key`."""
    return key if isinstance(key, str) else Key(key)


def format_path(path: Iterable[Any]) -> str:
    """Renders ``("grid", "keep_prob", 2)`` as ``grid.keep_prob[2]``.

    Ints are sequence indices; a mapping's non-string keys come as :class:`Key`
    (see :func:`path_key`) and show as YAML spells them: ``fixed.null``.
    """
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = str(part) if isinstance(part, (str, Key)) else _show(part)
            out += f".{text}" if out else text
    return out


def show(value: Any, limit: int = 80) -> str:
    """A value as the user would recognise it: YAML spellings, strings quoted."""
    text = _show(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)


def number_text_hint(text: str, integer: bool = False) -> str:
    """Why a number came out as text, and how to write it, or ``""`` if it is no number.

    YAML 1.1 (PyYAML's) reads ``1e-3`` as a string: a float needs a dot, and an exponent
    a sign (``1.0e-3``). A number in quotes is text too.
    """
    try:
        number = float(text)
    except ValueError:
        return ""
    if not math.isfinite(number) or not text.strip():
        return ""
    if isinstance(yaml.safe_load(text), (int, float)):
        return f"quoted, {text} is text; write it without quotes"
    if integer and number.is_integer():
        return f"YAML reads {text} as text; write {int(number)}"
    mantissa, _, exponent = text.strip().lower().replace("_", "").partition("e")
    spellings = [] if "e" in repr(number) else [repr(number)]
    if exponent:
        mantissa = mantissa if "." in mantissa else mantissa + ".0"
        exponent = exponent if exponent[0] in "+-" else "+" + exponent
        spellings.append(f"{mantissa}e{exponent}")
    return f"YAML reads {text} as text; write {' or '.join(spellings) or repr(number)}"


MAX_BYTES = 1 << 20
MAX_NODES = 10_000
MAX_DEPTH = 64

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("null", "bool", "int", "float", "str", "timestamp")}
_SEQ_TAG, _MAP_TAG, _MERGE_TAG = _STD + "seq", _STD + "map", _STD + "merge"

Locations = dict[tuple, int]


class YamlError(Exception):
    """A file that is not acceptable YAML; ``problems`` says every way it is not."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Stop(Exception):
    """Aborts reading: a limit was passed and going on would only cost time."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line, self.message = line, message


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that counts and bounds the nodes it composes and their depth."""

    def __init__(self, stream: str, max_nodes: int):
        super().__init__(stream)
        self.max_nodes = max_nodes
        self.composed = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.composed += 1
        self.depth += 1
        try:
            if self.composed > self.max_nodes:
                raise _Stop(_line(self.peek_event()), _too_many(self.max_nodes))
            if self.depth > MAX_DEPTH:
                raise _Stop(_line(self.peek_event()), _too_deep())
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _line(node_or_event: Any) -> int | None:
    mark = getattr(node_or_event, "start_mark", None)
    return None if mark is None else mark.line + 1


def _too_many(limit: int) -> str:
    return (f"the document holds more than {limit:,} values once aliases are expanded; "
            "a grid file needs far fewer (is this an alias bomb?)")


def _too_deep() -> str:
    return (f"lists and mappings nest deeper than {MAX_DEPTH} levels (or an alias contains "
            "itself); a grid file needs a few levels")


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


class _Builder:
    """Turns composed nodes into plain dicts, lists and scalars, recording lines."""

    def __init__(self, loader: _GuardedLoader, filename: str, max_nodes: int):
        self.loader = loader
        self.filename = filename
        self.max_nodes = max_nodes
        self.built = 0
        self.problems: list[Problem] = []

    def problem(self, path: tuple, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.filename, format_path(path), line, message))

    def build(self, node: yaml.Node, path: tuple, locs: Locations, depth: int = 0) -> Any:
        self.built += 1
        if self.built > self.max_nodes:
            raise _Stop(_line(node), _too_many(self.max_nodes))
        if depth > MAX_DEPTH:  # a recursive alias, such as &a [*a]
            raise _Stop(_line(node), _too_deep())
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
            out = []
            for i, item in enumerate(node.value):
                locs[(*path, i)] = _line(item)
                out.append(self.build(item, (*path, i), locs, depth + 1))
            return out
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
            return self.mapping(node, path, locs, depth)
        self.problem(path, _line(node), f"got tag {_tag_name(node.tag)}; only plain YAML "
                     "values are allowed: strings, numbers, booleans, null, lists and mappings")
        return None

    def scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        construct = SafeConstructor.yaml_constructors[node.tag]
        try:
            return construct(self.loader, node)
        except ValueError as exc:  # an int too long to convert, a date like 2024-13-45
            self.problem(path, _line(node), f"got {show(node.value)}; cannot read it as "
                         f"{_tag_name(node.tag)}: {exc}")
            return None

    def mapping(self, node: yaml.MappingNode, path: tuple, locs: Locations, depth: int) -> dict:
        out: dict[Any, Any] = {}
        first_line: dict[Any, int | None] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            line = _line(key_node)
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                self.problem(path, line, "got a list, mapping or tagged value as a key; "
                             "keys must be plain strings")
                continue
            key = self.scalar(key_node, path)
            part = path_key(key)
            if key in first_line:
                self.problem((*path, part), line, f"duplicate key {show(key)} (first at line "
                             f"{first_line[key]}, again at line {line}); a key may appear "
                             "once in a mapping")
                continue
            first_line[key] = line
            locs[(*path, part)] = line
            out[key] = self.build(value_node, (*path, part), locs, depth + 1)
        for merge in merges:
            self.merge(merge, path, locs, depth, out)
        return out

    def merge(self, node: yaml.Node, path: tuple, locs: Locations, depth: int, out: dict) -> None:
        """``<<: *base``: the mapping's own keys win, then earlier merged mappings."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problem(path, _line(source), "got a merge (<<) of something other than "
                             "a mapping; << takes a mapping or a list of mappings")
                continue
            theirs: Locations = {}
            merged = self.mapping(source, path, theirs, depth + 1)
            for key, value in merged.items():
                if key not in out:
                    out[key] = value
                    prefix = (*path, path_key(key))
                    locs.update({p: ln for p, ln in theirs.items() if p[: len(prefix)] == prefix})


def load_yaml(
    text: str,
    filename: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
    recoverable: list[Problem] | None = None,
) -> tuple[Any, Locations]:
    """Reads one YAML document safely.

    Args:
        text: The document.
        filename: How problems name the file.
        max_bytes: Larger texts are refused before parsing.
        max_nodes: The most values the document may hold, aliases expanded.
        recoverable: When given, problems that leave a usable document (a duplicate key,
            whose first value is kept; a refused tag, read as null) are appended here
            instead of raised, so the caller can report them with its own.

    Returns:
        ``(data, locations)``: plain dicts, lists and scalars (``None`` for an empty
        document), and the 1-based line of every mapping key and sequence item by path,
        such as ``("grid", "keep_prob", 2)``; ``()`` is the document itself.

    Raises:
        YamlError: With every problem found: syntax, duplicate keys, unsafe or unknown
            tags, or a passed limit.
    """
    # Every character is at least one byte, so a long text is refused without encoding it.
    size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise YamlError([too_large(filename, size, max_bytes)])
    loader = _GuardedLoader(text, max_nodes)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        builder = _Builder(loader, filename, max_nodes)
        locations: Locations = {(): _line(root)}
        data = builder.build(root, (), locations)
    except _Stop as stop:
        raise YamlError([Problem(filename, "", stop.line, stop.message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise YamlError([_syntax_problem(filename, exc)]) from None
    except yaml.YAMLError as exc:  # unmarked reader errors, such as a control character
        raise YamlError([Problem(filename, "", None, f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise YamlError([Problem(filename, "", None, _too_deep())]) from None
    finally:
        loader.dispose()
    if builder.problems:
        if recoverable is None:
            raise YamlError(builder.problems)
        recoverable.extend(builder.problems)
    return data, locations


def too_large(filename: str, size: int, limit: int = MAX_BYTES) -> Problem:
    """The problem of a file refused for its size, before anything parses it."""
    return Problem(filename, "", None, f"the file is {size:,} bytes; the limit is {limit:,} "
                   "bytes, far more than a grid file needs")


def _syntax_problem(filename: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = None if mark is None else mark.line + 1
    column = "" if mark is None else f", column {mark.column + 1}"
    what = "; ".join(str(s) for s in (exc.context, exc.problem) if s)
    return Problem(filename, "", line, f"YAML syntax error at line {line}{column}: {what}")


__all__ = [
    "MAX_BYTES", "MAX_NODES", "Key", "Locations", "Problem", "YamlError",
    "format_path", "load_yaml", "number_text_hint", "path_key", "show", "too_large",
]
