"""Process-wide tuning for training: torch's thread count and the C allocator.

Both change the whole process, so library code (the ``Trainer``, the monitor) never applies
them: the edges do, through :func:`tune_process` — ``memberscope run`` and
``run_experiment`` (hence the demo), and reference-training worker processes (their thread
count is the executor's; they keep freed memory through :func:`keep_freed_memory`).

Threads
-------
Why the count matters here: torch's intra-op threads meet at a barrier after every operator. When
another process keeps a core busy, the thread scheduled on it arrives late at every barrier and
a 2-thread run can become ~10× slower than a 1-thread run (measured on the 2-core build
machine while other jobs ran). So by default we only use the cores that look idle: the cores
this process may run on, minus the CPUs busy over the last half second (from /proc/stat;
the 1-minute load average where that is unavailable), at least one. The load average alone
lags: right after a finished job it still read ~1 on this idle 2-core machine and cost the
demo its second thread (11 min 25 s instead of 8 min 19 s).
``MEMBERSCOPE_THREADS`` or an explicit count overrides this (bitwise reproducible results
across processes need the same thread count).

Allocator
---------
Freed memory is kept in the process instead of handed back to the OS after every step:
glibc's malloc serves large blocks (above a threshold that grows only up to a block's size)
with fresh ``mmap`` pages and trims the heap top when it frees, so a training step that
allocates tensors of changing sizes (Poisson-sampled DP batches: im2col buffers, per-example
gradients) faults its memory in again at every step. Measured here on DP-Adam with the 3-conv
model: 300,000-450,000 page faults and 1.6-2.1 s of system time for 8 epochs of 1,000 images,
against 100,000 and 0.8 s with the settings below, and 1.47-1.52× the non-DP epoch instead
of 1.62-1.93×. The cost is that the process keeps its peak heap. Nothing is changed when the
user set ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` themselves, when
``MEMBERSCOPE_KEEP_FREED_MEMORY=0``, or on a C library without ``mallopt``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import time
from dataclasses import dataclass

from memberscope.errors import InputError

logger = logging.getLogger(__name__)

THREADS_ENV = "MEMBERSCOPE_THREADS"
OPT_OUT_ENV = "MEMBERSCOPE_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's largest, the dynamic threshold's cap
TRIM_THRESHOLD_BYTES = 1 << 30

_applied = False


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_threads(requested: int | None = None, *, load: float | None = None) -> int:
    """The intra-op thread count to use.

    Parameters
    ----------
    requested : int, optional
        An explicit count wins; None reads ``MEMBERSCOPE_THREADS``, then decides from load.
    load : float, optional
        Busy CPUs to assume (default: :func:`busy_cpus`, else the 1-minute load average).

    Returns
    -------
    int
        Between 1 and the available cores.
    """
    if requested is None and os.environ.get(THREADS_ENV):
        text = os.environ[THREADS_ENV]
        try:
            requested = int(text)
        except ValueError:
            raise InputError(f"{THREADS_ENV} must be a positive integer; got {text!r}") from None
    if requested is not None:
        if requested < 1:
            raise InputError(f"threads must be >= 1; got {requested}")
        return requested
    cores = available_cores()
    if load is None:
        load = busy_cpus()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    idle = int(cores - load + 0.5)
    threads = max(1, min(cores, idle))
    if threads < cores:
        logger.info("%.1f CPUs busy, %d cores: using %d torch thread(s)", load, cores,
                    threads)
    return threads


def _cpu_times() -> tuple[int, int] | None:
    """(all, idle) jiffies of the machine's CPUs since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if len(fields) < 6 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal; guest time is already in user.
    values = [int(value) for value in fields[1:9]]
    return sum(values), values[3] + values[4]


def busy_cpus(window: float = 0.5) -> float | None:
    """How many CPUs of the machine were busy, on average, over the next ``window`` seconds
    (this process sleeps meanwhile); None where /proc/stat is unavailable."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(window)
    after = _cpu_times()
    if after is None or after[0] <= before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return (total - idle) / total * (os.cpu_count() or 1)


def apply_threads(threads: int) -> int:
    """Set torch's intra-op thread count; returns the previous count (to restore it)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process (see "Allocator" in the module
    docstring); True when they are in effect after the call."""
    global _applied
    if _applied:
        return True
    if os.environ.get(OPT_OUT_ENV, "1") == "0" or any(
            name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
               and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
    if not applied:
        logger.debug("mallopt refused the thresholds; leaving the allocator as it is")
    _applied = applied
    return applied


@dataclass(frozen=True)
class Tuning:
    """What :func:`tune_process` did: the torch ``threads`` now in use, the count before
    (``previous_threads``, to restore it) and whether freed memory is kept."""

    threads: int
    previous_threads: int
    keeps_freed_memory: bool


def tune_process(threads: int | None = None) -> Tuning:
    """Tune this process for training: set torch's intra-op threads to
    :func:`choose_threads` ``(threads)`` and keep freed memory (:func:`keep_freed_memory`).

    Call it at a program's edge, before training; ``apply_threads(tuning.previous_threads)``
    gives the thread count back. Needs torch.
    """
    count = choose_threads(threads)
    previous = apply_threads(count)
    return Tuning(threads=count, previous_threads=previous,
                  keeps_freed_memory=keep_freed_memory())
