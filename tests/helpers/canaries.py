"""Synthetic one-run canaries for the tests: Gaussian canaries from both sources and the
``epsilon_audit`` record a DP run would keep of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.one_run import epsilon_audit_record


def two_source_record(seed: int, m: int, white_shift: float, black_shift: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(included, white-box scores, black-box scores, record) of m canaries whose scores are
    N(shift·included, 1) for each source, recorded at δ = 1e-5."""
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    white = rng.normal(size=m) + white_shift * included
    black = rng.normal(size=m) + black_shift * included
    record = epsilon_audit_record({"white_box": (white, included),
                                   "black_box": (black, included)}, delta=1e-5)
    return included, white, black, record
