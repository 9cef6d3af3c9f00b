"""memberscope: measure how much a model leaks membership of its training data.

>>> import numpy as np, memberscope
>>> rng = np.random.default_rng(0)
>>> outputs = memberscope.ModelOutputs(
...     membership=np.r_[np.ones(200, bool), np.zeros(200, bool)],
...     labels=np.zeros(400, int), loss=np.r_[rng.exponential(0.5, 200), rng.exponential(1, 200)])
>>> result = memberscope.audit(outputs, attacks=["threshold"], slices=["entire"])
>>> round(result.row("entire_dataset", "threshold").auc, 2) > 0.5
True
"""

from memberscope._version import __version__
from memberscope.attacks import Attack, get_attack, list_attacks, register_attack
from memberscope.audit import audit
from memberscope.errors import (
    ConfigError,
    InputError,
    MemberscopeError,
    MissingExtraError,
    SchemaError,
    UnknownNameError,
)
from memberscope.lira_estimate import estimate_lira_tpr
from memberscope.metrics import (
    AttackMetrics,
    EpsilonBound,
    LowResolutionWarning,
    RocCurve,
    attack_metrics,
    epsilon_lower_bound,
    roc_curve,
    roc_metrics,
)
from memberscope.one_run import OneRunEpsilon, epsilon_one_run
from memberscope.outputs import ModelOutputs, load_outputs_npz
from memberscope.results import AuditResult, AuditRow, ResultsCollection, SkippedEntry
from memberscope.risk import rank_by_risk, top_k, trace_risk
from memberscope.slicing import Slice, build_slices
from memberscope.store import load_result, load_results, save_result

__all__ = [
    "Attack",
    "AttackMetrics",
    "AuditResult",
    "AuditRow",
    "ConfigError",
    "EpsilonBound",
    "InputError",
    "LowResolutionWarning",
    "MemberscopeError",
    "MissingExtraError",
    "ModelOutputs",
    "OneRunEpsilon",
    "ResultsCollection",
    "RocCurve",
    "SchemaError",
    "SkippedEntry",
    "Slice",
    "UnknownNameError",
    "__version__",
    "attack_metrics",
    "audit",
    "build_slices",
    "epsilon_lower_bound",
    "epsilon_one_run",
    "estimate_lira_tpr",
    "get_attack",
    "list_attacks",
    "load_outputs_npz",
    "load_result",
    "load_results",
    "rank_by_risk",
    "register_attack",
    "roc_curve",
    "roc_metrics",
    "save_result",
    "top_k",
    "trace_risk",
]
