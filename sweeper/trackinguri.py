"""Where runs are tracked: the tracking URI a command uses, whether it is one MLflow can
open, whether its store exists and answers, and where a local store keeps artifacts.

Nothing here imports MLflow: a bad URI is refused before MLflow sees it, since MLflow
answers one with a traceback, a store it creates, or minutes of retries.
"""

from __future__ import annotations

import difflib
import os
import re
import urllib.parse
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433, "sqlite": None}
"""MLflow's database engines (``mlflow.store.db.db_types.DATABASE_ENGINES``), each with the
port its server listens on by default (sqlite has no server)."""
SERVER_SCHEMES = ("http", "https")
ALLOWED = (
    "sqlite:///PATH (a local file), postgresql://, mysql:// or mssql:// (each also with "
    "+DRIVER), http(s)://HOST:PORT (a tracking server) or databricks"
)
_SQLITE = re.compile(r"sqlite(\+\w+)?:///(?P<path>[^?]*)(\?.*)?")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class BadTrackingUri(ValueError):
    """A tracking URI MLflow cannot open, or one no sweep can use; says what is allowed."""


class NoStore(LookupError):
    """A read-only command named a local store that does not exist (or is no store)."""


class TrackingUnreachable(ConnectionError):
    """The tracking server does not answer."""

    what = "tracking server"


class DatabaseUnreachable(TrackingUnreachable):
    """The database server behind a store does not answer."""

    what = "tracking database"


def resolve_tracking_uri(uri: str | None) -> str:
    """The tracking URI to use: the argument, else ``MLFLOW_TRACKING_URI``, else ./mlflow.db."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_tracking_uri(uri: str) -> None:
    """Refuses a tracking URI that MLflow would not open, or not as a sweep needs.

    Accepted: ``sqlite:///PATH``, ``postgresql://``, ``mysql://``, ``mssql://`` (each with an
    optional ``+driver``), ``http(s)://HOST``, ``databricks[://PROFILE]``, the scheme of any
    other installed MLflow tracking-store plugin, and ``file:`` where MLflow's file store
    is allowed (``MLFLOW_ALLOW_FILE_STORE=true``).

    Raises:
        BadTrackingUri: Why not, and what to write instead.
    """
    if uri.lower() == "databricks":  # Databricks' default profile
        return
    scheme, sep, rest = uri.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) or len(scheme) == 1:
        raise BadTrackingUri(_not_a_uri(uri))
    scheme = scheme.lower()
    engine, plus, driver = scheme.partition("+")
    if engine in DATABASE_PORTS and (not plus or re.fullmatch(r"\w+", driver)):
        _check_database(uri, engine, rest)
    elif scheme in SERVER_SCHEMES:
        if not urllib.parse.urlsplit(uri).hostname:
            raise BadTrackingUri(f"'{uri}' names no host; a tracking server is {scheme}://HOST:PORT")
    elif scheme == "file":
        if not _file_store_allowed():
            raise BadTrackingUri(
                f"'{uri}' is MLflow's file store, which MLflow has put in maintenance mode; use a "
                f"database, e.g. {DEFAULT_TRACKING_URI} (`mlflow migrate-filestore` moves existing "
                "runs into one), or set MLFLOW_ALLOW_FILE_STORE=true to keep the file store"
            )
    elif scheme == "sweeper":
        raise BadTrackingUri(
            f"'{uri}' is a store URI for `mlflow server --backend-store-uri`; sweeper writes to the "
            f"database itself: pass '{rest}'"
        )
    elif scheme != "databricks" and scheme not in _plugin_schemes():
        raise BadTrackingUri(_unknown_scheme(uri, scheme, rest))


def _not_a_uri(uri: str) -> str:
    if Path(uri).is_dir():
        return (
            f"'{uri}' is a folder, not a tracking URI (MLflow's file store is in maintenance mode); "
            f"use a database, e.g. {DEFAULT_TRACKING_URI}"
        )
    return f"'{uri}' is not a tracking URI; for a local file use sqlite:///{uri}"


def _unknown_scheme(uri: str, scheme: str, rest: str) -> str:
    if re.fullmatch(r"\d+(/.*)?", rest):  # HOST:PORT, the scheme left out
        return f"'{uri}' names no scheme; a tracking server is http://{uri}"
    known = [*DATABASE_PORTS, *SERVER_SCHEMES, "databricks"]
    guess = difflib.get_close_matches(scheme.partition("+")[0], known, n=1)
    hint = f" (did you mean {guess[0]}://?)" if guess else ""
    return f"'{uri}': MLflow has no tracking store for scheme '{scheme}'{hint}; use {ALLOWED}"


def _check_database(uri: str, engine: str, rest: str) -> None:
    if engine != "sqlite":
        if not rest.startswith("//"):
            raise BadTrackingUri(f"'{uri}' is not a database URI; write {engine}://USER:PASSWORD@HOST:PORT/DATABASE")
        return
    match = _SQLITE.fullmatch(uri)
    if match is None:
        raise BadTrackingUri(
            f"'{uri}' is not a sqlite file URI; write sqlite:///PATH (relative to this folder) "
            "or sqlite:////ABSOLUTE/PATH"
        )
    if match["path"] in ("", ":memory:"):
        raise BadTrackingUri(
            f"'{uri}' is a store in memory, gone when the command ends; name a file, e.g. {DEFAULT_TRACKING_URI}"
        )


def _file_store_allowed() -> bool:
    return os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1")


def _plugin_schemes() -> set[str]:
    """Schemes of installed MLflow tracking-store plugins, other than sweeper's own."""
    from importlib.metadata import entry_points

    return {ep.name.lower() for ep in entry_points(group="mlflow.tracking_store")} - {"sweeper"}


def sqlite_file(uri: str) -> Path | None:
    """The file behind a ``sqlite:///`` URI (any ``+driver``), or None for any other store."""
    match = _SQLITE.fullmatch(uri)
    return Path(match["path"]) if match and match["path"] not in ("", ":memory:") else None


def check_store(uri: str, must_exist: bool) -> None:
    """Refuses a local sqlite store that is a folder or another kind of file, and, where
    ``must_exist``, one that does not exist yet (MLflow would create it, and its folders).

    Raises:
        NoStore: What is at that path instead.
    """
    path = sqlite_file(uri)
    if path is None:
        return
    if path.is_dir():
        raise NoStore(f"{path.resolve()} is a folder, not an MLflow store; name a file in it, "
                      f"e.g. sqlite:///{path / 'mlflow.db'}")
    if not path.exists():
        if must_exist:
            raise NoStore(f"no MLflow store at {path.resolve()} (tracking URI {uri}); "
                          "pass --tracking-uri with the store a sweep was submitted to")
        return
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise NoStore(f"cannot read the MLflow store {path.resolve()}: {exc.strerror or exc}") from None
    if head and head != _SQLITE_MAGIC:
        raise NoStore(f"{path.resolve()} is not an SQLite database, so not an MLflow store")


def check_reachable(tracking_uri: str, timeout: float = 10.0) -> None:
    """Fails fast when a tracking server, or the database server of a store, is down.

    MLflow's client retries for minutes against a server that is away, and its database
    store as long before it gives up on a database; a command should instead say so at once.

    Raises:
        TrackingUnreachable: An http(s) tracking URI whose ``/health`` does not answer;
            :class:`DatabaseUnreachable` for a database URI whose host takes no TCP
            connection on its port.
    """
    scheme = tracking_uri.partition(":")[0].lower()
    if scheme in SERVER_SCHEMES:
        _check_health(tracking_uri, timeout)
        return
    engine = scheme.partition("+")[0]
    if DATABASE_PORTS.get(engine):
        _check_port(tracking_uri, engine, timeout)


def _check_health(tracking_uri: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # behind authentication: it is up
            return
        raise TrackingUnreachable(f"{url} answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnreachable(f"no answer from {url}: {reason}") from None


def _check_port(tracking_uri: str, engine: str, timeout: float) -> None:
    import socket

    try:
        parts = urllib.parse.urlsplit(tracking_uri)
        host, port = parts.hostname, parts.port or DATABASE_PORTS[engine]
    except ValueError:  # a port that is no number: leave the message to the driver
        return
    if not host:  # a local socket, or a host in the query: nothing to dial here
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise DatabaseUnreachable(f"no answer from the {engine} database at {host}:{port}: {exc.strerror or exc}") from None


def artifact_root(tracking_uri: str) -> str | None:
    """Artifacts beside a local sqlite store, so that `mlflow ui` on that store finds them."""
    if not tracking_uri.startswith("sqlite:///"):
        return None  # a tracking server or other store chooses its own artifact root
    db = Path(tracking_uri[len("sqlite:///"):]).resolve()
    return (db.parent / "mlartifacts").as_uri()


def experiment_location(tracking_uri: str, name: str) -> str | None:
    root = artifact_root(tracking_uri)
    if root is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{root}/{safe}"
