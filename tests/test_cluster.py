"""A sweep on a real multi-node Ray cluster: ``ray.cluster_utils.Cluster`` starts a head and
two worker nodes on this machine, each a raylet of its own, and the CLI submits to it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from sweeper.cli import main

GRID = """\
name: spread
seed: 5
dataset: {name: moons, n_samples: 300, noise: 0.2}
grid:
  lambda: [0, 0.01, 0.1]
  learning_rate: [0.01, 0.003]
fixed:
  architecture: [16, 8]
  epochs: 60
ensemble: {method: none}
"""
NODE_ARGS = dict(num_cpus=1, object_store_memory=80 * 1024**2)


@pytest.fixture
def three_nodes():
    """A head and two worker nodes, one CPU each; the session's own Ray comes back after."""
    import ray
    from ray.cluster_utils import Cluster

    was_up = ray.is_initialized()
    ray.shutdown()  # one driver connection per process: leave the session's local Ray
    cluster = Cluster(initialize_head=True, head_node_args=dict(NODE_ARGS, include_dashboard=False))
    try:
        for i in range(2):
            cluster.add_node(resources={f"worker-{i}": 1}, **NODE_ARGS)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if was_up:  # as tests/conftest.py's ray_local left it
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")


def _node_ids(tracking_uri: str) -> list[str]:
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("spread")
    runs = client.search_runs([exp.experiment_id], "tags.`sweeper.kind` = 'trial'", max_results=100)
    assert len(runs) == 6
    assert {r.data.tags["sweeper.status"] for r in runs} == {"finished"}
    # sweeper.node is host:pid:<ray node id> for a trial that ran in a Ray worker
    return [r.data.tags["sweeper.node"].rsplit(":", 1)[-1] for r in runs]


def test_trials_spread_over_the_nodes_of_a_cluster(three_nodes, write_grid, tracking_uri):
    grid = write_grid(GRID)
    result = CliRunner().invoke(
        main, ["submit", str(grid), "--address", three_nodes.address, "--tracking-uri", tracking_uri, "--quiet"]
    )
    assert result.exit_code == 0, result.output
    cluster_nodes = {node.node_id for node in three_nodes.list_all_nodes()}
    assert len(cluster_nodes) == 3
    used = _node_ids(tracking_uri)
    assert set(used) <= cluster_nodes, f"trials ran outside the cluster: {used}"
    assert len(set(used)) >= 2, f"every trial ran on one node: {used}"


def test_one_task_per_slot_where_the_head_runs_no_trials(three_nodes):
    """A driver on a head with no CPU (KubeRay's layout) keeps one task per slot in
    flight; on a head that runs trials, two (sweeper/runner.py's docstring says why)."""
    import ray
    from ray.cluster_utils import Cluster

    from sweeper.runner import RunOptions, _tasks_per_slot

    ray.init(address=three_nodes.address, log_to_driver=False, logging_level="WARNING")
    assert _tasks_per_slot(RunOptions()) == 2
    ray.shutdown()
    bare_head = Cluster(initialize_head=True, head_node_args=dict(NODE_ARGS, num_cpus=0, include_dashboard=False))
    try:
        bare_head.add_node(**NODE_ARGS)
        bare_head.wait_for_nodes()
        ray.init(address=bare_head.address, log_to_driver=False, logging_level="WARNING")
        assert _tasks_per_slot(RunOptions()) == 1
    finally:
        ray.shutdown()
        bare_head.shutdown()
