"""What the command line prints about a grid and a finished sweep."""

from __future__ import annotations

from collections import Counter

import click


def trial_lines(the_plan) -> list[str]:
    width = len(str(len(the_plan.trials)))
    return [
        f"{i + 1:>{width}}  {t.digest[:12]}  seed={t.seed}  {t.label()}" for i, t in enumerate(the_plan.trials)
    ]


def describe(the_plan) -> str:
    spec, data = the_plan.spec, next(iter(the_plan.data.values()))
    return (
        f"'{spec.name}': {len(the_plan.trials)} trials ({spec.n_trials() // max(spec.seeds, 1)} grid points "
        f"x {spec.seeds} seed(s)); data {data.name}: {len(data.y_train)} train / {len(data.y_dev)} dev / "
        f"{len(data.y_test)} test, {data.n_features} features, {data.n_classes} classes"
    )


def print_outcome(outcome) -> None:
    """What ``submit`` prints when the sweep is done: counts, leaderboard, models, store."""
    from .finalize import format_shipped
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
    elif nothing_shipped(outcome.rows):
        click.echo(f"\n{nothing_shipped(outcome.rows)}")
    uri = outcome.tracking_uri
    click.echo(f"\nExperiment '{outcome.experiment}' in {uri}. Browse it with:")
    click.echo(f"  sweeper ui{'' if uri == 'sqlite:///mlflow.db' else ' --tracking-uri ' + uri}")
    if uri.startswith("sqlite:"):
        click.echo(f"  or: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)")


def nothing_shipped(rows) -> str | None:
    """Why no model was chosen, where no trial finished: the leaderboard's points by status."""
    if not rows or any(row.seeds for row in rows):
        return None
    counts = Counter(row.status for row in rows)
    return (f"Models to ship: none, since no trial finished (grid points: "
            f"{', '.join(f'{n} {status}' for status, n in sorted(counts.items()))}); nothing was tested or registered.")
