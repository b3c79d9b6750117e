"""Runs trials on Ray (one task per trial or per chunk of tiny trials) or in-process.

Results stream back with ``ray.wait`` and are handed to ``on_result`` as they arrive, so
a crash later loses nothing that was already done. At most two tasks per slot are in
flight, the one running and the next, which Ray hands to the same worker as the last one
ends; the rest of the work stays on the driver, so its memory does not grow with the size
of the grid. One per slot where the driver's own node cannot run a trial (a head with no
CPUs, as in KubeRay): Ray then asks the busy worker nodes for a lease for every waiting
task, again and again, and that costs the nodes' raylets and the driver more CPU than
the waiting task saves.

A per-trial timeout is kept by the worker, which ends a trial at the first epoch boundary
past it, clocked from the trial's own start. The driver kills a task only when it has
not answered ``KILL_GRACE_S`` seconds after that (a trial stuck inside one epoch): a
driver-side clock starts when a task is sent, and after a kill the next task first waits
for a new worker process, which must not count against it. With a timeout, one task per
slot is in flight, so that the driver's clock stays near the trial's.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from .results import TrialResult, failed_result, run_chunk, timeout_reason

KILL_GRACE_S = 15.0
"""How long past its timeout the driver waits for a task before killing its worker."""

if TYPE_CHECKING:  # pragma: no cover
    from core.splits import PreparedData

    from .spec import TrialSpec

OnResult = Callable[[TrialResult], None]
OnProgress = Callable[[int], None]


@dataclass(frozen=True)
class RunOptions:
    """How to execute a sweep.

    Attributes:
        local: Run in this process without Ray (tests, debugging).
        address: Ray cluster address; None starts (or reuses) a local Ray.
        cpus_per_trial: CPUs each trial holds; also its BLAS thread count.
        gpus_per_trial: GPUs each trial holds (fractional packs trials on one GPU).
        timeout_s: Per-trial wall-time limit; None waits forever.
        max_retries: Times Ray reruns a trial whose worker or node died.
        chunk_size: Trials per Ray task; None picks one from the grid and cluster size and
            shrinks it towards the end of the sweep (see ``plan_chunks``).
        num_cpus: CPUs of a local Ray started here; None uses all.
        allow_cpu_fallback: Without a GPU, run GPU trials on CPU instead of stopping.
    """

    local: bool = False
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    timeout_s: float | None = None
    max_retries: int = 2
    chunk_size: int | None = None
    num_cpus: int | None = None
    allow_cpu_fallback: bool = False

    @property
    def device(self) -> str:
        return "gpu" if self.gpus_per_trial > 0 else "cpu"


class ResourceError(RuntimeError):
    """A trial asks for more than where it would run can give."""


class NoGpuError(ResourceError):
    """GPU trials were asked for where no GPU exists, and CPU fallback was not allowed."""


def resolve_device(options: RunOptions, echo: Callable[[str], None] | None = None) -> RunOptions:
    """Checks that GPU trials can get a GPU; falls back to CPU only where allowed.

    Raises:
        NoGpuError: No GPU, and ``resources.allow_cpu_fallback`` is false.
    """
    if options.gpus_per_trial <= 0:
        return options
    if options.local:
        from core.backend import cupy_available

        where, found = "this machine (CuPy with a CUDA device)", cupy_available()
    else:
        import ray

        where, found = "the Ray cluster", ray.cluster_resources().get("GPU", 0) > 0
    if found:
        return options
    message = f"resources.gpus_per_trial is {options.gpus_per_trial:g}, but {where} has no GPU"
    if not options.allow_cpu_fallback:
        raise NoGpuError(f"{message}; set resources.allow_cpu_fallback: true to run on CPU instead")
    (echo or _stderr)(f"Warning: {message}; running every trial on CPU (resources.allow_cpu_fallback is true).")
    return dataclasses.replace(options, gpus_per_trial=0.0)


def check_a_node_fits(options: RunOptions, echo: Callable[[str], None]) -> None:
    """Refuses trials no node of a local Ray can hold, where Ray would wait for such a
    node for ever; on a cluster, warns (an autoscaler may still add one).

    Raises:
        ResourceError: On a local Ray, no node has the CPUs and GPUs one trial asks for.
    """
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    need = {"CPU": options.cpus_per_trial, "GPU": options.gpus_per_trial}
    if any(all(r.get(k, 0) >= v for k, v in need.items()) for r in nodes):
        return
    biggest = max(nodes, key=lambda r: (r.get("CPU", 0), r.get("GPU", 0)), default={})
    asked = " and ".join(f"resources.{k.lower()}s_per_trial {v:g}" for k, v in need.items() if v > 0)
    has = " and ".join(f"{biggest.get(k, 0):g} {k}s" for k, v in need.items() if v > 0)
    message = f"{asked} fits no node of the Ray cluster: the largest has {has}"
    if options.address or os.environ.get("RAY_ADDRESS"):
        echo(f"Warning: {message}; the trials wait until the cluster adds a node that big.")
        return
    raise ResourceError(f"{message}; ask for less, or give the local Ray more with --num-cpus")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def data_key(trial: "TrialSpec") -> tuple[bool, str]:
    """Which prepared copy of the data a trial trains on: (normalize, dtype)."""
    return (bool(trial.config.normalize), trial.config.dtype)


def execute(
    trials: Sequence["TrialSpec"],
    data: Mapping[tuple[bool, str], "PreparedData"],
    options: RunOptions,
    on_result: OnResult,
    on_running: OnProgress | None = None,
) -> int:
    """Runs every trial and hands each result to ``on_result`` as soon as it exists.

    Args:
        trials: The trials to run.
        data: The prepared splits by ``data_key``; only train and dev reach the workers.
        options: Where and how to run.
        on_result: Called on the driver once per trial, in completion order.
        on_running: Called with the number of trials running (the oldest task per slot)
            whenever it changes.

    Returns:
        The slots: how many tasks ran at once at most (1 in local mode).

    Raises:
        KeyboardInterrupt: After reporting every in-flight trial as ``killed``.
    """
    if not trials:
        return 1
    data = {key: data[key].without_test() for key in {data_key(t) for t in trials}}
    if options.local:
        _execute_local(trials, data, options, on_result, on_running)
        return 1
    return _execute_ray(trials, data, options, on_result, on_running)


def _execute_local(trials, data, options, on_result, on_running) -> None:
    options = resolve_device(options)
    for i, trial in enumerate(trials):
        if on_running:
            on_running(1)
        try:
            (result,) = run_chunk([trial], data[data_key(trial)], options.device, int(max(1, options.cpus_per_trial)),
                                  options.timeout_s)
        except KeyboardInterrupt:
            for t in trials[i:i + 1]:
                on_result(failed_result(t, "killed", "interrupted by the user (Ctrl-C)", time.time()))
            raise
        on_result(result)
    if on_running:
        on_running(0)


def ensure_ray(options: RunOptions) -> bool:
    """Connects to the cluster named by the options, or starts a local Ray.

    Returns:
        True when this call started Ray (the caller shuts it down).
    """
    import ray

    address = options.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_ray_address(address)  # even when connected: the user named this cluster
    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    if address:
        # Ship this driver's own core/ and sweeper/ to the cluster's workers, so they run
        # the code that planned the sweep; their dependencies come from the node's image.
        ray.init(address=address, runtime_env={"py_modules": _own_packages()}, **kwargs)
    else:
        # "local": always a new single-node Ray, never a cluster that `ray start` left
        # running on this machine (ray.init would otherwise join it).
        ray.init(address="local", num_cpus=options.num_cpus, **kwargs)
    return True


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fails in seconds when nothing listens at a Ray address (``ray.init`` waits minutes).

    Raises:
        ConnectionError: ``host:port`` (or ``ray://host:port``) refuses or does not answer.
    """
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    if not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc.strerror or exc})") from None


def _own_packages() -> list[str]:
    import core

    from . import __file__ as sweeper_init

    return [os.path.dirname(core.__file__), os.path.dirname(sweeper_init)]


def _slots(options: RunOptions) -> int:
    import ray

    res = ray.cluster_resources()
    slots = int(res.get("CPU", 1) // max(options.cpus_per_trial, 1e-9)) if options.cpus_per_trial > 0 else 10**6
    if options.gpus_per_trial > 0:
        slots = min(slots, int(res.get("GPU", 0) // options.gpus_per_trial))
    return max(1, slots)


def _chunk_size(n_trials: int, slots: int, options: RunOptions) -> int:
    if options.chunk_size:
        return options.chunk_size
    if options.timeout_s is not None:
        return 1  # a timeout ends a whole task; keep it to one trial
    # Four tasks per slot balance the load; tiny trials share a task to save overhead.
    return max(1, min(32, n_trials // (4 * slots)))


def plan_chunks(
    trials: Sequence["TrialSpec"], data: Mapping, slots: int, options: RunOptions
) -> list[list["TrialSpec"]]:
    """The trials grouped into Ray tasks, in the order they are sent.

    Trials of one data key go costliest first (``trial_work``), so that no long trial
    starts last. A task holds ``_chunk_size`` trials while many remain; towards the end
    it holds about a ``2 * slots``-th of what remains, down to single trials, so that the
    slots run out of work together (guided scheduling). A ``chunk_size`` the user set is
    kept as given.
    """
    size = _chunk_size(len(trials), slots, options)
    by_key: dict[tuple[bool, str], list] = {}
    for trial in trials:
        by_key.setdefault(data_key(trial), []).append(trial)
    chunks: list[list[TrialSpec]] = []
    remaining = len(trials)
    for key, group in by_key.items():
        n_in, n_classes = data[key].n_features, data[key].n_classes
        group.sort(key=lambda t: -trial_work(t, n_in, n_classes))  # stable: ties keep grid order
        i = 0
        while i < len(group):
            k = size if options.chunk_size else max(1, min(size, -(-remaining // (2 * slots))))
            chunks.append(group[i : i + k])
            i += k
            remaining -= len(chunks[-1])
    return chunks


def trial_work(trial: "TrialSpec", n_in: int, n_classes: int) -> float:
    """A trial's cost estimate: epochs x weights (multiply-adds per example per pass)."""
    from core.network import layer_sizes

    sizes = layer_sizes(n_in, trial.config.architecture, n_classes)
    return float(trial.config.epochs) * sum(a * b for a, b in zip(sizes, sizes[1:]))


def _execute_ray(trials, data, options, on_result, on_running) -> int:
    import ray

    started_here = ensure_ray(options)
    try:
        options = resolve_device(options)
        slots = _slots(options)
        chunks = plan_chunks(trials, data, slots, options)
        task = ray.remote(run_chunk).options(
            num_cpus=options.cpus_per_trial,
            num_gpus=options.gpus_per_trial,
            max_retries=options.max_retries,
            retry_exceptions=False,
        )
        refs = {key: ray.put(value) for key, value in data.items()}
        threads = int(max(1, options.cpus_per_trial))

        def submit(chunk):
            return task.remote(chunk, refs[data_key(chunk[0])], options.device, threads, options.timeout_s)

        _stream(chunks, submit, slots, options, on_result, on_running, _tasks_per_slot(options))
        return min(slots, len(chunks))
    finally:
        if started_here:
            ray.shutdown()


def _tasks_per_slot(options: RunOptions) -> int:
    """2 where the driver's own node can run a trial, else 1 (see the module's docstring).

    Measured on one 2-core machine (16 trials of ~1 s, the depths alternating): a cluster
    of a head with no CPU and two 1-CPU nodes ran its trial phase faster with one task
    per slot in 6 of 7 rounds (by 2-12%), and with 0.4 s tasks the driver's CPU fell from
    9-12% to 4% of a core and each worker raylet's from 6-9% to 3%. With a head that has
    a CPU, two per slot were 1.5-6% faster in 3 of 3 rounds and cost no such CPU.
    (bench/README.md, "What changed in this round", item 2.)
    """
    import ray

    try:
        here = ray.get_runtime_context().get_node_id()
        node = next(n for n in ray.nodes() if n.get("NodeID") == here)
    except Exception:  # not knowing changes only the queue depth
        return 2
    have = node.get("Resources", {})
    fits = have.get("CPU", 0) >= options.cpus_per_trial and have.get("GPU", 0) >= options.gpus_per_trial
    return 2 if fits else 1


def _stream(chunks, submit, slots, options, on_result, on_running, per_slot: int = 2) -> None:
    import ray

    pending = list(reversed(chunks))
    in_flight: dict = {}  # ref -> (chunk, submitted at), oldest first
    done: list = []  # (ref, chunk, submitted at) of finished tasks not yet read
    outbox: list[TrialResult] = []  # read from them, not yet handed to on_result
    # Each slot also has its next task waiting in Ray: when a task ends, Ray hands the
    # waiting one to the same worker at once, without a new lease from a raylet (on a
    # cluster, a round trip through the head) or a wait for this loop to wake. With a
    # per-trial timeout, tasks are sent only as slots free (see the module's docstring).
    depth = slots if options.timeout_s is not None else per_slot * slots

    def running() -> int:  # the oldest tasks hold the slots; the rest wait
        return sum(len(c) for c, _ in itertools.islice(in_flight.values(), slots))

    try:
        while pending or in_flight or done:
            # A finished task's slot gets its next task before the result is read and
            # recorded, so that the slot does not wait for the driver's bookkeeping.
            while pending and len(in_flight) < depth:
                chunk = pending.pop()
                in_flight[submit(chunk)] = (chunk, time.time())
            if on_running:
                on_running(running())
            _deliver(done, outbox, on_result)
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=_wait_timeout(in_flight, options))
            done = [(ref, *in_flight.pop(ref)) for ref in ready]
            if options.timeout_s is not None:
                _expire(in_flight, options.timeout_s, on_result)
    except KeyboardInterrupt:
        _deliver(done, outbox, on_result)  # finished: their results are kept
        # No ray.cancel here: Ctrl-C also reaches the workers in the terminal's process
        # group, and a force-cancel racing a task's own reply crashes Ray 2.60's driver
        # ("Tried to complete task that was not pending"), exit 1 instead of 130. The
        # tasks end anyway: ray.shutdown stops a local Ray, and a cluster stops a job's
        # workers when its driver disconnects.
        for chunk, t0 in in_flight.values():
            for trial in chunk:
                on_result(failed_result(trial, "killed", "interrupted by the user (Ctrl-C)", t0))
        raise
    if on_running:
        on_running(0)


def _deliver(done, outbox, on_result) -> None:
    """Hands every result of the finished tasks to ``on_result``, each exactly once."""
    while done or outbox:
        if not outbox:
            outbox.extend(_collect(*done[0]))
            done.pop(0)
        on_result(outbox[0])
        outbox.pop(0)


def _wait_timeout(in_flight, options) -> float:
    if options.timeout_s is None:
        return 1.0
    now = time.time()
    soonest = min(_kill_at(c, t0, options.timeout_s) for c, t0 in in_flight.values())
    return max(0.05, min(1.0, soonest - now))


def _kill_at(chunk, sent: float, timeout_s: float) -> float:
    return sent + timeout_s * len(chunk) + KILL_GRACE_S


def _collect(ref, chunk, t0) -> list[TrialResult]:
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # the worker or node died past its retries
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return [failed_result(t, "failed", f"lost: {reason}", t0) for t in chunk]


def _expire(in_flight, timeout_s, on_result) -> None:
    """Kills the tasks whose worker has not ended them by their timeout plus the grace."""
    import ray

    now = time.time()
    for ref in [r for r, (c, t0) in in_flight.items() if now > _kill_at(c, t0, timeout_s)]:
        chunk, t0 = in_flight.pop(ref)
        ray.cancel(ref, force=True)
        how = f"killed by the driver: no answer {KILL_GRACE_S:g} s past it"
        for trial in chunk:
            on_result(failed_result(trial, "timed_out", timeout_reason(timeout_s, how), t0))
