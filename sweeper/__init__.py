"""sweeper: hyperparameter sweeps for fully-connected networks on Ray, tracked in MLflow.

The public surface, for use from Python as well as from the ``sweeper`` command:

- the grid file: :func:`load_spec`, :func:`parse_spec`, :func:`expand`, :class:`SweepSpec`,
  :class:`TrialSpec`, :class:`SpecError`;
- a submission: :func:`plan` (data and trials), :func:`submit` (run, log, rank, ship),
  :class:`RunOptions`, :class:`SweepOutcome`, :class:`TrialResult`;
- what comes after: :func:`leaderboard`, :func:`caruana`, :func:`top_k`,
  :class:`EnsembleModel`, :func:`build_report`;
- MLflow: :class:`Tracker`.

Names load on first use, so ``import sweeper`` (and ``sweeper --help``) stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "load_spec": "spec", "parse_spec": "spec", "expand": "spec", "SweepSpec": "spec",
    "TrialSpec": "spec", "SpecError": "spec",
    "plan": "sweep", "submit": "sweep", "SweepOutcome": "sweep",
    "RunOptions": "runner", "TrialResult": "results",
    "leaderboard": "ranking", "caruana": "ensemble", "top_k": "ensemble",
    "EnsembleModel": "model", "build_report": "report", "Tracker": "tracking",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sweeper' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
