"""Ranking: mean dev error over seeds, then spread, then fewer parameters."""

from __future__ import annotations

import json
import math

from sweeper.ranking import Entry, best_trial, format_csv, format_json, format_table, group_key, leaderboard


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


def test_a_point_with_a_lost_seed_ranks_after_every_complete_point_and_says_so():
    rows = leaderboard([
        _entry("lucky", 1, 0.01), _entry("lucky", 2, float("nan"), status="diverged"),
        _entry("lucky", 3, float("nan"), status="diverged"),
        _entry("shaky", 1, 0.05), _entry("shaky", 2, float("nan"), status="timed_out"),
        _entry("shaky", 3, float("nan"), status="failed"),
        *(_entry("solid", s, 0.10) for s in (1, 2, 3)),
        *(_entry("worse", s, 0.20) for s in (1, 2, 3)),
        _entry("lost", 1, float("nan"), status="diverged"),
    ])
    assert [(r.label, r.rank) for r in rows] == [
        ("solid", 1), ("worse", 2), ("lucky", 3), ("shaky", 4), ("lost", None)]
    lucky, shaky = rows[2], rows[3]
    assert lucky.status == "1/3 finished, 2 diverged" and lucky.seeds == 1
    assert shaky.status == "1/3 finished, 1 failed, 1 timed_out"
    assert rows[0].status == "finished" and rows[4].status == "diverged"
    table = format_table(rows).splitlines()
    assert "1/3 finished, 2 diverged" in table[3] and "lucky" in table[3]
    assert [d["status"] for d in json.loads(format_json(rows))][2] == "1/3 finished, 2 diverged"
    assert "1/3 finished, 2 diverged" in format_csv(rows).splitlines()[3]


def test_equal_error_counts_tie_on_the_mean_whatever_the_float_rounding():
    # Errors are counts over a 120-example dev set: 5/120 spread as 0+0+5 and as 1+1+3 give
    # means 0.013888888888888888 and ...89. The steadier point wins on the spread.
    rows = leaderboard([
        *(_entry("noisy", s, k / 120) for s, k in enumerate((0, 0, 5))),
        *(_entry("steady", s, k / 120) for s, k in enumerate((1, 1, 3))),
    ])
    assert [r.label for r in rows] == ["steady", "noisy"]
    assert rows[1].dev_error < rows[0].dev_error  # the trap: noisy's mean is lower in the last bit
    # 0+5+8 and 2+2+9 have the same mean and spread, but their stds differ in the last bit:
    # the parameter count decides.
    rows = leaderboard([
        *(_entry("wide", s, k / 120, n_params=100) for s, k in enumerate((0, 5, 8))),
        *(_entry("small", s, k / 120, n_params=5) for s, k in enumerate((2, 2, 9))),
    ])
    assert [r.label for r in rows] == ["small", "wide"]
    assert rows[1].dev_error_std < rows[0].dev_error_std


def test_the_best_finished_seed_comes_first_in_run_ids_whatever_the_order():
    entries = [_entry("a", 5, 0.2), _entry("a", 3, float("nan"), status="failed"),
               _entry("a", 9, 0.1), _entry("a", 4, 0.1)]
    for order in (entries, entries[::-1]):
        (row,) = leaderboard(order)
        assert row.run_ids == ("a-4", "a-9", "a-5", "a-3")  # dev error, then seed; failed last


def test_the_best_trial_is_the_best_seed_of_the_rank_1_point_not_a_lucky_seed_elsewhere():
    entries = [_entry("steady", 2, 0.10), _entry("steady", 1, 0.10),
               _entry("lucky", 1, 0.02), _entry("lucky", 2, 0.40)]
    assert leaderboard(entries)[0].label == "steady"
    best = best_trial(entries)
    assert (best.label, best.seed) == ("steady", 1)  # a tie goes to the lower seed
    assert best_trial([_entry("x", 1, float("nan"), status="diverged")]) is None


def test_a_point_without_a_finished_seed_shows_no_parameter_count():
    rows = leaderboard([_entry("ok", 1, 0.2), _entry("late", 1, float("nan"), n_params=0, status="timed_out"),
                        _entry("half", 1, 0.3, n_params=7), _entry("half", 2, float("nan"), n_params=0,
                                                                     status="failed")])
    late = next(r for r in rows if r.label == "late")
    assert late.n_params is None and rows[1].n_params == 7
    line = next(line for line in format_table(rows).splitlines() if "late" in line)
    assert line.split()[:6] == ["-", "-", "-", "-", "-", "0"]  # rank, errors, params, seeds
    assert next(d for d in json.loads(format_json(rows)) if d["label"] == "late")["n_params"] is None
