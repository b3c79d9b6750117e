"""One submission, end to end: spec -> data -> trials -> Ray -> MLflow -> leaderboard."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .ranking import Entry, Row, format_csv, group_key, leaderboard
from .results import TrialResult
from .runner import RunOptions, data_key, ensure_ray, execute, resolve_device
from .tracking import Tracker, param_strings

if TYPE_CHECKING:  # pragma: no cover
    from core.splits import PreparedData

    from .spec import SweepSpec, TrialSpec

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """A validated sweep ready to run: the spec, its data and its trials."""

    spec: "SweepSpec"
    data: dict[tuple[bool, str], "PreparedData"]
    trials: list["TrialSpec"]

    @property
    def fingerprint(self) -> str:
        return next(iter(self.data.values())).fingerprint


@dataclass
class SweepOutcome:
    """What a submission did, for the CLI to print and tests to check."""

    experiment: str
    tracking_uri: str
    sweep_run_id: str | None
    n_trials: int
    n_skipped: int
    results: list[TrialResult] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    wall_seconds: float = 0.0
    stale_marked: int = 0
    logging_errors: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def train_seconds(self) -> float:
        return float(sum(r.seconds for r in self.results))

    @property
    def overhead_per_trial(self) -> float:
        """(wall time - sum of training times) / trials run."""
        n = len(self.results)
        return (self.wall_seconds - self.train_seconds) / n if n else 0.0


def plan(spec: "SweepSpec") -> Plan:
    """Loads and splits the data once per (normalize, dtype) the grid needs; expands trials.

    Raises:
        core.datasets.DatasetError: The data cannot be used (missing file, bad cells...).
    """
    from core.datasets import load_dataset
    from core.splits import prepare

    from .spec import data_seed, expand

    base_dir = Path(spec.path).parent if spec.path else Path(".")
    seed = data_seed(spec.seed)
    dataset = load_dataset(dict(spec.dataset), base_dir, rng=np.random.default_rng(seed))
    split = spec.split
    # The fingerprint does not depend on normalize/dtype, so expand with any variant's.
    probe = prepare(dataset, split, rng=np.random.default_rng(seed), normalize=False, dtype="float64")
    trials = expand(spec, probe.fingerprint)
    data = {}
    for key in sorted({data_key(t) for t in trials}):
        normalize, dtype = key
        data[key] = prepare(dataset, split, rng=np.random.default_rng(seed), normalize=normalize, dtype=dtype)
    return Plan(spec, data, trials)


def entry_of(result: TrialResult, run_id: str) -> Entry:
    """A ranking entry for a result that was just computed."""
    out = result.outcome
    return Entry(
        run_id=run_id,
        digest=result.trial.digest,
        label=result.trial.label(),
        group=group_key(param_strings(result.trial.params())),
        status=result.status,
        train_error=result.train_error,
        dev_error=result.dev_error,
        n_params=int(out.n_params) if out is not None else 0,
        seed=result.trial.seed,
    )


def submit(
    the_plan: Plan,
    options: RunOptions,
    tracking_uri: str | None = None,
    echo: Echo = print,
    progress_enabled: bool = True,
) -> SweepOutcome:
    """Runs the trials that have no result yet, logs each as it arrives, then ranks.

    Args:
        the_plan: From :func:`plan`.
        options: Where and how to run.
        tracking_uri: MLflow store; None means ``MLFLOW_TRACKING_URI`` or ./mlflow.db.
        echo: Where messages go.
        progress_enabled: Draw the progress line on stderr.
    """
    from .progress import Progress

    spec, trials = the_plan.spec, the_plan.trials
    t0 = time.time()
    tracker = Tracker(tracking_uri, spec.name)
    started_ray = False
    if not options.local:  # an unreachable cluster or a missing GPU stops us before any run
        started_ray = ensure_ray(options)
    try:
        options = resolve_device(options, echo)
        return _submit(the_plan, options, tracker, t0, echo, progress_enabled)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _submit(the_plan: Plan, options: RunOptions, tracker: Tracker, t0: float, echo: Echo, progress_enabled: bool):
    from .progress import Progress

    spec, trials = the_plan.spec, the_plan.trials
    stale = tracker.mark_stale_running()
    if stale:
        echo(f"Marked {stale} run(s) left RUNNING by an earlier driver as KILLED.")
    done = tracker.completed_digests()
    todo = [t for t in trials if t.digest not in done]
    outcome = SweepOutcome(spec.name, tracker.tracking_uri, None, len(trials), len(trials) - len(todo))
    outcome.stale_marked = stale
    if not todo:
        echo(f"All {len(trials)} trials of '{spec.name}' already have results: nothing to train.")
        outcome.rows = leaderboard(tracker.trial_entries(t.digest for t in trials), spec.baseline_error)
        outcome.wall_seconds = time.time() - t0
        return outcome
    if outcome.n_skipped:
        echo(f"{outcome.n_skipped} of {len(trials)} trials already have results; training the other {len(todo)}.")
    run_id = tracker.start_sweep(
        spec, len(todo), outcome.n_skipped,
        {"mode": "local" if options.local else "ray", "fingerprint": the_plan.fingerprint},
    )
    outcome.sweep_run_id = run_id
    tracker.client.log_text(run_id, json.dumps([t.digest for t in trials]), "trials.json")
    progress = Progress(len(todo), enabled=progress_enabled)
    entries = tracker.trial_entries(t.digest for t in trials if t.digest in done)

    def on_result(result: TrialResult) -> None:
        outcome.results.append(result)
        try:
            rid = tracker.log_trial(run_id, result)
        except Exception as exc:  # keep the result; report the logging failure at the end
            rid = ""
            outcome.logging_errors.append(f"{result.trial.label()}: {type(exc).__name__}: {exc}")
        entries.append(entry_of(result, rid))
        progress.result(result.status == "finished")

    status = "FINISHED"
    try:
        execute(todo, the_plan.data, options, on_result, progress.set_running)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        progress.close()
        outcome.wall_seconds = time.time() - t0
        outcome.rows = leaderboard(entries, spec.baseline_error)
        tracker.finish_sweep(
            run_id,
            status,
            {
                "wall_seconds": outcome.wall_seconds,
                "train_seconds": outcome.train_seconds,
                "overhead_per_trial_seconds": outcome.overhead_per_trial,
                **{f"trials_{k}": float(v) for k, v in outcome.counts.items()},
            },
            {"leaderboard.csv": format_csv(outcome.rows)},
        )
    return outcome
