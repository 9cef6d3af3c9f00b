"""Record TF Privacy's membership-inference results as test fixtures for memberscope.

Runs ONLY in a scratch venv that has TensorFlow Privacy; TensorFlow is not a memberscope
dependency. Create it outside the repository:

    python3 -m venv /tmp/tfp-venv
    /tmp/tfp-venv/bin/pip install tensorflow==2.15.1 tensorflow-privacy==0.9.0 \
        tensorflow-empirical-privacy==0.1.0 scikit-learn==1.4.2
    /tmp/tfp-venv/bin/python benchmarks/tfp_reference.py        # ~1-2 minutes

It generates seeded synthetic inputs (``benchmarks/_tfp_data.py``), runs TF Privacy's
``run_attacks`` with the threshold (loss) and threshold-entropy attacks on the entire dataset and
per class, and its logistic-regression attack over several seeds, then writes

- ``tests/fixtures/tfp_inputs.npz``: the inputs, keys ``CASE__FIELD`` in TF Privacy's naming
  (``labels_train``, ``loss_test``, ``logits_train`` …), plain arrays;
- ``tests/fixtures/tfp_reference.json``: TF Privacy's AUC, advantage and PPV per
  (case, slice, attack), and LR AUCs per seed.

``tests/unit/test_tfp_agreement.py`` reads both (no TensorFlow needed) and checks memberscope.
Attack keys in the JSON are TF Privacy's: ``threshold`` (loss), ``threshold-entropy`` (its
entropy attack as run_attacks runs it: labels are given, so it is the *modified* entropy), and
``threshold-entropy-unlabeled`` (the same attack fed TF Privacy's own label-free Shannon entropy).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _tfp_data import (
    Arrays,
    leaky_logits,
    leaky_loss,
    ppv_zone_loss,
    tiny_slices_loss,
    to_probs,
)

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SCHEMA_VERSION = 1
LR_SEEDS = range(10)
FIELDS = ("labels", "loss", "logits", "probs")


def _float32_exact(arrays: Arrays) -> Arrays:
    """Round float inputs to float32 values (stored as float32, used as float64 by both sides)."""
    return {k: v.astype(np.float32).astype(np.float64) if v.dtype.kind == "f" and
            not k.startswith("probs") else v for k, v in arrays.items()}


def build_cases() -> dict[str, Arrays]:
    """Every fixture case, each from its own seeded generator."""
    def rng(seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)

    return {
        # Loss rounded to 1 decimal: a few dozen distinct values, heavy ties across both sides.
        "ties_loss": leaky_loss(rng(1), 400, 300, num_classes=3, decimals=1),
        "imbalanced_5to1_loss": leaky_loss(rng(2), 1500, 300, num_classes=4, decimals=3),
        "tiny_slices_loss": tiny_slices_loss(rng(3)),
        "logits10": _float32_exact(leaky_logits(rng(4), 800, 400, num_classes=10)),
        "logits10_5to1": _float32_exact(leaky_logits(rng(5), 1000, 200, num_classes=10)),
        "probs4": to_probs(leaky_logits(rng(6), 500, 500, num_classes=4)),
        # Large logits: p_y rounds to exactly 1 for confident rows, and confidently wrong rows
        # have p_y < 1e-8 (TF Privacy clips there) and p_i = 1 for a wrong class.
        "saturated_logits10": _float32_exact(
            leaky_logits(rng(7), 300, 300, num_classes=10, scale=12.0)),
        "ppv_zone_loss": ppv_zone_loss(rng(8)),
    }


def _slice_name(spec: object) -> str:
    if spec.entire_dataset:  # type: ignore[attr-defined]
        return "entire_dataset"
    return f"class={int(spec.value)}"  # type: ignore[attr-defined]


def _attack_input(arrays: Arrays) -> object:
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        data_structures as ds,
    )

    return ds.AttackInputData(**{k: v for k, v in arrays.items()})


def _rows(results: object, attack_name: str | None = None) -> list[dict[str, object]]:
    rows = []
    for single in results.single_attack_results:  # type: ignore[attr-defined]
        rows.append({
            "slice": _slice_name(single.slice_spec),
            "attack": attack_name or str(single.attack_type.value),
            "n_members": int(single.data_size.ntrain),
            "n_nonmembers": int(single.data_size.ntest),
            "auc": float(single.get_auc()),
            "advantage": float(single.get_attacker_advantage()),
            "ppv": float(single.get_ppv()),
            "epsilon_lower_bound_top5": [float(x) for x in single.get_epsilon_lower_bound()],
        })
    return rows


def threshold_rows(arrays: Arrays) -> list[dict[str, object]]:
    """TF Privacy's threshold attacks on the entire dataset and per class."""
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        data_structures as ds,
    )
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        membership_inference_attack as mia,
    )

    spec = ds.SlicingSpec(entire_dataset=True, by_class=True)
    rows = _rows(mia.run_attacks(_attack_input(arrays), spec,
                                 attack_types=[ds.AttackType.THRESHOLD_ATTACK]))
    if "logits_train" not in arrays and "probs_train" not in arrays:
        return rows
    # TF Privacy's entropy reads only logits_*, and treats rows summing to 1 (±1e-3) as
    # probabilities; given probs_* alone it crashes. So probabilities go in as "logits".
    distribution = {side: arrays.get(f"logits_{side}", arrays.get(f"probs_{side}"))
                    for side in ("train", "test")}
    labeled = {"labels_train": arrays["labels_train"], "labels_test": arrays["labels_test"],
               "logits_train": distribution["train"], "logits_test": distribution["test"]}
    rows += _rows(mia.run_attacks(_attack_input(labeled), spec,
                                  attack_types=[ds.AttackType.THRESHOLD_ENTROPY_ATTACK]))
    # The same attack on TF Privacy's own label-free entropy (its Eq. 7 branch).
    entropy = ds.AttackInputData._get_entropy
    unlabeled = {"labels_train": arrays["labels_train"], "labels_test": arrays["labels_test"],
                 "entropy_train": entropy(distribution["train"], None),
                 "entropy_test": entropy(distribution["test"], None)}
    rows += _rows(mia.run_attacks(_attack_input(unlabeled), spec,
                                  attack_types=[ds.AttackType.THRESHOLD_ENTROPY_ATTACK]),
                  "threshold-entropy-unlabeled")
    return rows


def lr_aucs(arrays: Arrays) -> list[float]:
    """TF Privacy's LR attack AUC on the entire dataset, one per numpy global seed."""
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        data_structures as ds,
    )
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        membership_inference_attack as mia,
    )

    aucs = []
    for seed in LR_SEEDS:
        # TF Privacy draws its balancing and folds from numpy's global RNG.
        np.random.seed(seed)  # noqa: NPY002
        result = mia.run_attacks(_attack_input(arrays), ds.SlicingSpec(entire_dataset=True),
                                 attack_types=[ds.AttackType.LOGISTIC_REGRESSION])
        aucs.append(float(result.single_attack_results[0].get_auc()))
    return aucs


def _spread(values: list[float]) -> dict[str, object]:
    array = np.asarray(values)
    return {"seeds": list(LR_SEEDS), "auc": values, "mean": float(array.mean()),
            "std": float(array.std(ddof=1)), "min": float(array.min()),
            "max": float(array.max())}


def _atomic_write(path: Path, write: object) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(handle)
    write(temporary)  # type: ignore[operator]
    os.replace(temporary, path)


def main() -> None:
    import sklearn
    import tensorflow_privacy

    started = time.perf_counter()
    cases = build_cases()
    reference: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "generator": "benchmarks/tfp_reference.py",
        "versions": {"tensorflow_privacy": tensorflow_privacy.__version__,
                     "scikit_learn": sklearn.__version__, "numpy": np.__version__},
        "cases": {},
        "lr_spread": {},
    }
    for name, arrays in cases.items():
        rows = threshold_rows(arrays)
        kind = next(f for f in ("logits", "probs", "loss") if f"{f}_train" in arrays)
        reference["cases"][name] = {  # type: ignore[index]
            "input": kind,
            "n_members": len(arrays["labels_train"]),
            "n_nonmembers": len(arrays["labels_test"]),
            "rows": rows,
        }
        print(f"{name}: {len(rows)} rows")
    for name in ("logits10", "logits10_5to1"):
        spread = _spread(lr_aucs(cases[name]))
        reference["lr_spread"][name] = spread  # type: ignore[index]
        print(f"LR {name}: mean {spread['mean']:.4f} std {spread['std']:.4f} "
              f"range [{spread['min']:.4f}, {spread['max']:.4f}]")

    stored = {"schema_version": np.array(SCHEMA_VERSION)}
    for name, arrays in cases.items():
        for key, value in arrays.items():
            narrow = value.astype(np.float32) if value.dtype.kind == "f" else value
            # float32 where that is exact (halves the file), float64 otherwise.
            stored[f"{name}__{key}"] = narrow if np.array_equal(narrow, value) else value
    FIXTURES.mkdir(parents=True, exist_ok=True)
    def write_npz(path: str) -> None:
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **stored)

    _atomic_write(FIXTURES / "tfp_inputs.npz", write_npz)
    _atomic_write(FIXTURES / "tfp_reference.json",
                  lambda p: Path(p).write_text(json.dumps(reference, indent=1) + "\n"))
    sizes = {p: (FIXTURES / p).stat().st_size for p in ("tfp_inputs.npz", "tfp_reference.json")}
    print(f"wrote {sizes} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
