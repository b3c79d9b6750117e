"""`sweeper ui` serves MLflow's UI on the sweeps' store, on 127.0.0.1 only."""

from __future__ import annotations

import socket
import subprocess
import sys

import psutil

from servers import free_port, wait_for_http


def _own_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            addr = s.getsockname()[0]
        return None if addr.startswith("127.") else addr
    except OSError:
        return None


def test_ui_serves_the_store_on_loopback(tmp_path):
    port = free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeper.cli", "ui", "--tracking-uri", uri, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        body = wait_for_http(f"http://127.0.0.1:{port}/health", proc).decode()
        assert body is not None and "OK" in body
        # MLflow's GenAI job runner is not started: no huey consumers under the UI.
        children = [" ".join(c.cmdline()) for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children and not [c for c in children if "huey" in c or "_job_runner" in c], children
        other = _own_address()
        if other:  # bound to loopback: the machine's own outside address is refused
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((other, port)) != 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
