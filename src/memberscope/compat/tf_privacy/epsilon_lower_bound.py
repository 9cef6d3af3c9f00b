"""Names of empirical ε lower-bound methods, as keys of ``EpsilonLowerBoundValue.bounds``.

TF Privacy's five methods each bound ε at every threshold and report the top k, a maximum
over thresholds with no correction for having chosen it (positive on data with no membership
signal in 90–100 % of runs). Results of ``run_attacks`` here carry one value under
``HELD_OUT_CLOPPER_PEARSON``: memberscope's bound, whose threshold is chosen on one seeded half
of the examples and bounded with Clopper-Pearson intervals on the other half, a valid (1−α)
lower bound (:func:`memberscope.metrics.epsilon_lower_bound`). The other names are kept so
that TF Privacy code building its own ``EpsilonLowerBoundValue`` runs unchanged.
"""

from __future__ import annotations

import enum


class BoundMethod(enum.Enum):
    """How a bound on a ratio of binomial proportions, hence on ε, was computed."""

    KATZ_LOG = "katz-log"
    ADJUSTED_LOG = "adjusted-log"
    BAILEY = "bailey"
    INV_SINH = "inv-sinh"
    CLOPPER_PEARSON = "clopper-pearson"
    HELD_OUT_CLOPPER_PEARSON = "held-out-clopper-pearson"


__all__ = ["BoundMethod"]
