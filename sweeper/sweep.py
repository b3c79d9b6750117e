"""One submission, end to end: spec -> data -> trials -> Ray -> MLflow -> leaderboard."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .journal import DEFAULT_JOURNAL, Journal, TrialLogger
from .ranking import Entry, Row, format_csv, group_key, leaderboard
from .results import TrialResult
from .runner import RunOptions, check_a_node_fits, data_key, ensure_ray, execute, resolve_device
from .runcontent import param_strings
from .tracking import Tracker

if TYPE_CHECKING:  # pragma: no cover
    from core.splits import PreparedData

    from .spec import SweepSpec, TrialSpec

Echo = Callable[[str], None]
LOG_WAIT_SECONDS = 60.0  # how long the end of a sweep waits for an absent tracking store


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
    unsent: int = 0
    outcomes: dict[str, Any] = field(default_factory=dict)  # run id -> TrainOutcome
    shipped: list[Any] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    rank_seconds: float = 0.0
    finish_error: str = ""
    slots: int = 1

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
        """The wall time not spent training, per trial run.

        The training is spread over the slots that ran at once:
        (wall time - sum of training times / slots) / trials run.
        """
        n = len(self.results)
        return (self.wall_seconds - self.train_seconds / max(1, self.slots)) / n if n else 0.0


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
    params = param_strings(result.trial.params())
    return Entry(
        run_id=run_id,
        digest=result.trial.digest,
        label=result.trial.label(),
        group=group_key(params),
        status=result.status,
        train_error=result.train_error,
        dev_error=result.dev_error,
        n_params=int(out.n_params) if out is not None else 0,
        seed=result.trial.seed,
        params=params,
    )


def submit(
    the_plan: Plan,
    options: RunOptions,
    tracking_uri: str | None = None,
    echo: Echo = print,
    progress_enabled: bool = True,
    journal_dir: str | Path = DEFAULT_JOURNAL,
) -> SweepOutcome:
    """Runs the trials that have no result yet, logs each as it arrives, then ranks.

    Args:
        the_plan: From :func:`plan`.
        options: Where and how to run.
        tracking_uri: MLflow store; None means ``MLFLOW_TRACKING_URI`` or ./mlflow.db.
        echo: Where messages go.
        progress_enabled: Draw the progress line on stderr.
        journal_dir: Where results wait while the tracking store is away.
    """

    from concurrent.futures import ThreadPoolExecutor

    from .trackinguri import check_reachable, resolve_tracking_uri

    spec = the_plan.spec
    t0 = time.time()
    started_ray = False
    check_reachable(resolve_tracking_uri(tracking_uri))  # in a second, not after Ray's start
    # Opening the MLflow store (imports, schema migrations) and starting Ray each take
    # seconds, mostly waiting: do both at once. Either failing stops us before any run.
    with ThreadPoolExecutor(1) as pool:
        opening = pool.submit(Tracker, tracking_uri, spec.name, spec.history_points)
        try:
            if not options.local:
                started_ray = ensure_ray(options)
        finally:
            tracker = opening.result()
    try:
        options = resolve_device(options, echo)
        if not options.local:
            check_a_node_fits(options, echo)
        return _submit(the_plan, options, tracker, t0, echo, progress_enabled, Journal(journal_dir))
    finally:
        tracker.close()
        if started_ray:
            import ray

            ray.shutdown()


def sync_all(tracking_uri: str | None, journal: Journal, tracker: Tracker | None = None) -> tuple[int, int, int]:
    """Sends journaled results to their stores (``sweeper sync``).

    A sweep run whose results are all in and whose driver is gone (it could not close
    the run while the store was away) is then closed, unranked; the next submit ranks it.

    Args:
        tracking_uri: Send only the results kept for this store; None sends every store's.
        journal: Where the results wait.
        tracker: An open tracker to reuse for its own store and experiment.

    Returns:
        (sent, left, sweep runs closed).
    """
    trackers = {(tracker.tracking_uri, tracker.experiment_name): tracker} if tracker else {}
    waiting: dict[tuple[str, str, str], list[tuple[str, TrialResult]]] = {}
    for key, context, result in journal.pending(tracking_uri):
        where = (context["tracking_uri"], context["experiment"], context["sweep_run_id"])
        waiting.setdefault(where, []).append((key, result))
    sent = left = closed = 0
    for (uri, name, sweep_run_id), items in waiting.items():
        try:
            if (uri, name) not in trackers:
                trackers[uri, name] = Tracker(uri, name)
            answers = trackers[uri, name].log_trials(sweep_run_id, [r for _, r in items], retry=True)
        except Exception as exc:  # still away: they stay in the journal
            answers = [exc] * len(items)
        for (key, _), answer in zip(items, answers):
            if isinstance(answer, BaseException):
                left += 1
            else:
                journal.remove(key)
                sent += 1
        if not any(isinstance(a, BaseException) for a in answers):
            with contextlib.suppress(Exception):  # closing is a courtesy; the results are in
                closed += trackers[uri, name].close_abandoned_sweep(sweep_run_id)
    for opened in trackers.values():
        if opened is not tracker:
            opened.close()
    return sent, left, closed


def _with_diagnosis(result: TrialResult, baseline_error: float) -> TrialResult:
    from core.diagnosis import diagnose

    if result.status != "finished":
        return result
    d = diagnose(result.train_error, result.dev_error, baseline_error)
    tags = {
        "sweeper.verdict": d.verdict,
        "sweeper.recipe": d.recipe,
        "sweeper.avoidable_bias": f"{d.avoidable_bias:.6g}",
        "sweeper.variance": f"{d.variance:.6g}",
    }
    return dataclasses.replace(result, extra_tags={**result.extra_tags, **tags})


def _submit(the_plan: Plan, options: RunOptions, tracker: Tracker, t0: float, echo: Echo,
            progress_enabled: bool, journal: Journal) -> SweepOutcome:
    spec, trials = the_plan.spec, the_plan.trials
    sent, left, _ = sync_all(tracker.tracking_uri, journal, tracker)
    if sent or left:
        echo(f"Logged {sent} result(s) kept in the journal by an earlier sweep" + (f"; {left} still unsent." if left else "."))
    stale = tracker.mark_stale_running()
    if stale:
        echo(f"Marked {stale} run(s) left RUNNING by a driver that is gone as KILLED.")
    done = tracker.completed_digests()
    todo = [t for t in trials if t.digest not in done]
    outcome = SweepOutcome(spec.name, tracker.tracking_uri, None, len(trials), len(trials) - len(todo))
    outcome.stale_marked = stale
    if not todo:
        again = _why_rank_again(tracker, spec, trials)
        echo(f"All {len(trials)} trials of '{spec.name}' already have results: nothing to train"
             + (f"; ranking them again, since {again}." if again else "."))
        if not again:
            outcome.rows = leaderboard(tracker.trial_entries(t.digest for t in trials), spec.baseline_error)
            outcome.wall_seconds = time.time() - t0
            return outcome
    elif outcome.n_skipped:
        echo(f"{outcome.n_skipped} of {len(trials)} trials already have results; training the other {len(todo)}.")
    run_id = tracker.start_sweep(spec, len(todo), outcome.n_skipped, {
        "mode": "local" if options.local else "ray",
        "fingerprint": the_plan.fingerprint,
        "axes": json.dumps([k for k, _ in spec.grid]),
        "ensemble": _ensemble_param(spec),
    })
    outcome.sweep_run_id = run_id
    tracker.client.log_text(run_id, json.dumps([t.digest for t in trials]), "trials.json")
    entries = tracker.trial_entries(t.digest for t in trials if t.digest in done)
    status = "FINISHED"
    try:
        if todo:
            _run_trials(the_plan, todo, options, tracker, run_id, journal, outcome, entries, progress_enabled, echo)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        outcome.rows = leaderboard(entries, spec.baseline_error)
        if status == "FINISHED":
            _finish(the_plan, tracker, run_id, outcome, entries, echo)
        outcome.wall_seconds = time.time() - t0
        try:
            tracker.finish_sweep(run_id, status, _sweep_metrics(outcome), {"leaderboard.csv": format_csv(outcome.rows)})
        except Exception as exc:  # the store is away; the trials are safe in MLflow or the journal
            echo(f"Warning: could not close the sweep run {run_id}: {type(exc).__name__}: {str(exc)[:200]}")
    return outcome


RANKED_TAG = "sweeper.ranked"
"""On a sweep run whose ensembles, test errors and report were all made."""


def _ensemble_param(spec: "SweepSpec") -> str:
    return json.dumps(dataclasses.asdict(spec.ensemble), sort_keys=True)


def _why_rank_again(tracker: Tracker, spec: "SweepSpec", trials: list["TrialSpec"]) -> str | None:
    """Why a grid whose every trial has a result still needs ranking, or None.

    Digests cover the training settings alone, so a changed ``ensemble`` section or
    ``baseline_error``, a grid that lost points, or an earlier sweep that stopped before
    its ensembles (the store was away) leave nothing to train but something to rank.
    """
    from .stored import sweep_digests
    from .tracking import KIND_TAG

    runs = tracker.search(f"tags.`{KIND_TAG}` = 'sweep'", order_by=["attributes.start_time DESC"])
    last = next(iter(runs), None)
    if last is None:
        return "no sweep of this experiment ranked them"
    params = last.data.params
    if last.data.tags.get(RANKED_TAG) != "true":
        return "the last sweep did not finish ranking them"
    if params.get("ensemble") != _ensemble_param(spec):
        return "the ensemble section changed"
    if float(params.get("baseline_error", "nan")) != spec.baseline_error:
        return "baseline_error changed"
    try:
        ranked = set(sweep_digests(tracker, last))
    except Exception:  # its trials.json is gone (deleted artifacts): rank again, to be sure
        return "the last sweep's list of trials cannot be read"
    if ranked != {t.digest for t in trials}:
        return "the last sweep ranked a different set of trials"
    return None


def _run_trials(the_plan, todo, options, tracker, run_id, journal, outcome, entries, progress_enabled,
                echo: Echo = print) -> None:
    from .progress import Progress

    progress = Progress(len(todo), enabled=progress_enabled)
    lock = threading.Lock()
    baseline = the_plan.spec.baseline_error

    def on_sent(result: TrialResult, rid: str) -> None:
        with lock:
            entries.append(entry_of(result, rid))
            if result.outcome is not None:
                outcome.outcomes[rid] = result.outcome

    context = {"tracking_uri": tracker.tracking_uri, "experiment": tracker.experiment_name, "sweep_run_id": run_id}
    logger = TrialLogger(lambda rs, retries: tracker.log_trials(run_id, rs, retries), journal, context, on_sent)

    def on_result(result: TrialResult) -> None:
        result = _with_diagnosis(result, baseline)
        outcome.results.append(result)
        logger.put(result)
        if result.status != "killed":  # Ctrl-C: the line is about to go, not to count failures
            progress.result(result.status == "finished")

    try:
        outcome.slots = execute(todo, the_plan.data, options, on_result, progress.set_running)
    finally:
        progress.close()
        outcome.unsent = logger.close(LOG_WAIT_SECONDS, lambda: echo(
            f"Waiting for MLflow at {tracker.tracking_uri} to take the last results, for up to "
            f"{LOG_WAIT_SECONDS:.0f} s while it does not answer (they are safe in {journal.root})."))
        outcome.logging_errors = sorted(set(logger.errors))
        logged = {e.digest for e in entries}
        # A result MLflow has not taken yet still ranks; it waits in the journal.
        entries.extend(entry_of(r, "") for r in outcome.results if r.trial.digest not in logged)


def _finish(the_plan: Plan, tracker: Tracker, run_id: str, outcome: SweepOutcome, entries, echo: Echo) -> None:
    """Ensembles, the test set once, the registered model and the report; never fatal."""
    from .finalize import report_html, ship

    spec = the_plan.spec
    t = time.time()
    if outcome.unsent:
        echo("Skipping ensembles and the report: some results are not in MLflow yet (`sweeper sync`, then submit again).")
        return
    try:
        outcome.shipped = ship(tracker, run_id, spec, entries, the_plan.data, outcome.outcomes)
        html, outcome.summary = report_html(
            tracker, spec.name, outcome.rows, [k for k, _ in spec.grid],
            [s.as_report() for s in outcome.shipped], spec.baseline_error, outcome.outcomes,
        )
        tracker.client.log_text(run_id, html, "report.html")
        tracker.client.log_text(run_id, "\n".join(outcome.summary) + "\n", "summary.txt")
        tracker.client.set_tag(run_id, RANKED_TAG, "true")
    except Exception as exc:  # the trials are safe in MLflow; say what went wrong
        outcome.finish_error = f"{type(exc).__name__}: {exc}"
        echo(f"Warning: ranking step failed after the trials were logged: {outcome.finish_error}")
    outcome.rank_seconds = time.time() - t


def _sweep_metrics(outcome: SweepOutcome) -> dict[str, float]:
    return {
        "wall_seconds": outcome.wall_seconds,
        "train_seconds": outcome.train_seconds,
        "overhead_per_trial_seconds": outcome.overhead_per_trial,
        "slots": float(outcome.slots),
        "rank_seconds": outcome.rank_seconds,
        **{f"trials_{k}": float(v) for k, v in outcome.counts.items()},
        **{f"{s.method}_dev_error": s.dev_error for s in outcome.shipped},
        **{f"{s.method}_test_error": s.test_error for s in outcome.shipped},
    }
