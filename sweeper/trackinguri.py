"""Where runs are tracked: the tracking URI a command uses, whether its server answers,
and where a local store keeps artifacts."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


class TrackingUnreachable(ConnectionError):
    """The tracking server does not answer."""


def check_reachable(tracking_uri: str, timeout: float = 10.0) -> None:
    """Fails fast when a tracking server is down, before any trial starts.

    MLflow's client retries for minutes against a server that is away; a sweep should
    instead say so at once.

    Raises:
        TrackingUnreachable: An http(s) tracking URI whose ``/health`` does not answer.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
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


def resolve_tracking_uri(uri: str | None) -> str:
    """The tracking URI to use: the argument, else ``MLFLOW_TRACKING_URI``, else ./mlflow.db."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


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
