"""The ``sweeper`` command line. Commands stay thin; ray and mlflow load inside them."""

from __future__ import annotations

import os
import sys

import click

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


def _load(grid: str):
    """Spec and plan for a grid file; user mistakes become a UserError."""
    from core.datasets import DatasetError

    from .spec import SpecError, load_spec
    from .sweep import plan

    try:
        spec = load_spec(grid)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    for warning in spec.warnings:
        click.echo(f"Warning: {warning}", err=True)
    try:
        return plan(spec)
    except DatasetError as exc:
        raise UserError(f"{grid}: dataset: {exc}") from None


def _trial_lines(the_plan) -> list[str]:
    width = len(str(len(the_plan.trials)))
    return [
        f"{i + 1:>{width}}  {t.digest[:12]}  seed={t.seed}  {t.label()}" for i, t in enumerate(the_plan.trials)
    ]


def _describe(the_plan) -> str:
    spec, data = the_plan.spec, next(iter(the_plan.data.values()))
    return (
        f"'{spec.name}': {len(the_plan.trials)} trials ({spec.n_trials() // max(spec.seeds, 1)} grid points "
        f"x {spec.seeds} seed(s)); data {data.name}: {len(data.y_train)} train / {len(data.y_dev)} dev / "
        f"{len(data.y_test)} test, {data.n_features} features, {data.n_classes} classes"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeper")
def main() -> None:
    """Hyperparameter sweeps for fully-connected networks, on Ray, tracked in MLflow."""


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
def validate(grid: str) -> None:
    """Check GRID and list its trials; nothing runs. Every problem is reported at once."""
    the_plan = _load(grid)
    click.echo(f"{grid} is valid: {_describe(the_plan)}")
    for line in _trial_lines(the_plan):
        click.echo(line)


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.option("--address", envvar="RAY_ADDRESS", help="Ray cluster address (default: start a local Ray).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: sqlite:///mlflow.db).")
@click.option("--local", is_flag=True, help="Run trials in this process, without Ray.")
@click.option("--dry-run", is_flag=True, help="Validate and list the trials; run nothing.")
@click.option("--yes", "-y", is_flag=True, help="Run grids larger than --max-trials.")
@click.option("--max-trials", default=DEFAULT_MAX_TRIALS, show_default=True, help="Trials allowed without --yes.")
@click.option("--num-cpus", type=int, default=None, help="CPUs of a local Ray (default: all).")
@click.option("--timeout", type=float, default=None, help="Per-trial timeout in seconds (overrides the grid).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option("--journal", default=DEFAULT_JOURNAL, show_default=True, help="Where results wait while MLflow is away.")
@detach_option
def submit(grid, address, tracking_uri, local, dry_run, yes, max_trials, num_cpus, timeout, quiet, journal, detach) -> None:
    """Run every trial of GRID that has no result yet, log it to MLflow and rank it."""
    from .runner import ResourceError, RunOptions
    from .sweep import submit as run_sweep
    from .trackinguri import TrackingUnreachable

    the_plan = _load(grid)
    spec = the_plan.spec
    click.echo(_describe(the_plan))
    if dry_run:
        for line in _trial_lines(the_plan):
            click.echo(line)
        return
    if len(the_plan.trials) > max_trials and not yes:
        raise click.UsageError(
            f"{grid} expands to {len(the_plan.trials)} trials, over the cap of {max_trials}; "
            "pass --yes to run them anyway, or --max-trials N"
        )
    if detach:
        if local:
            raise click.UsageError("--detach runs on a Ray cluster; leave out --local")
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
        raise UserError(
            f"cannot reach the MLflow tracking server ({exc}); start it, or pass another --tracking-uri"
        ) from None
    except ConnectionError as exc:
        raise UserError(
            f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: {exc}; "
            "check the address, or leave --address out to run on a local Ray"
        ) from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted: running trials were marked KILLED. Submit again to resume.", err=True)
        sys.exit(130)
    _print_outcome(outcome)
    bad = sum(n for status, n in outcome.counts.items() if status in ("failed", "timed_out", "killed"))
    if bad or outcome.unsent:  # unsent: safe in the journal, but not in MLflow and not ranked
        sys.exit(1)


def format_shipped(shipped) -> str:
    """The chosen models side by side: dev and test error, members, registered model."""
    lines = [f"  {'model':<10} {'dev err':>8} {'test err':>9} {'members':>8}  registered as"]
    for s in shipped:
        lines.append(
            f"  {s.method:<10} {s.dev_error:>8.4f} {s.test_error:>9.4f} {len(s.members):>8}  {s.model_uri}"
        )
    return "\n".join(lines)


def _print_outcome(outcome) -> None:
    from .ranking import format_table

    n = len(outcome.results)
    if n:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(outcome.counts.items()))
        click.echo(
            f"\nRan {n} trials ({counts}) in {outcome.wall_seconds:.1f} s: training {outcome.train_seconds:.1f} s "
            f"on {outcome.slots} slot{'s' if outcome.slots != 1 else ''}, "
            f"overhead {outcome.overhead_per_trial * 1000:.0f} ms per trial; {outcome.n_skipped} skipped (already done)."
        )
        for r in outcome.results:
            if r.status in ("failed", "timed_out", "diverged"):
                click.echo(f"  {r.status}: {r.trial.label()}: {(r.reason or '').splitlines()[0]}")
    if outcome.unsent:
        click.echo(
            f"Warning: MLflow did not take {outcome.unsent} result(s) ({'; '.join(outcome.logging_errors[:3])}). "
            "They are kept in the journal and logged by the next submit or by `sweeper sync`.",
            err=True,
        )
    click.echo("\nLeaderboard (by mean dev error over seeds):")
    click.echo(format_table(outcome.rows, limit=15))
    if outcome.rows and outcome.rows[0].rank:
        best = outcome.rows[0]
        click.echo(f"\nBest: {best.label}  dev error {best.dev_error:.4f}: {best.verdict} ({best.recipe})")
    if outcome.summary:
        click.echo("\nWhat the grid taught:")
        for line in outcome.summary:
            click.echo(f"  {line}")
    if outcome.shipped:
        click.echo(f"\nModels to ship (test set used once, for these alone; ranking took {outcome.rank_seconds:.1f} s):")
        click.echo(format_shipped(outcome.shipped))
    uri = outcome.tracking_uri
    click.echo(f"\nExperiment '{outcome.experiment}' in {uri}. Browse it with:")
    click.echo(f"  sweeper ui{'' if uri == 'sqlite:///mlflow.db' else ' --tracking-uri ' + uri}")
    if uri.startswith("sqlite:"):
        click.echo(f"  or: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)")


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.option("--examples", default=16, show_default=True, help="Batch size of the check.")
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
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: sqlite:///mlflow.db).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 127.0.0.1 keeps it private.")
@click.option("--port", default=5000, show_default=True)
def ui(tracking_uri: str | None, host: str, port: int) -> None:
    """Open MLflow's UI on the sweeps' store."""
    from .trackinguri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    if not uri.startswith(("sqlite:", "file:", "postgresql", "mysql")) and "://" in uri:
        raise UserError(f"{uri} is a tracking server already; open it in a browser instead")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    # MLflow's GenAI job runner (a runner and four huey consumer processes) serves nothing
    # a sweep logs; it stays off unless the user's environment turns it on.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    click.echo(f"MLflow UI on http://{host}:{port}  (Ctrl-C stops it)")
    os.execve(sys.executable, cmd, env)


@main.command()
@click.argument("sweep")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: sqlite:///mlflow.db).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def leaderboard(sweep: str, tracking_uri: str | None, fmt: str) -> None:
    """Rank the trials of SWEEP (a sweep run id, or a grid name for its latest sweep) from MLflow."""
    from .ranking import FORMATS
    from .stored import StoredSweepError, load_sweep_rows

    try:
        rows = load_sweep_rows(sweep, tracking_uri)
    except StoredSweepError as exc:
        raise UserError(str(exc)) from None
    click.echo(FORMATS[fmt](rows))


@main.command()
@click.argument("sweep")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: sqlite:///mlflow.db).")
@click.option("--limit", default=20, show_default=True, help="Leaderboard rows shown.")
def rank(sweep: str, tracking_uri: str | None, limit: int) -> None:
    """Rank SWEEP again from MLflow: leaderboard, diagnosis, what the grid taught, chosen models."""
    import time

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
    click.echo(f"\n(ranked from MLflow in {time.time() - t:.2f} s, no retraining)")


@main.command()
@click.argument("sweep")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: sqlite:///mlflow.db).")
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
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: sqlite:///mlflow.db).")
@click.option("--journal", default=DEFAULT_JOURNAL, show_default=True, help="The journal folder.")
def sync(tracking_uri: str | None, journal: str) -> None:
    """Log the results sweeps kept in their journal while MLflow was away.

    Without --tracking-uri (or MLFLOW_TRACKING_URI), each result goes to the store its
    sweep used.
    """
    from .journal import Journal
    from .sweep import sync_all

    sent, left, closed = sync_all(tracking_uri, Journal(journal))
    click.echo(f"Logged {sent} journaled result(s); {left} left.")
    if closed:
        click.echo(f"Closed {closed} sweep run(s) whose driver could not; submit the grid again to rank them.")
    if left:
        sys.exit(1)


def _stored(sweep: str, tracking_uri: str | None):
    from .stored import StoredSweepError, load_stored

    try:
        return load_stored(sweep, tracking_uri)
    except StoredSweepError as exc:
        raise UserError(str(exc)) from None


main.add_command(status_command, "status")
main.add_command(logs_command, "logs")


if __name__ == "__main__":  # pragma: no cover
    main()
