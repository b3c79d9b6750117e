"""Reading datasets from users' CSV and NPZ files, one file or train/dev/test files.

Every problem of a file is collected and raised as one :class:`DatasetError`. NPZ files
are opened with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import math
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .datasets import _SHOWN, Dataset, DatasetError, _make_dataset


@dataclass(frozen=True, eq=False)
class _Table:
    X: np.ndarray
    labels: np.ndarray
    feature_names: tuple[str, ...]


_LARGEST = float(np.finfo(np.float32).max)
"""Feature values beyond this overflow float32, the training dtype by default (and their
squares overflow even float64 long before 1e308, so no variance could be taken)."""


def _rows_text(cells: Sequence[tuple[int, str]] | Sequence[int], unit: str = "row") -> str:
    shown = [f"{unit} {c[0]} {c[1]!r}" if isinstance(c, tuple) else f"{unit} {c}"
             for c in cells[:_SHOWN]]
    more = f" (and {len(cells) - _SHOWN} more)" if len(cells) > _SHOWN else ""
    return ", ".join(shown) + more


def _parse_numbers(path: Path, column: str, cells: list[str], rows: list[int],
                   problems: list[str]) -> np.ndarray | None:
    try:  # fast path: numpy parses a clean column in one call
        values = np.array(cells, dtype=np.float64)
        if np.isfinite(values).all():
            huge = [r for r, v in zip(rows, values) if abs(v) > _LARGEST]
            if not huge:
                return values
            problems.append(f"{path}: column {column!r} holds values beyond float32's range "
                            f"(±3.4e38): {_rows_text(huge)}; rescale the column")
            return None
    except ValueError:
        pass
    empty = [r for r, c in zip(rows, cells) if not c]
    text = [(r, c) for r, c in zip(rows, cells) if c and not _is_number_text(c)]
    if empty:
        problems.append(f"{path}: column {column!r} has empty cells: {_rows_text(empty)}; "
                        "every cell needs a value")
    if text:
        problems.append(f"{path}: column {column!r} holds values that are not finite "
                        f"numbers: {_rows_text(text)}; feature columns must be numeric "
                        "(only the target column may hold text)")
    return None


def _is_number_text(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _parse_labels(path: Path, column: str, cells: list[str], rows: list[int],
                  problems: list[str]) -> np.ndarray:
    empty = [r for r, c in zip(rows, cells) if not c]
    if empty:
        problems.append(f"{path}: target column {column!r} has empty cells: "
                        f"{_rows_text(empty)}; every example needs a label")
    for kind in (int, float):  # numbers stay numbers: labels 0/1 answer as 0/1
        try:
            return np.array([kind(c) for c in cells])
        except ValueError:
            continue
    return np.array(cells, dtype=str)


def _read_csv_records(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            records = [(i, row) for i, row in enumerate(csv.reader(f), start=1)
                       if row and not (len(row) == 1 and not row[0].strip())]
    except (UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot read as CSV text ({err}); "
                           "expected UTF-8 comma-separated values with a header row") from err
    if not records:
        raise DatasetError(f"{path}: the file is empty; expected a header row and data rows")
    if len(records) == 1:
        raise DatasetError(f"{path}: the file has a header row but no data rows")
    return records


def _read_csv(path: Path, target: str) -> _Table:
    records = _read_csv_records(path)
    header = [c.strip() for c in records[0][1]]
    if target not in header:
        raise DatasetError(f"{path}: no target column {target!r}; "
                           f"the columns are: {', '.join(map(repr, header))}")
    problems = []
    if len(set(header)) != len(header) or "" in header:
        problems.append(f"{path}: row {records[0][0]}: column names must be distinct "
                        f"and non-empty; got {header}")
    ragged = [(i, len(row)) for i, row in records[1:] if len(row) != len(header)]
    if ragged:
        shown = ", ".join(f"row {i} has {n}" for i, n in ragged[:_SHOWN])
        more = f" (and {len(ragged) - _SHOWN} more rows)" if len(ragged) > _SHOWN else ""
        problems.append(f"{path}: rows with the wrong number of cells: {shown}{more}; "
                        f"the header has {len(header)} columns")
    body = [(i, row) for i, row in records[1:] if len(row) == len(header)]
    rows = [i for i, _ in body]
    columns = [[c.strip() for c in col] for col in zip(*(row for _, row in body))]
    if not columns:
        raise DatasetError(problems)
    features = [_parse_numbers(path, name, col, rows, problems)
                for name, col in zip(header, columns) if name != target]
    labels = _parse_labels(path, target, columns[header.index(target)], rows, problems)
    if not features:
        problems.append(f"{path}: no feature columns besides the target {target!r}")
    if problems:
        raise DatasetError(problems)
    names = tuple(n for n in header if n != target)
    return _Table(np.column_stack(features), labels, names)


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
        raise DatasetError(f"{path}: not a .npz (zip) file; a .npz is the zip of .npy arrays "
                           "that numpy.savez writes (comma-separated text belongs in a .csv)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, AttributeError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read as .npz without pickle ({err}); expected "
                           "numeric feature arrays and a numeric or string target") from err
    others = [key for key, value in arrays.items() if not isinstance(value, np.ndarray)]
    if others:  # numpy hands back the raw bytes of a member that is not a .npy array
        what = "is not a .npy array" if len(others) == 1 else "are not .npy arrays"
        raise DatasetError(f"{path}: {_listed(others)} {what}; a .npz must hold only arrays, "
                           "as numpy.savez writes them")
    return arrays


def _listed(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names[:_SHOWN]) + (
        f" (and {len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def _npz_labels(path: Path, target: str, labels: np.ndarray, problems: list[str]) -> np.ndarray:
    """Byte-string labels as text, and a problem for any label that is no number or text."""
    if labels.dtype.kind == "S":
        try:
            return np.char.decode(labels, "utf-8")
        except UnicodeDecodeError:
            bad = next(b for b in labels.tolist() if not _is_utf8(b))
            problems.append(f"{path}: target {target!r} holds byte strings that are not UTF-8 "
                            f"text (e.g. {bad!r}); labels must be numbers or UTF-8 text")
            return labels
    if labels.dtype.kind == "f":
        _check_numeric(path, target, labels, problems)
    elif labels.dtype.kind not in "biuU":
        problems.append(f"{path}: target {target!r} has dtype {labels.dtype}; "
                        "expected numbers or strings")
    return labels


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_numeric(path: Path, name: str, values: np.ndarray, problems: list[str]) -> None:
    if values.dtype.kind not in "biuf":
        problems.append(f"{path}: array {name!r} has dtype {values.dtype} "
                        f"(e.g. {values.flat[0].item()!r}); feature arrays must be numeric")
    elif values.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
        if bad.size:
            problems.append(f"{path}: array {name!r} holds NaN or infinity at "
                            f"{_rows_text([int(i) for i in bad], 'row index')}; "
                            "values must be finite")
    if values.dtype.kind in "iuf" and values.size:
        huge = np.flatnonzero((np.abs(values.reshape(len(values), -1)) > _LARGEST).any(axis=1))
        if huge.size:
            problems.append(f"{path}: array {name!r} holds values beyond float32's range "
                            f"(±3.4e38) at {_rows_text([int(i) for i in huge], 'row index')}; "
                            "rescale them")


def _npz_features(path: Path, arrays: dict[str, np.ndarray], m: int,
                  problems: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    if "X" in arrays:  # layout 1: a 2-D X (other arrays are ignored)
        X, columns = arrays["X"], {"X": arrays["X"]}
        shape_ok = X.ndim == 2 and X.shape[0] == m and X.shape[1] >= 1
        if not shape_ok:
            problems.append(f"{path}: array 'X' has shape {X.shape}; expected ({m}, n) with "
                            "n >= 1 feature columns")
    else:  # layout 2: one 1-D array per feature column, named by its key
        columns = arrays
        bad = [f"{k!r} {v.shape}" for k, v in columns.items() if v.shape != (m,)]
        shape_ok = bool(columns) and not bad
        if not shape_ok:
            problems.append(f"{path}: expected 'X' (m, n) or 1-D feature arrays of shape "
                            f"({m},) like the target; got {', '.join(bad) or 'no features'}")
    if not shape_ok:
        return np.zeros((0, 0)), ()
    for key, values in columns.items():
        _check_numeric(path, key, values, problems)
    if "X" in arrays:
        return arrays["X"], tuple(f"x{i}" for i in range(arrays["X"].shape[1]))
    return np.column_stack(list(columns.values())), tuple(columns)


def _read_npz(path: Path, target: str) -> _Table:
    arrays = _npz_arrays(path)
    if target not in arrays:
        raise DatasetError(f"{path}: no target array {target!r}; "
                           f"the arrays are: {', '.join(map(repr, arrays))}")
    labels = arrays.pop(target)
    if labels.ndim != 1 or labels.size == 0:
        raise DatasetError(f"{path}: target {target!r} has shape {labels.shape}; "
                           "expected (m,) with m >= 1")
    problems: list[str] = []
    labels = _npz_labels(path, target, labels, problems)
    X, names = _npz_features(path, arrays, len(labels), problems)
    if problems:
        raise DatasetError(problems)
    return _Table(X.astype(np.float64), labels, names)


_READERS: dict[str, Callable[[Path, str], _Table]] = {".csv": _read_csv, ".npz": _read_npz}


def _read_file(base_dir: Path, where: str, value: Any, target: str) -> _Table:
    if not isinstance(value, (str, Path)) or not str(value):
        raise DatasetError(f"{where}: {value!r} is not a file path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base_dir / path).resolve()
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(f"{where}: {path}: unknown file type {path.suffix!r}; "
                           f"allowed: {', '.join(_READERS)}")
    if not path.is_file():
        raise DatasetError(f"{where}: file not found: {path}")
    return reader(path, target)


def read_single_file(config: Mapping[str, Any], base_dir: Path) -> Dataset:
    table = _read_file(base_dir, "dataset.path", config["path"], config["target"])
    return _make_dataset(table.X, table.labels, table.feature_names,
                         Path(config["path"]).stem, f"dataset.path ({config['path']})")


def read_split_files(config: Mapping[str, Any], base_dir: Path) -> Dataset:
    tables, problems = {}, []
    for part in ("train", "dev", "test"):
        try:
            tables[part] = _read_file(base_dir, f"dataset.{part}", config[part], config["target"])
        except DatasetError as err:
            problems.extend(err.problems)
    if problems:
        raise DatasetError(problems)
    names = tables["train"].feature_names
    for part in ("dev", "test"):
        other = tables[part].feature_names
        if set(other) != set(names) or len(other) != len(names):
            problems.append(f"dataset.{part} ({config[part]}): its feature columns differ from "
                            f"the train file's: missing {sorted(set(names) - set(other))}, "
                            f"extra {sorted(set(other) - set(names))}")
    if problems:
        raise DatasetError(problems)
    blocks = [t.X[:, [t.feature_names.index(n) for n in names]] for t in tables.values()]
    labels = [t.labels for t in tables.values()]
    if any(lab.dtype.kind == "U" for lab in labels):  # one text file makes every label text
        labels = [lab.astype(str) for lab in labels]
    _check_split_classes(config, labels)
    sizes = tuple(len(lab) for lab in labels)
    return _make_dataset(np.vstack(blocks), np.concatenate(labels), names,
                         Path(config["train"]).stem, "dataset", sizes)


def _check_split_classes(config: Mapping[str, Any], labels: list[np.ndarray]) -> None:
    """The train file must hold two classes; dev or test classes it lacks only warn.

    A class the model never saw in training can still be scored (every such example is an
    error), so it is a questionable choice, not a broken one.
    """
    train = np.unique(labels[0])
    if len(train) < 2:
        raise DatasetError(f"dataset.train ({config['train']}): the target has one class "
                           f"({train[0].item()!r}) in {len(labels[0])} examples; the train "
                           "file needs at least 2 classes to learn from")
    for part, lab in zip(("dev", "test"), labels[1:]):
        unseen = np.setdiff1d(np.unique(lab), train)
        if unseen.size:
            count = int(np.isin(lab, unseen).sum())
            shown = ", ".join(repr(c.item()) for c in unseen[:_SHOWN])
            more = f" and {unseen.size - _SHOWN} more" if unseen.size > _SHOWN else ""
            warnings.warn(f"dataset.{part} ({config[part]}): {count} of {len(lab)} examples "
                          f"have classes the train file lacks ({shown}{more}); the model never "
                          "trains on them, so expect those examples to count as errors",
                          UserWarning, stacklevel=4)


__all__ = ["read_single_file", "read_split_files"]
