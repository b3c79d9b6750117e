"""A local journal of computed results, so a tracking-server outage loses nothing.

Every result is written here (JSON for the record, ``.npz`` for the arrays; no pickle)
before it is sent to MLflow, and removed once MLflow holds it. A background thread sends
results while training goes on, retrying with backoff while the server is away; what is
still unsent when the sweep ends is sent by the next ``sweeper submit`` or ``sweeper sync``.

Entries are written whole (a temporary name, then a rename; the JSON last) but not synced
to disk: they outlive the driver process and the tracking server, which is what they are
for, but not a crash of the machine itself, and a sync costs a few milliseconds a trial.
A result lost that way is no worse than one never computed: resubmitting trains it again.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .results import TrialResult

DEFAULT_JOURNAL = ".sweeper-journal"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def encode(result: TrialResult) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A result as a JSON-ready record and a dict of arrays."""
    trial = result.trial
    record: dict[str, Any] = {
        "trial": {
            "params": _plain(trial.config.to_params()),
            "repeat": trial.repeat,
            "seed": trial.seed,
            "digest": trial.digest,
            "point": [[k, _plain(v)] for k, v in trial.point],
        },
        **{k: getattr(result, k) for k in ("status", "reason", "seconds", "started_ms", "ended_ms", "node")},
        "extra_tags": dict(result.extra_tags),
        "outcome": None,
    }
    arrays: dict[str, np.ndarray] = {}
    out = result.outcome
    if out is not None:
        scalars = {f.name: _plain(getattr(out, f.name)) for f in fields(out) if f.name not in ("params", "dev_proba")}
        record["outcome"] = scalars
        arrays = {f"params/{k}": np.asarray(v) for k, v in out.params.items()}
        arrays["dev_proba"] = np.asarray(out.dev_proba)
    return record, arrays


def decode(record: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrialResult:
    """The inverse of :func:`encode`."""
    from core.config import TrainConfig
    from core.train import TrainOutcome

    from .spec import TrialSpec

    t = record["trial"]
    trial = TrialSpec(
        TrainConfig.from_params(t["params"]), t["repeat"], t["seed"], t["digest"],
        tuple((k, _tupled(v)) for k, v in t["point"]),
    )
    outcome = None
    if record["outcome"] is not None:
        scalars = dict(record["outcome"])
        scalars["warnings"] = tuple(scalars.get("warnings", ()))
        params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("params/")}
        outcome = TrainOutcome(params=params, dev_proba=arrays["dev_proba"], **scalars)
    keys = ("status", "reason", "seconds", "started_ms", "ended_ms", "node", "extra_tags")
    return TrialResult(trial, outcome=outcome, **{k: record[k] for k in keys})


class Journal:
    """Results not yet in MLflow, one ``.json`` + ``.npz`` pair each, under ``root``."""

    def __init__(self, root: str | Path = DEFAULT_JOURNAL):
        self.root = Path(root)

    def write(self, context: dict[str, str], result: TrialResult) -> str:
        """Stores a result whole (see the module docstring); returns its key. ``context`` names store and sweep."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = f"{result.trial.digest[:16]}-{uuid.uuid4().hex[:8]}"
        record, arrays = encode(result)
        record["context"] = context
        tmp = self.root / f".{key}.tmp"
        with open(tmp.with_suffix(".npz"), "wb") as f:  # no fsync: see the module's docstring
            np.savez(f, **arrays)
        os.replace(tmp.with_suffix(".npz"), self.root / f"{key}.npz")
        tmp.with_suffix(".json").write_text(json.dumps(record, default=_plain))
        os.replace(tmp.with_suffix(".json"), self.root / f"{key}.json")  # the JSON marks it complete
        return key

    def remove(self, key: str) -> None:
        for suffix in (".json", ".npz"):
            (self.root / f"{key}{suffix}").unlink(missing_ok=True)

    def pending(self, tracking_uri: str | None = None) -> Iterator[tuple[str, dict[str, str], TrialResult]]:
        """(key, context, result) of every stored result, oldest first, for one store or all."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime):
            record = json.loads(path.read_text())
            if tracking_uri is not None and record["context"].get("tracking_uri") != tracking_uri:
                continue
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            yield path.stem, record["context"], decode(record, arrays)


class TrialLogger:
    """Sends results to MLflow on a background thread; journals each one first.

    Whatever has queued up while one send was going on goes in the next, together: on a
    SQL store that is one transaction for all of them.

    Args:
        send: Logs results to MLflow: called as ``send(results, retries)``, where
            ``retries[i]`` says an earlier try of ``results[i]`` failed (and may have left
            a partial run). Returns, per result, its run id or the exception that kept it
            out; may also raise, which fails them all, while the store is away.
        journal: Where results wait until ``send`` takes them.
        context: Stored with each journal entry (tracking URI, experiment, sweep run).
        on_sent: Called on the logging thread with (result, run id) after each success.
    """

    MAX_DELAY = 30.0  # seconds between retries, at most, while the store is away
    MAX_BATCH = 256  # results per send, at most
    QUIET_WAIT = 1.0  # seconds close() waits before saying why

    def __init__(self, send: Callable[[list[TrialResult], list[bool]], list[Any]], journal: Journal,
                 context: dict[str, str], on_sent: Callable[[TrialResult, str], None] | None = None):
        self.send, self.journal, self.context, self.on_sent = send, journal, context, on_sent
        self.queue: queue.Queue = queue.Queue()
        self.errors: list[str] = []
        self.unsent = 0
        self._stop_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="sweeper-logger", daemon=True)
        self._thread.start()

    def put(self, result: TrialResult) -> None:
        """Journals the result at once, then queues it for MLflow."""
        key = self.journal.write(self.context, result)
        self.queue.put((key, result))

    def _run(self) -> None:
        pending: list[tuple[str, TrialResult, bool]] = []  # (journal key, result, retry)
        closing = False
        delay = 1.0
        while True:
            if not pending and not closing:
                item = self.queue.get()
                if item is None:
                    return
                pending.append((*item, False))
            closing = self._take(pending) or closing
            if not pending:
                return
            pending = self._send(pending)
            if not pending:
                delay = 1.0
                continue
            if self._stop_at is not None and time.time() + delay > self._stop_at:
                self.unsent += len(pending) + self._drain()
                return
            time.sleep(delay)
            delay = min(delay * 2, self.MAX_DELAY)

    def _take(self, pending: list[tuple[str, TrialResult, bool]]) -> bool:
        """Moves what is queued into ``pending``; True when the close marker came."""
        while len(pending) < self.MAX_BATCH:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            pending.append((*item, False))
        return False

    def _send(self, pending: list[tuple[str, TrialResult, bool]]) -> list[tuple[str, TrialResult, bool]]:
        """Sends ``pending`` once; returns what failed, marked for a retry."""
        try:
            answers = self.send([r for _, r, _ in pending], [again for _, _, again in pending])
        except Exception as exc:  # the store is away: keep them all and try again later
            answers = [exc] * len(pending)
        failed = []
        for (key, result, _), answer in zip(pending, answers):
            if isinstance(answer, BaseException):
                failed.append((key, result, True))
                self.errors.append(f"{type(answer).__name__}: {str(answer).splitlines()[0] if str(answer) else ''}")
                continue
            self.journal.remove(key)
            if self.on_sent:
                self.on_sent(result, answer)
        return failed

    def _drain(self) -> int:
        n = 0
        while True:
            try:
                n += self.queue.get_nowait() is not None
            except queue.Empty:
                return n

    def close(self, timeout: float = 60.0, on_wait: Callable[[], None] | None = None) -> int:
        """Waits for every queued result to be sent; returns how many were left unsent.

        A healthy store gets all the time its backlog needs; ``timeout`` bounds only how
        long failing sends go on being retried. Unsent results stay in the journal.
        ``on_wait`` is called once if the wait passes ``QUIET_WAIT`` seconds, so that a
        user is told why nothing seems to happen.
        """
        self._stop_at = time.time() + timeout
        self.queue.put(None)
        self._thread.join(self.QUIET_WAIT)
        if self._thread.is_alive():
            if on_wait:
                on_wait()
            self._thread.join()
        return self.unsent


__all__ = ["DEFAULT_JOURNAL", "Journal", "TrialLogger", "decode", "encode"]
