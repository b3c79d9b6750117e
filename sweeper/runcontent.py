"""What a trial's MLflow run holds, apart from how it is sent: its params as MLflow's
strings, its history as metrics (thinned to a number of points per key, with the final
values one step past the last epoch) and the whole history as CSV."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .results import TrialResult

HISTORY_POINTS = 200
"""Most points kept per history metric; longer histories are thinned evenly."""
SERVER_HISTORY_POINTS = 25
"""The same on a tracking server, where every metric row costs the server about 0.15 ms
of CPU on top of about 40 ms a run (five requests): 500 values would triple a trial's
cost. The run's ``history.csv`` keeps every epoch either way."""


def thin_steps(n: int, keep: int = HISTORY_POINTS, must: Iterable[int] = ()) -> list[int]:
    """Evenly spaced step indices of a history of ``n`` points, first and last included.

    Args:
        n: History length.
        keep: Most indices to return (plus any in ``must``).
        must: Indices always kept, such as the best epoch.
    """
    if n <= keep:
        return list(range(n))
    steps = {int(round(i * (n - 1) / (keep - 1))) for i in range(keep)}
    steps.update(i for i in must if 0 <= i < n)
    return sorted(steps)


def finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def param_strings(params: dict[str, Any]) -> dict[str, str]:
    """Params as MLflow stores them (strings; lists as JSON)."""
    return {k: param_value(v) for k, v in params.items()}


def param_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    if value is None:
        return "null"
    return str(value)


def history_csv(history: dict[str, Sequence[float]]) -> bytes:
    """A trial's whole history as CSV: an ``epoch`` column, then one per metric.

    Values are written exactly (``repr``); a metric shorter than the rest leaves its
    later cells empty.
    """
    keys = list(history)
    rows = [",".join(["epoch", *keys])]
    for epoch in range(max((len(v) for v in history.values()), default=0)):
        cells = [repr(float(history[k][epoch])) if epoch < len(history[k]) else "" for k in keys]
        rows.append(",".join([str(epoch), *cells]))
    return ("\n".join(rows) + "\n").encode()


def trial_metrics(result: "TrialResult", keep: int = HISTORY_POINTS) -> Iterator[Any]:
    """History with the epoch as step, then the final values.

    Finals share keys with the history (``dev_error``) and are logged one step past the
    last epoch, so MLflow's latest value of a key is the final one (the restored best
    weights' under early stopping) and the curve stays browsable in the UI.
    """
    from mlflow.entities import Metric

    ts = result.ended_ms
    out = result.outcome
    finals: dict[str, Any] = {"train_seconds": result.seconds}
    last = 0
    if out is not None:
        last = out.epochs_run
        for key, series in out.history.items():
            for step in thin_steps(len(series), keep, must=(out.best_epoch,)):
                value = finite(series[step])
                if value is not None:
                    yield Metric(key, value, ts, step)
        finals.update(
            train_error=out.train_error,
            dev_error=out.dev_error,
            train_cost=out.train_cost,
            n_params=out.n_params,
            best_epoch=out.best_epoch,
            epochs_run=out.epochs_run,
        )
    for key, value in finals.items():
        value = finite(value)
        if value is not None:
            yield Metric(key, value, ts, last)
