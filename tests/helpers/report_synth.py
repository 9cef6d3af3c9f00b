"""Synthetic run directories and audit results for the report tests.

Metrics follow a known pattern so tests can compute the expected answers independently:
AUC rises linearly with the epoch, class slices add a fixed offset (class K adds 0.01·K), the
``lr`` attack adds 0.01, and each variant has its own base level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.metrics import EpsilonBound, HeldOutCounts, RocCurve
from memberscope.results import AuditResult, AuditRow, SkippedEntry
from memberscope.store import append_result, save_result

XSS_LABEL = "<script>alert(1)</script>"


def synthetic_row(*, model: str, epoch: int, attack: str, slice_name: str, base: float,
                  dp_epsilon: float | None = None, n_epochs: int = 10) -> AuditRow:
    """One row whose AUC is base + 0.15·epoch/n_epochs + slice and attack offsets."""
    offset = 0.01 * int(slice_name.split("=")[1]) if slice_name.startswith("class=") else 0.0
    auc = base + 0.15 * epoch / n_epochs + offset + (0.01 if attack == "lr" else 0.0)
    advantage = 2 * (auc - 0.5)
    metadata: dict[str, Any] = {
        "model": model, "epoch": epoch,
        "train_accuracy": 0.6 + 0.3 * epoch / n_epochs,
        "test_accuracy": 0.55 + 0.2 * epoch / n_epochs - 0.02 * (epoch / n_epochs) ** 2
                         - (0.05 if dp_epsilon is not None else 0.0) + (base - 0.5),
    }
    if dp_epsilon is not None:
        metadata["epsilon"] = dp_epsilon * epoch / n_epochs
    return AuditRow(
        slice=slice_name, attack=attack, n_members=500, n_nonmembers=500, auc=auc,
        advantage=advantage, ppv=0.5 + advantage / 2,
        tpr_at_fpr={0.001: advantage / 20, 0.01: advantage / 8, 0.1: advantage / 2},
        epsilon_lower_bound=EpsilonBound(
            point=advantage * 2, confident=advantage, alpha=0.05, delta=0.0,
            held_out=HeldOutCounts(round(250 * (0.5 + advantage / 2)),
                                   round(250 * (0.5 - advantage / 2)), 250, 250, True)),
        metadata=metadata)


def synthetic_epoch(model: str, epoch: int, *, base: float, n_classes: int = 10,
                    attacks: Sequence[str] = ("threshold", "lr"),
                    dp_epsilon: float | None = None, n_epochs: int = 10) -> AuditResult:
    """One audit: the entire dataset plus ``n_classes`` class slices for each attack."""
    slices = ["entire_dataset", *(f"class={k}" for k in range(n_classes))]
    rows = tuple(synthetic_row(model=model, epoch=epoch, attack=a, slice_name=s, base=base,
                               dp_epsilon=dp_epsilon, n_epochs=n_epochs)
                 for a in attacks for s in slices)
    return AuditResult(rows=rows)


def write_synthetic_run(run_dir: Path, *, models: Sequence[str] = ("2 layers", "3 layers"),
                        epochs: Sequence[int] = (2, 4, 6, 8, 10), n_classes: int = 10,
                        dp_model: str | None = "DP-Adam", config: str | None = None,
                        skipped: bool = True) -> Path:
    """A run directory with ``results.jsonl`` (and ``config.toml``) as the trainer writes it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(
        config if config is not None else
        'name = "synthetic"\nepochs = 10\n[[variants]]\nlabel = "2 layers"\n', encoding="utf-8")
    variants = [(m, 0.5 + 0.02 * i, None) for i, m in enumerate(models)]
    if dp_model is not None:
        variants.append((dp_model, 0.48, 3.0))
    n_epochs = max(epochs)
    for epoch in epochs:
        for model, base, dp_eps in variants:
            result = synthetic_epoch(model, epoch, base=base, n_classes=n_classes,
                                     dp_epsilon=dp_eps, n_epochs=n_epochs)
            if skipped and epoch == epochs[0]:
                result = AuditResult(rows=result.rows, skipped=(SkippedEntry(
                    "class=99", "lr", "too few members (3 < 10)", {"model": model,
                                                                    "epoch": epoch}),))
            append_result(run_dir / "results.jsonl", result)
    return run_dir


def write_synthetic_audit(out_dir: Path, *, seed: int = 0, n: int = 2400,
                          model: str | None = None) -> AuditResult:
    """A real audit of a leaky synthetic model, saved as ``result.json`` + ``arrays.npz``."""
    from memberscope import ModelOutputs, audit

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    membership = np.arange(n) < n // 2
    loss = np.where(membership, rng.exponential(0.4, n), rng.exponential(1.0, n))
    outputs = ModelOutputs(membership=membership, labels=labels, loss=loss)
    metadata = {"model": model} if model is not None else None
    result = audit(outputs, attacks=["threshold"], slices=["entire", "class"], seed=seed,
                   metadata=metadata)
    save_result(result, out_dir)
    return result


def roc_points(n: int = 200) -> RocCurve:
    """A simple concave ROC curve for plot tests."""
    fpr = np.r_[0.0, np.geomspace(1e-3, 1.0, n)]
    tpr = np.sqrt(fpr)
    return RocCurve(np.r_[np.inf, -fpr[1:]], tpr, fpr, 100.0, 100.0)
