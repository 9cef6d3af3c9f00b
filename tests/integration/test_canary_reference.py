"""The white-box canaries' audit numbers on seeded trainings stay those recorded in
``tests/fixtures/gradient_canaries_reference.npz`` (``benchmarks/canary_reference.py``): the
per-step histories, every score's per-canary values and ε bounds, on each path a step takes
(direct and hooks clipping, a CNN, canaries over several parameters, DP-Adam, empty
batches). Making the step cheaper must not change an audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from tests.helpers.canary_runs import CASES, audit_numbers, train_case  # noqa: E402

pytestmark = pytest.mark.torch

FIXTURE = Path(__file__).parent.parent / "fixtures" / "gradient_canaries_reference.npz"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as stored:
        return dict(stored)


@pytest.mark.parametrize("case", list(CASES))
def test_audit_numbers_match_the_recorded_run(case: str, reference: dict) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded: the same summation order in the layers
    try:
        numbers = audit_numbers(train_case(case))
    finally:
        torch.set_num_threads(threads)
    assert set(numbers) == {key.split("__", 1)[1] for key in reference
                            if key.startswith(f"{case}__")}
    for key, values in numbers.items():
        np.testing.assert_allclose(values, reference[f"{case}__{key}"], rtol=1e-5, atol=1e-5,
                                   err_msg=f"{case}: {key}")
