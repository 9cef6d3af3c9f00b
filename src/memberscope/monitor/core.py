"""The framework-agnostic privacy monitor: audit a model every k epochs during training.

Framework adapters (the PyTorch trainer, the Keras and Lightning callbacks, a hand-written
loop's hook) only supply a ``predict`` function returning logits for a batch of inputs; the
monitor decides when to audit, which examples to audit, and records every result with its
epoch, accuracies, model label, ε (under DP) and timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES, audit
from memberscope.errors import InputError
from memberscope.outputs import ModelOutputs
from memberscope.results import AuditResult, ResultsCollection

Predict = Callable[[Any], np.ndarray]


@dataclass
class PrivacyMonitor:
    """Runs ``audit`` on members vs non-members every ``every`` epochs.

    Parameters
    ----------
    member_labels, nonmember_labels : (n_m,), (n_n,) int
        Labels of the training examples and of the held-out examples.
    every : int
        Audit after epochs every, 2·every, … (1-based epochs), as the codelab's callback.
    member_sample : int, optional
        Audit a fixed, seeded random sample of this many members (all when None). A balanced
        sample (as many members as non-members) keeps monitoring cheap on large training sets.
    on_result : callable, optional
        Called with each ``AuditResult`` (e.g. to append it to ``results.jsonl``).
    audit_options : mapping
        Further keyword arguments of :func:`memberscope.audit` (``fpr_targets``, ``alpha``, …).
    delta : float, optional
        δ of the DP guarantee under audit (the accountant's): the empirical ε lower bound of
        every row is computed at this δ, and rows record it as ``metadata["delta"]``.
    """

    member_labels: np.ndarray
    nonmember_labels: np.ndarray
    attacks: Sequence[str] = DEFAULT_ATTACKS
    slices: Sequence[str] = DEFAULT_SLICES
    every: int = 2
    model_label: str = "model"
    seed: int = 0
    member_sample: int | None = None
    on_result: Callable[[AuditResult], None] | None = None
    audit_options: Mapping[str, Any] = field(default_factory=dict)
    delta: float | None = None
    results: ResultsCollection = field(default_factory=ResultsCollection)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InputError(f"every must be >= 1 epoch; got {self.every}")
        self.member_labels = np.asarray(self.member_labels)
        self.nonmember_labels = np.asarray(self.nonmember_labels)
        n_members = len(self.member_labels)
        if self.member_sample is None or self.member_sample >= n_members:
            self.member_index = np.arange(n_members)
        else:
            if self.member_sample < 1:
                raise InputError(f"member_sample must be >= 1; got {self.member_sample}")
            rng = np.random.default_rng(self.seed)
            self.member_index = np.sort(rng.choice(n_members, self.member_sample, replace=False))

    def should_audit(self, epoch: int) -> bool:
        """Whether the 1-based ``epoch`` is an audit epoch."""
        return epoch % self.every == 0

    def audit_logits(self, member_logits: np.ndarray, nonmember_logits: np.ndarray, *,
                     epoch: int, **metadata: Any) -> AuditResult:
        """Audit given logits: ``member_logits`` (len(member_index), C) for the sampled members,
        ``nonmember_logits`` (n_n, C). Adds model, epoch and accuracies to every row."""
        member_labels = self.member_labels[self.member_index]
        if len(member_logits) != len(member_labels):
            raise InputError(f"member_logits has {len(member_logits)} rows; expected "
                             f"{len(member_labels)} (the sampled members)")
        started = time.perf_counter()
        outputs = ModelOutputs.from_train_test(
            logits_train=member_logits, logits_test=nonmember_logits,
            labels_train=member_labels, labels_test=self.nonmember_labels)
        row_metadata = {
            "model": self.model_label, "epoch": epoch,
            "train_accuracy": float(np.mean(member_logits.argmax(1) == member_labels)),
            "test_accuracy": float(np.mean(nonmember_logits.argmax(1) == self.nonmember_labels)),
            **metadata,
        }
        options = dict(self.audit_options)
        if self.delta is not None:
            options["delta"] = row_metadata["delta"] = self.delta
        result = audit(outputs, attacks=self.attacks, slices=self.slices, seed=self.seed,
                       metadata=row_metadata, **options)
        result = result.with_metadata(audit_seconds=time.perf_counter() - started)
        self.results.add(result)
        if self.on_result is not None:
            self.on_result(result)
        return result

    def on_epoch_end(self, epoch: int, predict_members: Callable[[np.ndarray], np.ndarray],
                     predict_nonmembers: Callable[[], np.ndarray],
                     **metadata: Any) -> AuditResult | None:
        """At an audit epoch, compute logits and audit; otherwise return None.

        ``predict_members(index)`` returns logits (len(index), C) of the members at ``index``;
        ``predict_nonmembers()`` returns logits (n_n, C) of all non-members.
        """
        if not self.should_audit(epoch):
            return None
        started = time.perf_counter()
        member_logits = np.asarray(predict_members(self.member_index), dtype=np.float64)
        nonmember_logits = np.asarray(predict_nonmembers(), dtype=np.float64)
        inference_seconds = time.perf_counter() - started
        return self.audit_logits(member_logits, nonmember_logits, epoch=epoch,
                                 inference_seconds=inference_seconds, **metadata)
