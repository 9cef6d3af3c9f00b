"""Executors: run independent tasks in a local process pool or on a Ray cluster.

One interface, :class:`Executor`: ``map_unordered(function, tasks, shared)`` calls
``function(task, *shared)`` for every task and yields ``(task index, result)`` as each
finishes. ``shared`` (the data) is sent to each worker once, not with every task. ``function``
must be importable by name (a module-level function), so no code is pickled by value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from memberscope._runtime import keep_freed_memory
from memberscope.errors import InputError, UnknownNameError, require

logger = logging.getLogger(__name__)

EXECUTOR_NAMES = ("local", "ray")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Executor(Protocol):
    """Runs ``function(task, *shared)`` for each task; yields (index, result) as they finish."""

    def map_unordered(self, function: Callable[..., Any], tasks: Sequence[Any],
                      shared: tuple[Any, ...]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index of task, result)`` in completion order."""
        ...


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP threads (and torch's, if loaded) of this process at ``threads``."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


_WORKER_SHARED: tuple[Any, ...] = ()
_WORKER_THREADS = 0


def _init_worker(shared: tuple[Any, ...], threads: int) -> None:
    global _WORKER_SHARED, _WORKER_THREADS
    _WORKER_SHARED = shared
    _WORKER_THREADS = threads
    limit_threads(threads)
    keep_freed_memory()  # a worker process is an edge: see memberscope._runtime


@contextlib.contextmanager
def _threads_capped(threads: int) -> Iterator[None]:
    """Run the block with this process's BLAS/OpenMP/torch threads at ``threads``, then
    restore them (torch's own count too, if torch was loaded by then)."""
    saved_environment = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    limit_threads(threads)
    try:
        yield
    finally:
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch = sys.modules.get("torch")
        if torch is not None:
            restore = saved_torch if saved_torch is not None else os.cpu_count() or 1
            if torch.get_num_threads() != restore:
                torch.set_num_threads(restore)


def _run_in_worker(function: Callable[..., Any], task: Any) -> Any:
    limit_threads(_WORKER_THREADS)  # torch may have been imported since the initializer ran
    return function(task, *_WORKER_SHARED)


class LocalExecutor:
    """``jobs`` single-threaded workers: a process pool, or this process when ``jobs=1``.

    One thread per job, because on a small CPU two training processes of one thread each
    outrun one process of two threads (torch's intra-op parallelism scales poorly on these
    small models, and collapses under load); so ``jobs`` is the number of cores used, and
    ``jobs=1`` runs in this process with its thread count capped at one for the duration.
    ``threads_per_job`` overrides that (e.g. ``jobs=1, threads_per_job=2``).

    Workers are forked (no data copied, no ``__main__`` guard needed) while this process has
    not imported torch; once it has, they are spawned instead, since a forked child can inherit
    a torch/OpenMP thread pool in a broken state.
    """

    def __init__(self, jobs: int = 1, threads_per_job: int = 1) -> None:
        if int(jobs) < 1:
            raise InputError(f"jobs must be >= 1; got {jobs!r}")
        if int(threads_per_job) < 1:
            raise InputError(f"threads_per_job must be >= 1; got {threads_per_job!r}")
        self.jobs = int(jobs)
        self.threads_per_job = int(threads_per_job)

    def map_unordered(self, function: Callable[..., Any], tasks: Sequence[Any],
                      shared: tuple[Any, ...]) -> Iterator[tuple[int, Any]]:
        """See :class:`Executor`."""
        if self.jobs == 1 or len(tasks) <= 1:
            with _threads_capped(self.threads_per_job):
                for index, task in enumerate(tasks):
                    yield index, function(task, *shared)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        method = "spawn" if "torch" in sys.modules or os.name != "posix" else "fork"
        context = multiprocessing.get_context(method)
        workers = min(self.jobs, len(tasks))
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_init_worker,
                                 initargs=(shared, self.threads_per_job)) as pool:
            futures = {pool.submit(_run_in_worker, function, task): index
                       for index, task in enumerate(tasks)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _ray_task(function: Callable[..., Any], task: Any, *shared: Any) -> Any:
    limit_threads(1)
    keep_freed_memory()
    return function(task, *shared)


class RayExecutor:
    """Tasks on a Ray cluster (``address``: "auto", "HOST:PORT", or None for a local one).

    Each task asks for one CPU and is retried up to ``max_retries`` times when its worker
    process dies; the shared data goes to the object store once.
    """

    def __init__(self, address: str | None = None, *, max_retries: int = 3,
                 cpus_per_task: float = 1.0) -> None:
        self.address = address
        self.max_retries = int(max_retries)
        self.cpus_per_task = float(cpus_per_task)

    def map_unordered(self, function: Callable[..., Any], tasks: Sequence[Any],
                      shared: tuple[Any, ...]) -> Iterator[tuple[int, Any]]:
        """See :class:`Executor`."""
        ray: Any = require("ray", "ray", "the Ray executor")
        started_here = not ray.is_initialized()
        if started_here:
            options: dict[str, Any] = {}
            if self.address and self.address.split(":")[0] in ("127.0.0.1", "localhost"):
                # Keep a loopback cluster on loopback: without this the driver registers under
                # the host's outward-facing address.
                options["_node_ip_address"] = "127.0.0.1"
            ray.init(address=self.address, log_to_driver=False, include_dashboard=False,
                     **options)
        try:
            shared_refs = [ray.put(value) for value in shared]
            remote = ray.remote(num_cpus=self.cpus_per_task,
                                max_retries=self.max_retries)(_ray_task)
            pending = {remote.remote(function, task, *shared_refs): index
                       for index, task in enumerate(tasks)}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            if started_here:
                ray.shutdown()


def default_jobs() -> int:
    """Cores this process may use (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def get_executor(name: str = "local", *, jobs: int = 1, ray_address: str | None = None,
                 max_retries: int = 3) -> Executor:
    """The executor called ``name`` ("local" or "ray"); a Ray address implies "ray"."""
    if name not in EXECUTOR_NAMES:
        raise UnknownNameError("executor", name, EXECUTOR_NAMES)
    if name == "ray" or ray_address is not None:
        return RayExecutor(ray_address, max_retries=max_retries)
    return LocalExecutor(jobs)
