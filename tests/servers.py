"""Helpers for tests that run real servers on 127.0.0.1: a free port, waiting for an answer, an MLflow server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, seconds: float = 90, log: Path | None = None) -> bytes:
    """Polls ``url`` until it answers 200 and returns the body; fails if ``proc`` exits or time runs out."""
    tail = (lambda: "\n" + log.read_text()[-3000:]) if log is not None else (lambda: "")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[:4]} exited with {proc.returncode} before {url} answered{tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return response.read()
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no answer from {url} within {seconds:g} s{tail()}")


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """Stops ``proc``'s process group (``start_new_session=True``): SIGTERM, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a test's `mlflow server`: this one, with MLflow's GenAI job
    runner (four huey consumers, unused here, slowing every start) off, as
    deploy/tracking-server.sh has it; then ``extra``."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(extra or {})}


class Server:
    """A real `mlflow server` on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.proc = folder, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination", str(self.folder / "artifacts"), "--workers", "1",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=server_env()
        )
        wait_for_http(f"{self.uri}/health", self.proc)

    def stop(self) -> None:
        if self.proc:
            stop_group(self.proc)
