"""How high can any ranking score against a 16-model LiRA ground truth? (issue 18)

``risk_precision.py`` measures how often LiRA with 8 reference models and LiRA with the other
8 agree on a target's top 1% of 5,000 members (0.53, 0.45, 0.31 in its three settings). This
script asks what that agreement implies for a ranking that knew each member's exact
vulnerability, in the simplest model of the noise: member i's LiRA score with m reference
models is v_i + (mean of m independent N(0, τ²) terms), v_i ~ N(0, 1). For each setting, τ is
the value (on a grid) whose simulated 8-vs-8 top-1% agreement is closest to the measured one;
at that τ the script reports the precision@1% of the exact ranking v against the 16-model
truth, and of an 8-model half against the 16-model truth it belongs to (to compare with the
measured LiRA-8 row, which the model did not use). An assumption, not a measurement: real
scores are not Gaussian and their noise is not independent of v.

Usage: python benchmarks/risk_ceiling.py   (seconds; reads risk_precision.json)
Writes ``benchmarks/results/risk_ceiling.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memberscope.store import atomic_write_json
from risk_precision import RELIABILITY, precision_at

RESULTS = Path(__file__).parent / "results"
MEMBERS = 5000
FRACTION = 0.01
REPETITIONS = 40
TAUS = tuple(np.round(np.arange(0.6, 2.51, 0.1), 2))
SEED = 1818


def simulate(tau: float, rng: np.random.Generator) -> dict[str, float]:
    """Mean precision@1% over ``REPETITIONS`` draws: 8 vs the other 8, exact vs 16, and an
    8-model half vs the 16 it belongs to."""
    rows = []
    for _ in range(REPETITIONS):
        exact = rng.standard_normal(MEMBERS)
        noise = rng.standard_normal((16, MEMBERS)) * tau
        half, other, truth = (exact + noise[:8].mean(0), exact + noise[8:].mean(0),
                              exact + noise.mean(0))
        rows.append((precision_at(half, other, FRACTION), precision_at(exact, truth, FRACTION),
                     precision_at(half, truth, FRACTION)))
    eight, exact_16, shared = np.mean(rows, axis=0)
    return {"tau": float(tau), "8_vs_other_8": float(eight), "exact_vs_16": float(exact_16),
            "8_vs_its_16": float(shared)}


def main() -> None:
    measured = json.loads((RESULTS / "risk_precision.json").read_text())["report"]
    rng = np.random.default_rng(SEED)
    grid = [simulate(tau, rng) for tau in TAUS]
    settings = {}
    for setting, methods in measured.items():
        target = methods[RELIABILITY]["p@0.01"]["mean"]
        fitted = min(grid, key=lambda row: abs(row["8_vs_other_8"] - target))
        lira_8 = methods["LiRA, 8 reference models"]["p@0.01"]["mean"]
        settings[setting] = {"measured_8_vs_other_8": target, "measured_lira_8_vs_16": lira_8,
                             **fitted}
        print(f"{setting}: measured 8 vs 8 {target:.2f} -> tau {fitted['tau']:.1f} (simulated "
              f"{fitted['8_vs_other_8']:.2f}); exact ranking vs the 16-model truth "
              f"{fitted['exact_vs_16']:.2f}; an 8-model half vs its 16 "
              f"{fitted['8_vs_its_16']:.2f} (measured {lira_8:.2f})")
    atomic_write_json(RESULTS / "risk_ceiling.json", {
        "schema_version": 1, "members": MEMBERS, "fraction": FRACTION,
        "repetitions": REPETITIONS, "seed": SEED, "grid": grid, "settings": settings})


if __name__ == "__main__":
    main()
