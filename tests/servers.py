"""Helpers for tests that run real servers on 127.0.0.1: a free port, waiting for an answer."""

from __future__ import annotations

import socket
import subprocess
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
