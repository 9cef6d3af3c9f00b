"""Record TF Privacy's answers on the inputs it defines beyond logits and labels, as fixtures.

``benchmarks/tfp_reference.py`` records TF Privacy's threshold AUCs on logits, probabilities
and losses; this script adds the inputs whose *meaning* TF Privacy defines and that
``memberscope.compat.tf_privacy`` must read the same way: sample weights, multi-label data,
given entropies, label-free entropy, a binary model's one logit per example (as an (n, 1)
column: TF Privacy's ``run_attacks`` fails on (n,) arrays), the squared loss, and its
loss-percentile, correctness and custom-group slices. Run it ONLY in a scratch venv
with TF Privacy (not a memberscope dependency):

    python3 -m venv /tmp/tfp-venv
    /tmp/tfp-venv/bin/pip install tensorflow==2.15.1 tensorflow-privacy==0.9.0 \\
        tensorflow-empirical-privacy==0.1.0 scikit-learn==1.4.2
    /tmp/tfp-venv/bin/python benchmarks/tfp_compat_reference.py      # ~20 s

It writes ``tests/fixtures/tfp_compat_inputs.npz`` (keys ``CASE__FIELD`` in TF Privacy's
naming, plain arrays) and ``tests/fixtures/tfp_compat_reference.json`` (per case: the
``run_attacks`` call and, per result, TF Privacy's slice string, data size and AUC).
``tests/unit/test_tf_privacy_compat.py`` replays each call on the compat layer.
Logits are moderate, so no loss reaches TF Privacy's cap at -log(1e-8).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SCHEMA_VERSION = 1


def _single_label(rng: np.random.Generator, n: int, classes: int, boost: float):
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += boost
    return logits, labels


def build_cases() -> dict[str, tuple[dict[str, np.ndarray], dict]]:
    """Each case: (arrays in TF Privacy's naming, run_attacks options as plain values)."""
    rng = np.random.default_rng(20261207)
    cases: dict[str, tuple[dict[str, np.ndarray], dict]] = {}
    (lt, yt), (ls, ys) = _single_label(rng, 400, 4, 1.5), _single_label(rng, 300, 4, 0.8)
    base = {"logits_train": lt, "logits_test": ls, "labels_train": yt, "labels_test": ys}
    weights = {"sample_weight_train": rng.uniform(0.2, 2.0, 400),
               "sample_weight_test": rng.uniform(0.2, 2.0, 300)}
    cases["weighted"] = ({**base, **weights}, {"by_class": True})
    cases["percentiles"] = (base, {"entire_dataset": False, "by_percentiles": True,
                                   "by_classification_correctness": True})
    cases["entropy_labelled"] = (base, {"attack": "threshold-entropy", "by_class": True})
    cases["entropy_unlabelled"] = ({"logits_train": lt, "logits_test": ls},
                                   {"attack": "threshold-entropy"})
    multi_train, multi_test = rng.integers(0, 2, (400, 5)), rng.integers(0, 2, (300, 5))
    multi_train[0] = multi_test[0] = 1
    cases["multilabel"] = ({
        "logits_train": rng.normal(size=(400, 5)) + 1.2 * (2 * multi_train - 1),
        "logits_test": rng.normal(size=(300, 5)) + 0.6 * (2 * multi_test - 1),
        "labels_train": multi_train, "labels_test": multi_test}, {"by_class": True})
    cases["entropy_given"] = ({"entropy_train": rng.exponential(0.5, 400),
                               "entropy_test": rng.exponential(0.8, 300)},
                              {"attack": "threshold-entropy"})
    binary_train, binary_test = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    cases["binary_logits"] = ({
        "logits_train": (rng.normal(size=300) + 2.0 * (2 * binary_train - 1))[:, None],
        "logits_test": (rng.normal(size=300) + 1.0 * (2 * binary_test - 1))[:, None],
        "labels_train": binary_train, "labels_test": binary_test}, {})
    cases["squared"] = ({
        "logits_train": (rng.normal(size=300) * 0.5 + binary_train)[:, None],
        "logits_test": (rng.normal(size=300) * 0.8 + binary_test)[:, None],
        "labels_train": binary_train, "labels_test": binary_test},
        {"loss_function": "squared"})
    groups_train, groups_test = rng.integers(0, 3, 400), rng.integers(0, 3, 300)
    cases["custom_groups"] = ({"loss_train": rng.exponential(0.5, 400),
                               "loss_test": rng.exponential(1.0, 300),
                               "groups_train": groups_train, "groups_test": groups_test},
                              {"custom": True})
    return cases


def run_case(arrays: dict[str, np.ndarray], options: dict) -> list[dict]:
    """TF Privacy's results of one case: slice string, data size, AUC."""
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        membership_inference_attack as mia,
    )
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack.data_structures import (  # noqa: E501
        AttackInputData,
        AttackType,
        SlicingSpec,
    )

    fields = {k: v for k, v in arrays.items() if not k.startswith("groups")}
    spec = {k: options[k] for k in ("entire_dataset", "by_class", "by_percentiles",
                                    "by_classification_correctness") if k in options}
    if options.get("custom"):
        spec.update(all_custom_train_indices=[arrays["groups_train"]],
                    all_custom_test_indices=[arrays["groups_test"]],
                    custom_slices_names={0: "a", 1: "b", 2: "c"})
    data = AttackInputData(**fields, loss_function=options.get("loss_function",
                                                               "cross_entropy"))
    attack = AttackType(options.get("attack", "threshold"))
    results = mia.run_attacks(data, SlicingSpec(**spec), attack_types=(attack,))
    return [{"slice": str(r.slice_spec), "ntrain": int(r.data_size.ntrain),
             "ntest": int(r.data_size.ntest), "auc": float(r.get_auc())}
            for r in results.single_attack_results]


def main() -> int:
    cases = build_cases()
    reference = {"schema_version": SCHEMA_VERSION,
                 "tensorflow_privacy": "0.9.0 (tensorflow-empirical-privacy 0.1.0)",
                 "cases": {}}
    stored: dict[str, np.ndarray] = {}
    for name, (arrays, options) in cases.items():
        reference["cases"][name] = {"options": options, "results": run_case(arrays, options)}
        stored.update({f"{name}__{key}": value for key, value in arrays.items()})
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=FIXTURES, suffix=".npz", delete=False) as handle:
        np.savez_compressed(handle, **stored)
    os.replace(handle.name, FIXTURES / "tfp_compat_inputs.npz")
    text = json.dumps(reference, indent=1, sort_keys=True) + "\n"
    (FIXTURES / "tfp_compat_reference.json.tmp").write_text(text)
    os.replace(FIXTURES / "tfp_compat_reference.json.tmp", FIXTURES / "tfp_compat_reference.json")
    counts = {name: len(case["results"]) for name, case in reference["cases"].items()}
    print(f"wrote {FIXTURES}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
