"""Ranking: mean dev error over seeds, then spread, then fewer parameters."""

from __future__ import annotations

import json
import math

from sweeper.ranking import Entry, format_csv, format_json, format_table, group_key, leaderboard


def _entry(group: str, seed: int, dev: float, train: float = 0.0, n_params: int = 10, status: str = "finished"):
    return Entry(
        run_id=f"{group}-{seed}", digest=f"{group}{seed}", label=group, group=group,
        status=status, train_error=train, dev_error=dev, n_params=n_params, seed=seed,
    )


def test_seeds_are_aggregated_by_mean_dev_error():
    rows = leaderboard([_entry("a", 1, 0.10), _entry("a", 2, 0.30), _entry("b", 1, 0.15), _entry("b", 2, 0.16)])
    assert [r.label for r in rows] == ["b", "a"]
    assert math.isclose(rows[1].dev_error, 0.20) and rows[1].seeds == 2
    assert math.isclose(rows[1].dev_error_std, 0.10)
    assert rows[0].rank == 1 and rows[1].rank == 2


def test_ties_break_on_spread_then_fewer_parameters():
    rows = leaderboard([
        _entry("wide", 1, 0.1, n_params=100), _entry("wide", 2, 0.1, n_params=100),
        _entry("small", 1, 0.1, n_params=5), _entry("small", 2, 0.1, n_params=5),
        _entry("noisy", 1, 0.0, n_params=1), _entry("noisy", 2, 0.2, n_params=1),
    ])
    assert [r.label for r in rows] == ["small", "wide", "noisy"]


def test_unfinished_points_are_listed_unranked_not_dropped():
    rows = leaderboard([_entry("ok", 1, 0.2), _entry("bad", 1, float("nan"), status="diverged")])
    assert [r.label for r in rows] == ["ok", "bad"]
    assert rows[1].rank is None and rows[1].status == "diverged"
    assert "diverged" in format_table(rows)


def test_diagnosis_columns_use_the_baseline():
    (row,) = leaderboard([_entry("x", 1, dev=0.30, train=0.05)], baseline_error=0.04)
    assert math.isclose(row.avoidable_bias, 0.01) and math.isclose(row.variance, 0.25)
    assert row.verdict == "high variance"


def test_formats_carry_every_row():
    rows = leaderboard([_entry("a", 1, 0.1), _entry("b", 1, 0.2)])
    assert len(format_csv(rows).strip().splitlines()) == 3
    data = json.loads(format_json(rows))
    assert [d["label"] for d in data] == ["a", "b"]


def test_group_key_ignores_seed_and_repeat():
    assert group_key({"lambda": "0.1", "seed": "1", "repeat": "0"}) == group_key({"lambda": "0.1", "seed": "9", "repeat": "3"})
    assert group_key({"lambda": "0.1"}) != group_key({"lambda": "0.2"})
