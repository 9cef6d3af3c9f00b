"""Record the audit numbers of seeded DP trainings with white-box canaries as a test fixture.

Run: ``.venv/bin/python benchmarks/canary_reference.py`` (seconds). Writes
``tests/fixtures/gradient_canaries_reference.npz``: for each case of
``tests/helpers/canary_runs.py``, keys ``CASE__NAME`` holding its (T, m) ĝ·B/C and update
histories, each score's (m,) values and ε bounds. ``tests/integration/test_canary_reference.py``
checks that the canaries' implementation still gives these numbers (a faster step must not
change an audit).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers.canary_runs import CASES, audit_numbers, train_case  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "gradient_canaries_reference.npz"


def main() -> None:
    torch.set_num_threads(1)
    arrays = {"schema_version": np.array(1)}
    for name in CASES:
        for key, values in audit_numbers(train_case(name)).items():
            arrays[f"{name}__{key}"] = values
    np.savez_compressed(FIXTURE, **arrays)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes, {len(CASES)} cases)")


if __name__ == "__main__":
    main()
