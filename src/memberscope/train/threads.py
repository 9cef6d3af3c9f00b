"""How many CPU threads torch should use.

Why this matters here: torch's intra-op threads meet at a barrier after every operator. When
another process keeps a core busy, the thread scheduled on it arrives late at every barrier and
a 2-thread run can become ~10× slower than a 1-thread run (measured on the 2-core build
machine while other jobs ran). So by default we only use the cores that look idle: the cores
this process may run on, minus the CPUs busy over the last half second (from /proc/stat;
the 1-minute load average where that is unavailable), at least one. The load average alone
lags: right after a finished job it still read ~1 on this idle 2-core machine and cost the
demo its second thread (11 min 25 s instead of 8 min 19 s).
``MEMBERSCOPE_THREADS`` or an explicit count overrides this (bitwise reproducible results
across processes need the same thread count).
"""

from __future__ import annotations

import logging
import os
import time

from memberscope.errors import InputError

logger = logging.getLogger(__name__)

THREADS_ENV = "MEMBERSCOPE_THREADS"


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
