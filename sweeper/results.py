"""What one trial produced, and how a worker produces it."""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from core.splits import PreparedData
    from core.train import TrainOutcome

    from .spec import TrialSpec

STATUSES = ("finished", "diverged", "failed", "timed_out", "killed")


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial, as the driver logs and ranks it.

    Attributes:
        trial: The trial that ran.
        status: One of ``STATUSES``.
        reason: Why it diverged, failed or timed out; None when it finished.
        outcome: The core's training outcome; None when no training result exists.
        seconds: Wall time of training alone (the core's own measure).
        started_ms: Epoch milliseconds when the worker began the trial.
        ended_ms: Epoch milliseconds when it ended.
        node: Where it ran, ``host:pid``.
        extra_tags: More tags for the trial's MLflow run (diagnosis, warnings).
    """

    trial: "TrialSpec"
    status: str
    reason: str | None = None
    outcome: "TrainOutcome | None" = None
    seconds: float = 0.0
    started_ms: int = 0
    ended_ms: int = 0
    node: str = ""
    extra_tags: dict[str, str] = field(default_factory=dict)

    @property
    def dev_error(self) -> float:
        """The dev error, NaN when no usable result exists."""
        if self.outcome is None or self.status not in ("finished",):
            return float("nan")
        return float(self.outcome.dev_error)

    @property
    def train_error(self) -> float:
        """The training error, NaN when no usable result exists."""
        if self.outcome is None or self.status not in ("finished",):
            return float("nan")
        return float(self.outcome.train_error)


def node_name() -> str:
    """Where this process runs, for the trial's ``sweeper.node`` tag.

    ``host:pid``, plus ``:<ray node id>`` inside a Ray worker, so trials on several Ray
    nodes of one machine (``ray.cluster_utils.Cluster``) are told apart.
    """
    name = f"{socket.gethostname()}:{os.getpid()}"
    ray = sys.modules.get("ray")  # never import Ray just to ask
    if ray is not None and ray.is_initialized():
        name += f":{ray.get_runtime_context().get_node_id()}"
    return name


class _OutOfTime(Exception):
    """Raised between epochs once a trial has used up its timeout."""


def _clock(timeout_s: float | None, started: float):
    """An ``on_epoch`` callback that stops training once ``timeout_s`` has passed."""
    if timeout_s is None:
        return None

    def check(epoch: int, _metrics) -> None:
        if time.time() - started > timeout_s:
            raise _OutOfTime(epoch + 1)

    return check


def timeout_reason(timeout_s: float, how: str) -> str:
    return f"exceeded the per-trial timeout of {timeout_s:g} s ({how})"


def run_trial(
    trial: "TrialSpec", data: "PreparedData", device: str = "cpu", timeout_s: float | None = None
) -> TrialResult:
    """Trains one trial and never raises: a failure becomes a ``failed`` result.

    Args:
        trial: What to train.
        data: Training and dev splits (the test set is never sent to workers).
        device: ``cpu`` for NumPy, ``gpu`` for CuPy.
        timeout_s: Ends the trial as ``timed_out`` at the first epoch boundary past this
            many seconds from its own start (not from when its task was sent, which
            would charge it for starting a worker).
    """
    from core.backend import get_array_module
    from core.train import train

    started = time.time()
    try:
        xp = get_array_module(device)
        rng = np.random.default_rng(trial.seed)
        outcome = train(
            trial.config, data.X_train, data.y_train, data.X_dev, data.y_dev, data.n_classes, rng, xp=xp,
            on_epoch=_clock(timeout_s, started),
        )
    except _OutOfTime as stop:
        ended = time.time()
        return TrialResult(
            trial, "timed_out", reason=timeout_reason(timeout_s, f"stopped by its worker after {stop.args[0]} epochs"),
            seconds=ended - started, started_ms=int(started * 1000), ended_ms=int(ended * 1000), node=node_name(),
        )
    except Exception as exc:  # a trial's bug or bad data must not end the sweep
        ended = time.time()
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return TrialResult(
            trial,
            "failed",
            reason=f"{text}\n{traceback.format_exc(limit=-4)}",
            seconds=ended - started,
            started_ms=int(started * 1000),
            ended_ms=int(ended * 1000),
            node=node_name(),
        )
    ended = time.time()
    tags = {f"sweeper.warning.{i}": w[:4000] for i, w in enumerate(outcome.warnings)}
    tags["sweeper.gradient_health"] = outcome.gradient_health
    return TrialResult(
        trial,
        outcome.status,
        reason=outcome.reason,
        outcome=outcome,
        seconds=outcome.seconds,
        started_ms=int(started * 1000),
        ended_ms=int(ended * 1000),
        node=node_name(),
        extra_tags=tags,
    )


def run_chunk(trials: list["TrialSpec"], data: "PreparedData", device: str, threads: int,
              timeout_s: float | None = None) -> list[TrialResult]:
    """Runs several trials in one worker, each with ``threads`` BLAS threads and at most
    ``timeout_s`` seconds of its own."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, int(threads))):
        return [run_trial(t, data, device, timeout_s) for t in trials]


def failed_result(trial: "TrialSpec", status: str, reason: str, started: float) -> TrialResult:
    """A result for a trial that produced nothing (timed out, lost, killed)."""
    now = time.time()
    return TrialResult(
        trial, status, reason=reason, seconds=0.0, started_ms=int(started * 1000), ended_ms=int(now * 1000)
    )
