"""Shared fixtures: a real local Ray (two CPUs) and real MLflow stores under tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from postgres import postgres  # noqa: F401  (a throwaway PostgreSQL server, for the tests that ask)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_local():
    """A real single-node Ray with two CPUs, shared by the tests that need one."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh sqlite MLflow store in the test's own folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def write_grid(tmp_path: Path):
    """Writes a grid file into tmp_path and returns its path."""

    def write(text: str, name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    # Tests never write to a store the developer's shell points at, nor into the
    # checkout: defaults such as ./mlflow.db and ./.sweeper-journal land in tmp_path.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
