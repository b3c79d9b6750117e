"""How trials are grouped into Ray tasks: costliest first, chunks shrinking towards the end."""

from __future__ import annotations

from collections import Counter

from sweeper.runner import RunOptions, data_key, plan_chunks, trial_work
from sweeper.spec import parse_spec
from sweeper.sweep import plan

GRID = """\
name: chunks
seed: 1
dataset: {name: blobs, n_samples: 200}
grid:
  architecture: [[4], [64, 32], [16]]
  epochs: [5, 50]
  lambda: [0, 0.1, 1.0, 3.0, 10.0]
  dtype: [float32, float64]
fixed: {batch_size: 32}
"""


def _plan():
    return plan(parse_spec(GRID, "chunks.yaml"))


def test_every_trial_once_costliest_first_and_chunks_shrink_to_single_trials():
    the_plan = _plan()
    trials = the_plan.trials
    assert len(trials) == 60
    chunks = plan_chunks(trials, the_plan.data, slots=2, options=RunOptions())
    sent = [t.digest for chunk in chunks for t in chunk]
    assert Counter(sent) == Counter(t.digest for t in trials)  # each exactly once
    assert all(len({data_key(t) for t in chunk}) == 1 for chunk in chunks)
    sizes = [len(c) for c in chunks]
    assert sizes[0] == 60 // (4 * 2)  # the usual chunk while many trials remain
    assert sizes[-4:] == [1, 1, 1, 1]  # the tail: one trial a task
    assert all(a >= b for a, b in zip(sizes[-8:], sizes[-7:]))  # shrinking to the end
    for key in {data_key(t) for t in trials}:
        data = the_plan.data[key]
        work = [
            trial_work(t, data.n_features, data.n_classes)
            for chunk in chunks
            for t in chunk
            if data_key(t) == key
        ]
        assert work == sorted(work, reverse=True) and work[0] > work[-1]


def test_a_chunk_size_the_user_set_and_timeouts_are_kept():
    the_plan = _plan()
    fixed = plan_chunks(the_plan.trials, the_plan.data, 2, RunOptions(chunk_size=7))
    assert [len(c) for c in fixed] == [7, 7, 7, 7, 2] * 2  # two data keys of 30 trials
    timed = plan_chunks(the_plan.trials, the_plan.data, 2, RunOptions(timeout_s=5.0))
    assert {len(c) for c in timed} == {1}


def test_a_free_slot_gets_its_next_task_before_the_driver_records_a_result(ray_local):
    """Each slot has its next task waiting in Ray (two per slot in flight), and a slot
    that frees gets another before the result is handed over; with a per-trial timeout,
    clocked from submission, only one per slot. Every result arrives exactly once."""
    import ray

    from sweeper.runner import _stream

    @ray.remote(num_cpus=1)
    def echo(chunk):
        return [chunk[0]]

    cases = (
        (RunOptions(), 2, [3, 4, 5, 6, 6, 6]),
        (RunOptions(timeout_s=60.0), 2, [2, 3, 4, 5, 6, 6]),
        (RunOptions(), 1, [2, 3, 4, 5, 6, 6]),  # a driver on a node that cannot run trials
    )
    for options, per_slot, expected in cases:
        submitted: list[int] = []
        seen: list[tuple[int, int]] = []  # (result, tasks submitted by then)
        running: list[int] = []

        def submit(chunk):
            submitted.append(chunk[0])
            return echo.remote(chunk)

        _stream([[i] for i in range(6)], submit, 1, options,
                lambda r: seen.append((r, len(submitted))), running.append, per_slot)
        assert submitted == list(range(6))
        assert sorted(r for r, _ in seen) == list(range(6))
        assert [n for _, n in seen] == expected, (options, per_slot)
        assert max(running) == 1 and running[-1] == 0  # queued tasks are not counted as running


def test_two_tasks_per_slot_where_the_drivers_node_runs_trials(ray_local):
    from sweeper.runner import _tasks_per_slot

    assert _tasks_per_slot(RunOptions()) == 2  # the local Ray: 2 CPUs
    assert _tasks_per_slot(RunOptions(cpus_per_trial=4)) == 1
    assert _tasks_per_slot(RunOptions(gpus_per_trial=0.5)) == 1  # no GPU here


def test_a_trial_no_node_can_hold_is_refused_on_a_local_ray_and_warned_on_a_cluster(ray_local, monkeypatch):
    import pytest

    from sweeper.runner import ResourceError, check_a_node_fits

    said = []
    too_big = RunOptions(cpus_per_trial=3)  # the fixture's Ray has one node of 2 CPUs
    with pytest.raises(ResourceError, match=r"cpus_per_trial 3 fits no node .* largest has 2 CPUs"):
        check_a_node_fits(too_big, said.append)
    with pytest.raises(ResourceError, match=r"gpus_per_trial 0.5 fits no node .* 2 CPUs and 0 GPUs"):
        check_a_node_fits(RunOptions(gpus_per_trial=0.5), said.append)
    check_a_node_fits(RunOptions(cpus_per_trial=2), said.append)
    assert said == []
    cluster = RunOptions(cpus_per_trial=3, address="127.0.0.1:6379")  # an autoscaler may add one
    check_a_node_fits(cluster, said.append)
    assert len(said) == 1 and said[0].startswith("Warning:") and "wait until the cluster adds" in said[0]
