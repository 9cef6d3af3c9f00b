"""Trainers for the Ray tests; pickled by value, so Ray workers need not import tests/."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


def quick_trainer(recipe, x, y, member_index, query_x, query_y, seed) -> np.ndarray:
    """Seeded logits (q, n, C) with +2 on the true class of members."""
    rng = np.random.default_rng(seed)
    n, classes = len(query_y), int(np.max(y)) + 1
    logits = rng.normal(size=(len(recipe.queries), n, classes))
    member = np.zeros(n, dtype=bool)
    member[member_index] = True
    logits[:, np.arange(n), query_y] += 2.0 * member
    return logits


def crash_once_trainer(recipe, x, y, member_index, query_x, query_y, seed) -> np.ndarray:
    """Like quick_trainer, but the first attempt at ``victim_seed`` writes its pid and hangs
    (until the test kills the worker process)."""
    marker = Path(recipe.architecture_args["marker_dir"]) / f"{seed}.pid"
    if seed == recipe.architecture_args["victim_seed"] and not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(120)
    return quick_trainer(recipe, x, y, member_index, query_x, query_y, seed)
