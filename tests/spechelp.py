"""Helpers for the grid-file validation tests: parse, find a problem, check its parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.spec import Problem, SpecError, parse_spec


def spec_error(text: str, base_dir: Path | str = ".") -> SpecError:
    with pytest.raises(SpecError) as err:
        parse_spec(text, "grid.yaml", base_dir)
    return err.value


def find(err: SpecError, path: str) -> Problem:
    found = [p for p in err.problems if p.path == path]
    assert found, f"no problem at {path!r} in:\n{err}"
    return found[0]


def assert_problem(err: SpecError, line: int | None, path: str, *fragments: str) -> Problem:
    problem = find(err, path)
    text = str(problem)
    assert problem.line == line, text
    assert text.startswith(f"grid.yaml:{line}: {path}: " if line else f"grid.yaml: {path}: "), text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return problem


# A valid grid: the lambda axis on line 4, ensemble on line 7, resources on line 8.
VALID = """\
name: t
dataset: {name: circles}
grid:
  lambda: [0, 0.01]
fixed:
  architecture: [4]
ensemble: {method: caruana}
resources: {cpus_per_trial: 1}
"""

KEEP = "a number in [0.001, 1], one for all hidden layers or a list with one per hidden layer"
ARCH = "a non-empty list of integers >= 1"
NONNEG = "a finite number >= 0"
POS = "a finite number > 0"
