"""New sqlite stores from an empty one MLflow made before, instead of 1.5-2 s of migrations.

MLflow makes a new sqlite store by running every schema migration it has, one after
another: 1.5-2 s, longer than a small sweep trains. :func:`seed_sqlite_store` copies
instead an empty store that this same MLflow made once and that is kept in the user's
cache (``$XDG_CACHE_HOME/sweeper``, else ``~/.cache/sweeper``), one per MLflow version
and schema revision. The copy holds MLflow's tables, its schema revision and its default
workspace, but no experiment: MLflow creates its ``Default`` experiment itself when it
opens the copy, with the artifact location it would give a store made in place.

Anything unexpected (no cache folder, a half-written template, another process creating
the same store at once) leaves the store to MLflow, as before. A test checks that a
seeded store and one MLflow made itself have the same schema and contents.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

_KEEP = {"alembic_version", "workspaces"}  # rows a template keeps: the schema revision, the default workspace


def cache_dir() -> Path:
    """Where templates are kept."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "sweeper"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file behind a ``sqlite:///`` URI, or None (another store, memory, URI options)."""
    if not tracking_uri.startswith("sqlite:///") or "?" in tracking_uri:
        return None
    path = tracking_uri[len("sqlite:///"):]
    return None if path in ("", ":memory:") else Path(path)


def seed_sqlite_store(tracking_uri: str, cache: Path | None = None) -> bool:
    """Creates the sqlite store of ``tracking_uri`` from a template, if it does not exist yet.

    Returns:
        True when the store was created here; False when it existed, is not a sqlite
        file, or anything went wrong (MLflow then creates it as usual).
    """
    path = sqlite_path(tracking_uri)
    if path is None or path.exists() or not path.parent.is_dir():
        return False
    try:
        template = _template(cache or cache_dir())
        # Copied under a temporary name, then linked into place: a store that appeared
        # meanwhile (another sweep, MLflow itself) is never overwritten.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            shutil.copyfile(template, tmp)
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
        return True
    except Exception:
        return False


def _template(cache: Path) -> Path:
    import mlflow

    cache.mkdir(parents=True, exist_ok=True)
    for found in sorted(cache.glob(f"mlflow-{mlflow.__version__}-*.db")):
        if _revision(found):
            return found
    with tempfile.TemporaryDirectory(dir=cache) as work:
        made = Path(work) / "store.db"
        _make_empty_store(made, Path(work) / "artifacts")
        revision = _revision(made)
        if not revision:
            raise RuntimeError("MLflow made a store without a schema revision")
        template = cache / f"mlflow-{mlflow.__version__}-{revision}.db"
        os.replace(made, template)  # whole or not at all, even with other sweeps at it
    return template


def _make_empty_store(path: Path, artifacts: Path) -> None:
    """MLflow's own new store at ``path``, emptied of everything but :data:`_KEEP`."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{path}", artifacts.as_uri())
    store.engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in tables:
            if name not in _KEEP and not name.startswith("sqlite_"):
                db.execute(f'DELETE FROM "{name}"')
        db.commit()
        db.execute("VACUUM")


def _revision(path: Path) -> str | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            experiments = db.execute("SELECT count(*) FROM experiments").fetchone()[0]
    except sqlite3.Error:
        return None
    return row[0] if row and experiments == 0 else None
