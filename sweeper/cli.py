"""The ``sweeper`` command line. Commands stay thin; ray and mlflow load inside them."""

from __future__ import annotations

import math
import os
import sys
import warnings

import click

from .cliout import describe, nothing_shipped, print_outcome, trial_lines
from .jobs import detach_option
from .jobs import logs as logs_command
from .jobs import status as status_command

DEFAULT_MAX_TRIALS = 1000
DEFAULT_JOURNAL = ".sweeper-journal"  # sweeper.journal.DEFAULT_JOURNAL, without importing it


class UserError(click.ClickException):
    """A mistake in the user's input: printed without a traceback, exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D401 - click's signature
        click.echo(f"Error: {self.format_message()}", err=True)


class StoreError(UserError):
    """MLflow refused or failed a call: printed without a traceback, exit status 1."""

    exit_code = 1


class _Main(click.Group):
    """The command group; an MLflow error that reaches it ends the command cleanly."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            errors = sys.modules.get("mlflow.exceptions")  # loaded by any command that used MLflow
            if errors is None or not isinstance(exc, errors.MlflowException):
                raise
            code = f" ({exc.error_code})" if getattr(exc, "error_code", None) else ""
            raise StoreError(f"MLflow{code}: {str(exc.message).strip()}") from None


def _checked_tracking_uri(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--tracking-uri``: refused at once when MLflow could not open it as a sweep needs."""
    if value is None:
        return None
    from .trackinguri import BadTrackingUri, check_tracking_uri

    try:
        check_tracking_uri(value)
    except BadTrackingUri as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


tracking_uri_option = click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True, callback=_checked_tracking_uri,
    help="MLflow store (default: sqlite:///mlflow.db).",
)


def _unreachable(exc) -> UserError:
    return UserError(f"cannot reach the MLflow {exc.what} ({exc}); start it, or pass another --tracking-uri")


def _store(tracking_uri: str | None, must_exist: bool) -> str:
    """The resolved tracking URI, once its store is there (where ``must_exist``) and answers."""
    from . import trackinguri as store

    uri = store.resolve_tracking_uri(tracking_uri)
    try:
        store.check_store(uri, must_exist)
        store.check_reachable(uri)
    except store.NoStore as exc:
        raise UserError(str(exc)) from None
    except store.TrackingUnreachable as exc:
        raise _unreachable(exc) from None
    return uri


class _Seconds(click.FloatRange):
    """A finite number of seconds above zero."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value, param, ctx) -> float:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds > 0", param, ctx)
        return seconds


def _load(grid: str, spec=None):
    """The plan of a grid file (of its ``spec``, where already read); user mistakes become a UserError."""
    from core.datasets import DatasetError

    from .sweep import plan

    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            the_plan = plan(spec or _spec(grid))
    except DatasetError as exc:
        raise UserError(f"{grid}: dataset: {exc}") from None
    for warning in (w for w in said if issubclass(w.category, UserWarning)):  # the data's
        click.echo(f"Warning: {grid}: {warning.message}", err=True)
    return the_plan


def _spec(grid: str):
    """The validated spec of a grid file (its warnings shown); its problems become a UserError."""
    from .spec import SpecError, load_spec

    try:
        spec = load_spec(grid)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    for warning in spec.warnings:
        click.echo(f"Warning: {warning}", err=True)
    return spec


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeper")
def main() -> None:
    """Hyperparameter sweeps for fully-connected networks, on Ray, tracked in MLflow."""


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
def validate(grid: str) -> None:
    """Check GRID and list its trials; nothing runs. Every problem is reported at once."""
    the_plan = _load(grid)
    click.echo(f"{grid} is valid: {describe(the_plan)}")
    for line in trial_lines(the_plan):
        click.echo(line)


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.option("--address", envvar="RAY_ADDRESS", help="Ray cluster address (default: start a local Ray).")
@tracking_uri_option
@click.option("--local", is_flag=True, help="Run trials in this process, without Ray.")
@click.option("--dry-run", is_flag=True, help="Validate and list the trials; run nothing.")
@click.option("--yes", "-y", is_flag=True, help="Run grids larger than --max-trials.")
@click.option("--max-trials", type=click.IntRange(min=0), default=DEFAULT_MAX_TRIALS, show_default=True,
              help="Trials allowed without --yes.")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None, help="CPUs of a local Ray (default: all).")
@click.option("--timeout", type=_Seconds(), default=None, help="Per-trial timeout in seconds (overrides the grid).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option("--journal", default=DEFAULT_JOURNAL, show_default=True, help="Where results wait while MLflow is away.")
@detach_option
def submit(grid, address, tracking_uri, local, dry_run, yes, max_trials, num_cpus, timeout, quiet, journal, detach) -> None:
    """Run every trial of GRID that has no result yet, log it to MLflow and rank it."""
    from .runner import ResourceError, RunOptions
    from .sweep import submit as run_sweep
    from .trackinguri import TrackingUnreachable

    if detach and local:
        raise click.UsageError("--detach runs on a Ray cluster; leave out --local")
    spec = _spec(grid)
    n_trials = spec.n_trials()  # counted, not built: a huge grid is refused at once
    if not dry_run and n_trials > max_trials and not yes:
        raise click.UsageError(
            f"{grid} expands to {n_trials} trials, over the cap of {max_trials}; "
            "pass --yes to run them anyway, or --max-trials N"
        )
    if not dry_run and not detach:  # a detached sweep's store is the cluster's to reach
        _store(tracking_uri, must_exist=False)
    the_plan = _load(grid, spec)
    click.echo(describe(the_plan))
    if dry_run:
        for line in trial_lines(the_plan):
            click.echo(line)
        return
    if detach:
        from .jobs import detach as submit_as_job

        extra = ["--max-trials", str(max_trials)] + (["--yes"] if yes else [])
        extra += ["--timeout", str(timeout)] if timeout is not None else []
        submit_as_job(grid, address, tracking_uri, extra)
        return
    res = spec.resources
    options = RunOptions(
        local=local,
        address=address,
        cpus_per_trial=res.cpus_per_trial,
        gpus_per_trial=res.gpus_per_trial,
        timeout_s=timeout if timeout is not None else res.timeout_s,
        max_retries=res.max_retries,
        num_cpus=num_cpus,
        allow_cpu_fallback=res.allow_cpu_fallback,
    )
    try:
        outcome = run_sweep(
            the_plan, options, tracking_uri, echo=click.echo, progress_enabled=not quiet, journal_dir=journal
        )
    except ResourceError as exc:  # no GPU, or no node big enough for one trial
        raise UserError(f"{grid}: {exc}") from None
    except TrackingUnreachable as exc:
        raise _unreachable(exc) from None
    except ConnectionError as exc:
        raise UserError(
            f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: {exc}; "
            "check the address, or leave --address out to run on a local Ray"
        ) from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted: running trials were marked KILLED. Submit again to resume.", err=True)
        sys.exit(130)
    print_outcome(outcome)
    bad = sum(n for status, n in outcome.counts.items() if status in ("failed", "timed_out", "killed"))
    if bad or outcome.unsent:  # unsent: safe in the journal, but not in MLflow and not ranked
        sys.exit(1)


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.option("--examples", type=click.IntRange(min=1), default=16, show_default=True, help="Batch size of the check.")
def gradcheck(grid: str, examples: int) -> None:
    """Gradient-check every architecture/activation/regularizer combination of GRID.

    Each is checked from Xavier weights, whatever GRID's initializer. Exits 1 on a bug.
    """
    from .checks import gradient_checks

    the_plan = _load(grid)
    order = ("fine", "inconclusive", "look closer", "bug")
    worst = "fine"
    for line, verdict in gradient_checks(the_plan, examples):
        click.echo(line)
        worst = max(worst, verdict, key=order.index)
    click.echo(f"Overall: {worst}")
    if worst == "bug":
        sys.exit(1)


@main.command()
@tracking_uri_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 127.0.0.1 keeps it private.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def ui(tracking_uri: str | None, host: str, port: int) -> None:
    """Open MLflow's UI on the sweeps' store."""
    from .trackinguri import SERVER_SCHEMES, resolve_tracking_uri, sqlite_file

    uri = resolve_tracking_uri(tracking_uri)
    if uri.partition(":")[0].lower() in (*SERVER_SCHEMES, "databricks"):
        raise UserError(f"{uri} is a tracking server already; open it in a browser instead")
    _store(uri, must_exist=False)
    path = sqlite_file(uri)
    if path is not None and not path.exists():
        click.echo(f"Note: no MLflow store at {path.resolve()} yet; MLflow makes an empty one.", err=True)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    # MLflow's GenAI job runner (a runner and four huey consumer processes) serves nothing
    # a sweep logs; it stays off unless the user's environment turns it on.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    click.echo(f"MLflow UI on http://{host}:{port}  (Ctrl-C stops it)")
    os.execve(sys.executable, cmd, env)


@main.command()
@click.argument("sweep")
@tracking_uri_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def leaderboard(sweep: str, tracking_uri: str | None, fmt: str) -> None:
    """Rank the trials of SWEEP from MLflow.

    SWEEP is a grid name (its latest sweep), a sweep's run id, or the run id of one of its
    trials or chosen models.
    """
    from .ranking import FORMATS
    from .stored import load_sweep_rows

    rows = _from_store(load_sweep_rows, sweep, tracking_uri)
    click.echo(FORMATS[fmt](rows))


@main.command()
@click.argument("sweep")
@tracking_uri_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Leaderboard rows shown.")
def rank(sweep: str, tracking_uri: str | None, limit: int) -> None:
    """Rank SWEEP again from MLflow: leaderboard, diagnosis, what the grid taught, chosen models."""
    import time

    from .finalize import format_shipped
    from .ranking import format_table
    from .report import summarize

    t = time.time()
    stored = _stored(sweep, tracking_uri)
    points = [{a: r.params.get(a, "") for a in stored.axes} for r in stored.rows]
    summary = summarize(stored.rows, points, stored.baseline_error)
    click.echo(f"Sweep {stored.run_id} of '{stored.name}' (baseline error {stored.baseline_error:g}):")
    click.echo(format_table(stored.rows, limit=limit))
    if summary:
        click.echo("\nWhat the grid taught:")
        for line in summary:
            click.echo(f"  {line}")
    if stored.shipped:
        click.echo("\nModels to ship (dev and test error side by side):")
        click.echo(format_shipped(stored.shipped))
    elif nothing_shipped(stored.rows):
        click.echo(f"\n{nothing_shipped(stored.rows)}")
    click.echo(f"\n(ranked from MLflow in {time.time() - t:.2f} s, no retraining)")


@main.command()
@click.argument("sweep")
@tracking_uri_option
@click.option("--output", "-o", default=None, help="HTML file to write (default: sweeper-report/<name>.html).")
def report(sweep: str, tracking_uri: str | None, output: str | None) -> None:
    """Write the HTML report of SWEEP (plots, leaderboard, ensembles) from MLflow."""
    from .finalize import report_html, write_local

    stored = _stored(sweep, tracking_uri)
    html, _ = report_html(
        stored.tracker, stored.name, stored.rows, stored.axes,
        [s.as_report() for s in stored.shipped], stored.baseline_error,
    )
    path = write_local(output or f"sweeper-report/{stored.name}.html", html)
    click.echo(f"Wrote {path}")


@main.command()
@tracking_uri_option
@click.option("--journal", default=DEFAULT_JOURNAL, show_default=True, help="The journal folder.")
def sync(tracking_uri: str | None, journal: str) -> None:
    """Log the results sweeps kept in their journal while MLflow was away.

    Without --tracking-uri (or MLFLOW_TRACKING_URI), each result goes to the store its
    sweep used.
    """
    from .journal import Journal
    from .sweep import sync_all

    if tracking_uri is not None:  # otherwise each result goes to the store it was kept for
        _store(tracking_uri, must_exist=True)
    sent, left, closed = sync_all(tracking_uri, Journal(journal))
    click.echo(f"Logged {sent} journaled result(s); {left} left.")
    if closed:
        click.echo(f"Closed {closed} sweep run(s) whose driver could not; submit the grid again to rank them.")
    if left:
        sys.exit(1)


def _stored(sweep: str, tracking_uri: str | None):
    from .stored import load_stored

    return _from_store(load_stored, sweep, tracking_uri)


def _from_store(load, sweep: str, tracking_uri: str | None):
    """``load(sweep, tracking_uri, note)``, its user-facing failures as a UserError."""
    from .stored import StoredSweepError
    from .trackinguri import TrackingUnreachable

    try:
        return load(sweep, tracking_uri, lambda message: click.echo(f"Note: {message}", err=True))
    except StoredSweepError as exc:
        raise UserError(str(exc)) from None
    except TrackingUnreachable as exc:
        raise _unreachable(exc) from None


main.add_command(status_command, "status")
main.add_command(logs_command, "logs")


if __name__ == "__main__":  # pragma: no cover
    main()
