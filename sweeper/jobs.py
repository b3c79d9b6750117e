"""Detached sweeps: a sweep submitted as a Ray Job runs its driver on the cluster, so the
laptop that submitted it may close.

The job runs ``python -m sweeper.jobs GRID --quiet`` (``sweeper submit`` on the cluster) in
the grid's own folder (its data files travel with it), with this machine's ``sweeper`` and
``core`` packages shipped as ``py_modules`` so the cluster runs the code that submitted it.

A cluster with token authentication (``RAY_AUTH_MODE=token``) needs the token here too:
``RAY_AUTH_TOKEN_PATH`` or ``RAY_AUTH_TOKEN``. MLflow credentials are not forwarded: the
cluster's own environment holds them (``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` on the
head), so that a password never lands in a job's metadata, which the dashboard shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import click

KIND_KEY = "sweeper.kind"
GRID_KEY = "sweeper.grid"
WORKING_DIR_EXCLUDES = ["mlflow.db", "*.db", "mlruns/", "mlartifacts/", ".git/", "__pycache__/", "*.pyc"]
_ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
_ADDRESS_HELP = (
    "Ray cluster: its dashboard / Jobs API (http://HEAD:8265) or its GCS address (HEAD:6379); "
    "default RAY_API_SERVER_ADDRESS, then RAY_ADDRESS."
)


class JobsError(click.ClickException):
    """The cluster's Jobs API could not do what was asked (unreachable, refused, unknown job)."""


@contextlib.contextmanager
def _without_env(names: Sequence[str]) -> Iterator[None]:
    # Ray's JobSubmissionClient lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the
    # address it is given; an address the caller names explicitly must win.
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def client(address: str | None):
    """A Jobs API client for the cluster at ``address``.

    Args:
        address: ``http(s)://HEAD:8265`` (the dashboard), or the GCS ``HEAD:6379``
            (the dashboard's address is then read from the cluster).

    Raises:
        click.UsageError: No address was given.
        JobsError: The cluster cannot be reached or refused the token.
    """
    if not address:
        raise click.UsageError(
            "no Ray cluster named: pass --address http://HEAD:8265 (the Ray dashboard of the cluster) "
            "or set RAY_API_SERVER_ADDRESS; with token authentication also set RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN_PATH (for deploy/local-cluster.sh: source deploy/.local-cluster/env)"
        )
    from ray.job_submission import JobSubmissionClient

    try:
        with _without_env(_ADDRESS_ENV):
            return JobSubmissionClient(address)
    except Exception as exc:  # connection refused, DNS, 401/403: all end the command
        raise JobsError(f"cannot reach the Ray Jobs API at {address}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _check_tracking_uri(tracking_uri: str | None) -> str:
    # The detached driver runs on the head: a relative sqlite file would be written into a
    # temporary job folder there and lost when the job ends.
    if not tracking_uri:
        raise click.UsageError(
            "a detached sweep needs a tracking server the cluster can reach: pass --tracking-uri "
            "http://MLFLOW:5000 (or set MLFLOW_TRACKING_URI)"
        )
    if tracking_uri.startswith(("file:", "sqlite:")) and not tracking_uri.startswith(("sqlite:////", "file:///")):
        raise click.UsageError(
            f"{tracking_uri} is a path relative to the job's temporary folder on the cluster; "
            "use a tracking server (http://...) or a database URI"
        )
    return tracking_uri


def _package_dirs() -> list[str]:
    import core
    import sweeper

    return [str(Path(m.__file__).resolve().parent) for m in (sweeper, core)]


def _submission_id(grid: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", grid.stem).strip("-")[:40] or "grid"
    return f"sweeper-{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def submit_detached(
    grid_path: str | os.PathLike,
    address: str | None,
    tracking_uri: str | None,
    extra_args: Sequence[str] = (),
) -> str:
    """Submits a sweep as a Ray Job and returns at once.

    Args:
        grid_path: The grid file; its folder becomes the job's working directory.
        address: The cluster (see ``client``).
        tracking_uri: The MLflow store the cluster logs to; a server, not a local file.
        extra_args: More ``sweeper submit`` options (``--timeout 60``, ``--yes``).

    Returns:
        The job's submission id, for ``sweeper logs`` and ``sweeper status``.
    """
    grid = Path(grid_path).resolve()
    if not grid.is_file():
        raise click.UsageError(f"{grid_path}: no such grid file")
    uri = _check_tracking_uri(tracking_uri)
    jobs = client(address)
    entrypoint = shlex.join(["python", "-m", "sweeper.jobs", grid.name, "--quiet", *extra_args])
    runtime_env = {
        "working_dir": str(grid.parent),
        "py_modules": _package_dirs(),
        "excludes": WORKING_DIR_EXCLUDES,
        "env_vars": {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"},
    }
    try:
        return jobs.submit_job(
            entrypoint=entrypoint,
            submission_id=_submission_id(grid),
            runtime_env=runtime_env,
            metadata={KIND_KEY: "sweep", GRID_KEY: grid.name},
        )
    except Exception as exc:
        raise JobsError(f"the cluster refused the sweep: {_first_line(exc)}") from None


def _seconds(ms: int | None) -> float | None:
    return ms / 1000.0 if ms else None


def list_jobs(address: str | None, sweeps_only: bool = True) -> list[dict[str, Any]]:
    """The cluster's jobs, newest first.

    Args:
        address: The cluster (see ``client``).
        sweeps_only: Only jobs submitted by ``submit_detached``.

    Returns:
        One dict per job: ``id``, ``status``, ``entrypoint``, ``grid``, ``message``,
        ``start`` and ``end`` (epoch seconds, None while unknown).
    """
    jobs = client(address)
    try:
        details = jobs.list_jobs()
    except Exception as exc:
        raise JobsError(f"cannot list the jobs at {address}: {_first_line(exc)}") from None
    rows = []
    for job in details:
        metadata = job.metadata or {}
        if sweeps_only and metadata.get(KIND_KEY) != "sweep":
            continue
        rows.append(
            {
                "id": job.submission_id or job.job_id,
                "status": str(getattr(job.status, "value", job.status)),
                "entrypoint": job.entrypoint,
                "grid": metadata.get(GRID_KEY, ""),
                "message": job.message or "",
                "start": _seconds(job.start_time),
                "end": _seconds(job.end_time),
            }
        )
    return sorted(rows, key=lambda r: r["start"] or 0.0, reverse=True)


def job_status(address: str | None, job_id: str) -> str:
    """The status of one job: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    jobs = client(address)
    try:
        return str(getattr(jobs.get_job_status(job_id), "value", ""))
    except Exception as exc:
        raise JobsError(f"no job {job_id} at {address}: {_first_line(exc)}") from None


def job_logs(address: str | None, job_id: str) -> str:
    """Everything the job's driver has printed so far."""
    jobs = client(address)
    try:
        return jobs.get_job_logs(job_id)
    except Exception as exc:
        raise JobsError(f"no logs for job {job_id} at {address}: {_first_line(exc)}") from None


def _follow(address: str | None, job_id: str, echo: Callable[[str], None]) -> None:
    jobs = client(address)

    async def tail() -> None:
        async for chunk in jobs.tail_job_logs(job_id):
            echo(chunk)

    try:
        asyncio.run(tail())
    except Exception as exc:
        raise JobsError(f"lost the logs of job {job_id}: {_first_line(exc)}") from None


# -- Click: `submit --detach`, `status`, `logs` ------------------------------------------


def detach_option(func: Callable) -> Callable:
    """Adds ``--detach`` to a command; the command then calls ``detach``."""
    return click.option(
        "--detach",
        is_flag=True,
        help="Run the sweep as a Ray Job on the cluster at --address and return at once.",
    )(func)


def detach(
    grid: str,
    address: str | None,
    tracking_uri: str | None,
    extra_args: Sequence[str] = (),
    echo: Callable[[str], None] = click.echo,
) -> str:
    """``submit --detach``: submits the sweep and tells the user how to follow it."""
    job_id = submit_detached(grid, address, tracking_uri, extra_args)
    shown = f" --address {address}" if address else ""
    echo(f"Submitted {job_id} to {address}; it runs on the cluster and logs to {tracking_uri}.")
    echo(f"  follow it:  sweeper logs {job_id}{shown} --follow")
    echo(f"  all sweeps: sweeper status{shown}")
    return job_id


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def _took(row: dict[str, Any]) -> str:
    if not row["start"]:
        return "-"
    return f"{(row['end'] or time.time()) - row['start']:.0f} s"


@click.command()
@click.option("--address", envvar=list(_ADDRESS_ENV), help=_ADDRESS_HELP)
@click.option("--all", "show_all", is_flag=True, help="Every job of the cluster, not only sweeps.")
def status(address: str | None, show_all: bool) -> None:
    """List the detached sweeps of a Ray cluster with their status."""
    rows = list_jobs(address, sweeps_only=not show_all)
    if not rows:
        click.echo(f"No {'jobs' if show_all else 'detached sweeps'} on {address}.")
        return
    width = max(len(r["id"]) for r in rows)
    click.echo(f"{'job':<{width}}  {'status':<9}  {'started':<19}  {'took':>7}  grid")
    for r in rows:
        click.echo(f"{r['id']:<{width}}  {r['status']:<9}  {_when(r['start']):<19}  {_took(r):>7}  {r['grid'] or r['entrypoint']}")


@click.command()
@click.argument("job")
@click.option("--address", envvar=list(_ADDRESS_ENV), help=_ADDRESS_HELP)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs(job: str, address: str | None, follow: bool) -> None:
    """Print the output of the detached sweep JOB."""
    if follow:
        _follow(address, job, lambda chunk: click.echo(chunk, nl=False))
    else:
        click.echo(job_logs(address, job), nl=False)


def _drive(argv: Sequence[str]) -> None:
    """A detached sweep's entrypoint on the cluster: ``sweeper submit ARGV``.

    Two Ray 2.60 behaviours shape it. Ray re-extracts a job's working_dir when the driver
    connects, replacing the folder the driver stands in, so the sweep works from a private
    copy. And the driver joins the cluster before the runner does, with no runtime_env of
    its own, so the runner reuses that connection and the job's environment (the
    submitter's packages) stays whole.
    """
    import ray

    from .cli import main
    from .journal import DEFAULT_JOURNAL

    workdir = Path(tempfile.mkdtemp(prefix="sweeper-job-"))
    shutil.copytree(Path.cwd(), workdir, dirs_exist_ok=True)
    os.chdir(workdir)
    try:
        ray.init(log_to_driver=False, logging_level="WARNING")
        main(["submit", *argv], prog_name="sweeper")
    finally:
        journal = workdir / DEFAULT_JOURNAL
        if journal.is_dir() and any(journal.iterdir()):
            print(f"Results not yet in MLflow are kept on this node in {journal}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - runs on the cluster
    _drive(sys.argv[1:])
