"""Timing probes wrapped around named functions, to say where a run's time goes.

Not a benchmark itself. ``Probe`` replaces attributes (``module.func``,
``Class.method``) by timed wrappers for the length of a ``with`` block and restores them
after; a name the code no longer has is skipped and listed in ``missing``, so a refactor
of the code under test does not break the benchmark.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from typing import Any, Callable


class Probe:
    """Times calls of named attributes; ``stats[label] == [calls, seconds]``.

    Args:
        targets: ``label -> "package.module:Attr.path"``.
        on_call: Optional ``f(label, args, kwargs, result, seconds)`` after each call.
        on_enter: Optional ``f(label, args, kwargs)`` before each call, outside its clock.
    """

    def __init__(self, targets: dict[str, str], on_call: Callable[..., None] | None = None,
                 on_enter: Callable[..., None] | None = None):
        self.targets = targets
        self.on_call = on_call
        self.on_enter = on_enter
        self.stats: dict[str, list[float]] = {label: [0, 0.0] for label in targets}
        self.missing: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "Probe":
        for label, where in self.targets.items():
            owner, name = _resolve(where)
            if owner is None or not hasattr(owner, name):
                self.missing.append(where)
                continue
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._wrap(label, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.on_enter is not None:
                self.on_enter(label, args, kwargs)
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with self._lock:
                    self.stats[label][0] += 1
                    self.stats[label][1] += dt
            if self.on_call is not None:
                self.on_call(label, args, kwargs, result, dt)
            return result

        return timed

    def rows(self, per: int) -> list[list[object]]:
        """``[label, calls, seconds, ms per <per>]`` for every probe that was called."""
        return [[label, int(n), s, s / per * 1e3] for label, (n, s) in self.stats.items() if n]


def _resolve(where: str) -> tuple[Any, str]:
    module_name, _, path = where.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return None, ""
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return None, ""
    return owner, name
