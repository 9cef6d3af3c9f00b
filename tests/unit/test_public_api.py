"""The curated public API, and a light `import memberscope`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import memberscope

PUBLIC_API = [
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
HEAVY = ["torch", "matplotlib", "pandas", "keras", "ray", "lightning", "tensorflow", "jax"]
# Too slow for `import memberscope` (scipy.stats alone took ~1 s): imported inside the functions
# that need them.
SLOW_CORE = ["scipy.stats", "scipy.optimize", "sklearn"]


def test_all_is_exactly_the_curated_list():
    assert sorted(memberscope.__all__) == sorted(PUBLIC_API)
    assert len(memberscope.__all__) == len(set(memberscope.__all__))


def test_every_public_name_resolves():
    for name in memberscope.__all__:
        assert getattr(memberscope, name) is not None, name
    assert isinstance(memberscope.__version__, str) and memberscope.__version__


def test_errors_subclass_builtins():
    assert issubclass(memberscope.InputError, ValueError)
    assert issubclass(memberscope.SchemaError, ValueError)
    assert issubclass(memberscope.UnknownNameError, ValueError)
    assert issubclass(memberscope.ConfigError, ValueError)
    assert issubclass(memberscope.MissingExtraError, ImportError)
    for name in ("InputError", "ConfigError", "MissingExtraError"):
        assert issubclass(getattr(memberscope, name), memberscope.MemberscopeError)


def test_import_memberscope_does_not_import_heavy_optional_packages():
    src = Path(memberscope.__file__).resolve().parents[1]
    code = ("import json, sys; import memberscope, memberscope.cli; "
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    assert json.loads(done.stdout) == []


def test_import_memberscope_loads_only_numpy_beside_the_standard_library():
    src = Path(memberscope.__file__).resolve().parents[1]
    code = "import json, sys; import memberscope; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    loaded = json.loads(done.stdout)
    standard = set(sys.stdlib_module_names) | {"__main__", "_distutils_hack", "memberscope"}
    third_party = {name.split(".")[0] for name in loaded} - standard
    assert sorted(name for name in third_party if not name.startswith("_")) == ["numpy"]
    assert [name for name in SLOW_CORE if name in loaded] == []
