"""New sqlite stores copied from a template read and behave like stores MLflow made itself."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from mlflow import MlflowClient

from sweeper.newstore import cache_dir, seed_sqlite_store, sqlite_path


def _schema(db: Path) -> list[tuple]:
    """Every table, index and trigger, with its DDL as a set of lines: MLflow's migrations
    list a table's constraints in an order that changes from one run to the next."""
    def lines(sql: str | None) -> tuple[str, ...]:
        return tuple(sorted(line.strip().rstrip(",").strip() for line in (sql or "").splitlines()))

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return sorted((*row[:3], lines(row[3])) for row in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def _rows(db: Path) -> dict[str, list[tuple]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in tables}


def _use(db: Path) -> dict:
    """Opens the store with MLflow's client, as the tracker does, and writes a run."""
    client = MlflowClient(f"sqlite:///{db}")
    default = client.get_experiment("0")
    exp = client.create_experiment("e", artifact_location=(db.parent / "art").as_uri())
    run = client.create_run(exp, start_time=1)
    client.log_metric(run.info.run_id, "m", 0.5, timestamp=1, step=0)
    client.set_terminated(run.info.run_id, end_time=2)
    return {
        "default": (default.name, default.lifecycle_stage,
                    Path(default.artifact_location).relative_to(Path.cwd()).as_posix()),
        "experiments": [e.name for e in client.search_experiments()],
        "metric": [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "m")],
    }


def test_a_seeded_store_is_the_store_mlflow_makes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts a store's Default experiment under ./mlruns
    cache = tmp_path / "cache"
    made, seeded, again = (tmp_path / n for n in ("made", "seeded", "again"))
    for folder in (made, seeded, again):
        folder.mkdir()
    MlflowClient(f"sqlite:///{made / 'mlflow.db'}").search_experiments()  # MLflow's own migrations
    assert seed_sqlite_store(f"sqlite:///{seeded / 'mlflow.db'}", cache)  # builds the template
    assert seed_sqlite_store(f"sqlite:///{again / 'mlflow.db'}", cache)  # copies it
    assert len(list(cache.glob("mlflow-*.db"))) == 1
    MlflowClient(f"sqlite:///{seeded / 'mlflow.db'}").search_experiments()
    assert _schema(seeded / "mlflow.db") == _schema(made / "mlflow.db")
    got, want = _use(seeded / "mlflow.db"), _use(made / "mlflow.db")
    assert got["default"] == want["default"] == ("Default", "active", "mlruns/0")
    assert got == want and _use(again / "mlflow.db") == want
    # Same tables and rows, times and run ids apart.
    seeded_rows, made_rows = _rows(seeded / "mlflow.db"), _rows(made / "mlflow.db")
    assert seeded_rows.keys() == made_rows.keys()
    assert seeded_rows["alembic_version"] == made_rows["alembic_version"]
    assert seeded_rows["workspaces"] == made_rows["workspaces"]
    assert {n: len(r) for n, r in seeded_rows.items()} == {n: len(r) for n, r in made_rows.items()}


def test_an_existing_store_or_another_uri_is_left_alone(tmp_path):
    cache = tmp_path / "cache"
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a template")
    assert not seed_sqlite_store(f"sqlite:///{db}", cache)
    assert db.read_bytes() == b"not a template"
    for uri in ("sqlite:///:memory:", "sqlite://", f"sqlite:///{tmp_path}/x.db?mode=ro",
                "postgresql://u@h/db", "http://127.0.0.1:5000", f"sqlite:///{tmp_path}/no/such/folder/x.db"):
        assert not seed_sqlite_store(uri, cache), uri
    assert not cache.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]
    assert sqlite_path("sqlite:///rel/m.db") == Path("rel/m.db")
    assert cache_dir().name == "sweeper"


def test_a_broken_template_is_made_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    assert seed_sqlite_store(f"sqlite:///{tmp_path / 'a.db'}", cache)
    (template,) = cache.glob("mlflow-*.db")
    with contextlib.closing(sqlite3.connect(template)) as conn:  # a template with a row it must not have
        conn.execute("INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (7, 'stray', 'active')")
        conn.commit()
    assert seed_sqlite_store(f"sqlite:///{tmp_path / 'b.db'}", cache)
    names = [e.name for e in MlflowClient(f"sqlite:///{tmp_path / 'b.db'}").search_experiments()]
    assert names == ["Default"]
