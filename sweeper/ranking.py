"""The leaderboard: grid points ranked by mean dev error over their seeds.

Order: mean dev error, then its spread over seeds, then fewer parameters. A point none of
whose seeds finished is listed below the ranked ones with its status, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from core.diagnosis import diagnose

_NOT_CONFIG = ("repeat", "seed")


@dataclass(frozen=True)
class Entry:
    """One trial as ranking sees it, built from a result or from an MLflow run."""

    run_id: str
    digest: str
    label: str
    group: str  # canonical JSON of the configuration without seed and repeat
    status: str
    train_error: float
    dev_error: float
    n_params: int
    seed: int
    params: dict[str, str] = field(default_factory=dict, compare=False)
    """Every setting as MLflow stores it (strings), for reports and ensembles."""


@dataclass(frozen=True)
class Row:
    """One grid point of the leaderboard (its seeds aggregated)."""

    rank: int | None
    label: str
    dev_error: float
    dev_error_std: float
    train_error: float
    n_params: int
    seeds: int
    status: str
    avoidable_bias: float
    variance: float
    verdict: str
    recipe: str
    run_ids: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict, compare=False)


def group_key(params: dict[str, Any]) -> str:
    """The configuration a trial shares with its other seeds, as canonical JSON."""
    return json.dumps({k: v for k, v in params.items() if k not in _NOT_CONFIG}, sort_keys=True, default=str)


def _nan_if_missing(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def leaderboard(entries: Iterable[Entry], baseline_error: float = 0.0) -> list[Row]:
    """Aggregates trials over seeds and ranks the grid points.

    Args:
        entries: Every trial of the sweep.
        baseline_error: Human-level or Bayes error for the bias/variance diagnosis.
    """
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    rows = [_row(members, baseline_error) for members in groups.values()]
    ranked = sorted(
        (r for r in rows if r.status == "finished"),
        key=lambda r: (r.dev_error, r.dev_error_std, r.n_params, r.label),
    )
    others = sorted((r for r in rows if r.status != "finished"), key=lambda r: r.label)
    out = [_with_rank(r, i + 1) for i, r in enumerate(ranked)]
    return out + others


def _with_rank(row: Row, rank: int) -> Row:
    return Row(**{**asdict(row), "rank": rank})


def _row(members: Sequence[Entry], baseline_error: float) -> Row:
    ok = [m for m in members if m.status == "finished" and math.isfinite(m.dev_error)]
    dev = np.array([m.dev_error for m in ok], dtype=float)
    train = np.array([m.train_error for m in ok], dtype=float)
    if ok:
        status = "finished"
        dev_mean, dev_std, train_mean = float(dev.mean()), float(dev.std()), float(train.mean())
        d = diagnose(train_mean, dev_mean, baseline_error)
        bias, variance, verdict, recipe = d.avoidable_bias, d.variance, d.verdict, d.recipe
    else:
        status = "/".join(sorted({m.status for m in members}))
        dev_mean = dev_std = train_mean = bias = variance = float("nan")
        verdict, recipe = "", ""
    return Row(
        rank=None,
        label=members[0].label,
        dev_error=dev_mean,
        dev_error_std=dev_std,
        train_error=train_mean,
        n_params=max(m.n_params for m in members),
        seeds=len(ok),
        status=status,
        avoidable_bias=bias,
        variance=variance,
        verdict=verdict,
        recipe=recipe,
        run_ids=tuple(m.run_id for m in members),
        params=members[0].params,
    )


_TABLE_COLUMNS = (
    ("rank", "#", "{}"),
    ("dev_error", "dev err", "{:.4f}"),
    ("dev_error_std", "± std", "{:.4f}"),
    ("train_error", "train err", "{:.4f}"),
    ("n_params", "params", "{}"),
    ("seeds", "seeds", "{}"),
    ("verdict", "diagnosis", "{}"),
    ("label", "trial", "{}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return fmt.format(value)


def format_table(rows: Sequence[Row], limit: int | None = None) -> str:
    """A plain-text table; unranked points show their status in the diagnosis column."""
    shown = list(rows if limit is None else rows[:limit])
    header = [title for _, title, _ in _TABLE_COLUMNS]
    body = []
    for r in shown:
        cells = [_cell(getattr(r, key), fmt) for key, _, fmt in _TABLE_COLUMNS]
        if r.status != "finished":
            cells[6] = r.status
        body.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in body]
    if limit is not None and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more (sweeper leaderboard shows all)")
    return "\n".join(lines)


def format_csv(rows: Sequence[Row]) -> str:
    """Every column of every row as CSV."""
    buf = io.StringIO()
    fields = [f for f in Row.__dataclass_fields__ if f != "params"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        d = asdict(r)
        d.pop("params")
        d["run_ids"] = " ".join(r.run_ids)
        writer.writerow(d)
    return buf.getvalue()


def format_json(rows: Sequence[Row]) -> str:
    """Every row as a JSON list; NaN becomes null."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, tuple):
            return list(v)
        return v

    return json.dumps([{k: clean(v) for k, v in asdict(r).items()} for r in rows], indent=2)


FORMATS = {"table": format_table, "csv": format_csv, "json": format_json}
