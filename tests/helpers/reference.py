"""A numpy stand-in for the torch trainer: fast, deterministic, and leaky by construction."""

from __future__ import annotations

import os
import time

import numpy as np

FAIL_ENV = "MEMBERSCOPE_TEST_FAIL_SEED"


def fake_trainer(recipe, x, y, member_index, query_x, query_y, seed) -> np.ndarray:
    """Logits (q, n, C): the true class gets +2 for members, plus seeded noise per model."""
    if os.environ.get(FAIL_ENV) == str(seed):
        raise RuntimeError(f"simulated crash while training seed {seed}")
    rng = np.random.default_rng(seed)
    n, classes = len(query_y), int(np.max(y)) + 1
    logits = rng.normal(size=(len(recipe.queries), n, classes))
    member = np.zeros(n, dtype=bool)
    member[member_index] = True
    logits[:, np.arange(n), query_y] += 1.0 + 2.0 * member + np.asarray(query_x)[:, 0]
    return logits


def pid_and_threads(task: float, *shared: object) -> tuple[int, str]:
    """Sleep ``task`` seconds; report the worker's pid and its thread limit."""
    time.sleep(task)
    return os.getpid(), os.environ.get("OMP_NUM_THREADS", "")
