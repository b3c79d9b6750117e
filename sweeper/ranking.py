"""The leaderboard: grid points ranked by mean dev error over their seeds.

Order: mean dev error, then its spread over seeds, then fewer parameters. A point some of
whose seeds diverged, failed, timed out or were killed ranks after every complete point
(among the incomplete ones by its finished seeds alone), and its status says how many
finished. A point none of whose seeds finished is listed below the ranked ones with its
status, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from core.diagnosis import diagnose

_NOT_CONFIG = ("repeat", "seed")
_DECIMALS = 12
"""Sort keys round means to this many decimals: equal error counts over the same dev set
give means that differ in the last bit (0.013888888888888888 against ...89), which would
otherwise decide the order before the spread and the parameter count can."""


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
    """One grid point of the leaderboard (its seeds aggregated).

    Errors, spread and diagnosis come from the finished seeds alone, ``seeds`` counts them
    and ``n_params`` is ``None`` where none finished. ``status`` is ``"finished"`` when every
    seed finished, ``"1/3 finished, 2 diverged"`` when some did, and the seeds' own statuses
    (``"diverged/failed"``) when none did. ``run_ids`` lists the finished seeds first, the
    lowest dev error first (ties by seed), so ``run_ids[0]`` is the point's best seed.
    """

    rank: int | None
    label: str
    dev_error: float
    dev_error_std: float
    train_error: float
    n_params: int | None
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

    Returns:
        The ranked points, complete ones first, then those with some finished seeds, then
        the unranked ones (no finished seed) by label.
    """
    return [row for row, _ in _points(entries, baseline_error)]


def best_trial(entries: Iterable[Entry]) -> Entry | None:
    """The rank-1 point's best seed: its finished trial with the lowest dev error.

    Ties go to the lower seed. This is the model the ranking recommends, so it is the one
    shipped as the single model, never a lucky seed of a lower-ranked point.

    Returns:
        The trial, or ``None`` when no trial finished.
    """
    points = _points(entries, 0.0)  # the baseline shifts the diagnosis, never the order
    if not points or points[0][0].rank is None:
        return None
    return _finished_first(points[0][1])[0]


def _points(entries: Iterable[Entry], baseline_error: float) -> list[tuple[Row, list[Entry]]]:
    """Every grid point's row, in leaderboard order, with its trials."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    points = [(_row(members, baseline_error), members) for members in groups.values()]
    ranked = sorted((p for p in points if p[0].seeds), key=lambda p: _sort_key(p[0]))
    others = sorted((p for p in points if not p[0].seeds), key=lambda p: p[0].label)
    return [(_with_rank(r, i + 1), m) for i, (r, m) in enumerate(ranked)] + others


def _sort_key(row: Row) -> tuple:
    return (row.status != "finished", round(row.dev_error, _DECIMALS),
            round(row.dev_error_std, _DECIMALS), row.n_params, row.label)


def _with_rank(row: Row, rank: int) -> Row:
    return Row(**{**asdict(row), "rank": rank})


def _is_finished(entry: Entry) -> bool:
    return entry.status == "finished" and math.isfinite(entry.dev_error)


def _finished_first(members: Sequence[Entry]) -> list[Entry]:
    """Finished trials by dev error, then seed; then the others by seed."""
    return sorted(members, key=lambda m: (not _is_finished(m),
                                          m.dev_error if _is_finished(m) else 0.0, m.seed, m.run_id))


def _status(members: Sequence[Entry], ok: Sequence[Entry]) -> str:
    if len(ok) == len(members):
        return "finished"
    if not ok:
        return "/".join(sorted({m.status for m in members}))
    # A finished trial without a finite dev error cannot rank either; say which it is.
    lost = Counter(m.status if m.status != "finished" else "non-finite" for m in members
                   if not _is_finished(m))
    return f"{len(ok)}/{len(members)} finished, " + ", ".join(f"{n} {s}" for s, n in sorted(lost.items()))


def _row(members: Sequence[Entry], baseline_error: float) -> Row:
    ordered = _finished_first(members)
    ok = [m for m in ordered if _is_finished(m)]
    dev = np.array([m.dev_error for m in ok], dtype=float)
    train = np.array([m.train_error for m in ok], dtype=float)
    if ok:
        dev_mean, dev_std, train_mean = float(dev.mean()), float(dev.std()), float(train.mean())
        d = diagnose(train_mean, dev_mean, baseline_error)
        bias, variance, verdict, recipe = d.avoidable_bias, d.variance, d.verdict, d.recipe
    else:
        dev_mean = dev_std = train_mean = bias = variance = float("nan")
        verdict, recipe = "", ""
    return Row(
        rank=None,
        label=members[0].label,
        dev_error=dev_mean,
        dev_error_std=dev_std,
        train_error=train_mean,
        n_params=max(m.n_params for m in ok) if ok else None,
        seeds=len(ok),
        status=_status(members, ok),
        avoidable_bias=bias,
        variance=variance,
        verdict=verdict,
        recipe=recipe,
        run_ids=tuple(m.run_id for m in ordered),
        params=members[0].params,
    )


def diagnosis_text(row: Row) -> str:
    """What a table's diagnosis column shows: the verdict, with the status unless complete.

    ``"high bias"``; ``"1/3 finished, 2 diverged (high bias)"``; ``"diverged"``.
    """
    if row.status == "finished":
        return row.verdict
    return f"{row.status} ({row.verdict})" if row.seeds and row.verdict else row.status


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
    """A plain-text table; incomplete points show their status in the diagnosis column."""
    shown = list(rows if limit is None else rows[:limit])
    header = [title for _, title, _ in _TABLE_COLUMNS]
    body = []
    for r in shown:
        cells = [_cell(getattr(r, key), fmt) for key, _, fmt in _TABLE_COLUMNS]
        cells[6] = diagnosis_text(r)
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
