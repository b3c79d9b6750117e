"""A throwaway PostgreSQL server for tests: a real one, started with initdb and pg_ctl."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from servers import free_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[::-1]), None)
    if not found:
        pytest.fail(
            f"PostgreSQL's {name} is not installed; this test needs a real server: "
            "apt-get install -y postgresql (CI installs it in .ci/run)"
        )
    return found


def _as_postgres() -> list[str]:
    # initdb refuses to run as root; as root, run the server as the postgres user.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port with a random password.

    Yields (host, port, user, password, database).
    """
    try:
        import psycopg  # noqa: F401  (SQLAlchemy's driver for postgresql+psycopg:// stores)
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[test]' (psycopg[binary])")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    # Not under pytest's tmp_path: the postgres user must reach it, and socket paths are short.
    base = Path(tempfile.mkdtemp(prefix="swpg"))
    password = secrets.token_urlsafe(24)
    (base / "pw").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(base / "pw", "postgres", "postgres")
    os.chmod(base / "pw", 0o600)
    port = free_port()
    data = base / "data"
    run = lambda *args: subprocess.run([*_as_postgres(), *args], check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={base / 'pw'}", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
        run(pg_ctl, "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "-t", "60", "start")
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE mlflow")
        yield "127.0.0.1", port, "postgres", password, "mlflow"
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"PostgreSQL did not start: {exc.cmd}: {exc.stderr.decode()[-2000:]}")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*_as_postgres(), pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
