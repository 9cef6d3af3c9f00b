"""``PrivacyMetrics``: a Keras 3 callback that audits membership leakage every k epochs.

It mirrors the ``PrivacyMetrics`` callback of TF Privacy's privacy-report codelab — run attacks
every ``epochs_per_report`` (1-based) epochs on the training set (members) and the test set
(non-members), label each result with the model variant and epoch — over memberscope's
framework-agnostic :class:`~memberscope.monitor.core.PrivacyMonitor`. It works with every Keras
backend (torch, jax, tensorflow): predictions go through ``model.predict_on_batch``, which each
backend runs without gradient tracking.

Set ``KERAS_BACKEND`` before anything imports keras, as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.errors import InputError, require
from memberscope.monitor._common import entire_dataset_rows, jsonl_sink, summary
from memberscope.monitor._outputs import batch_slices, label_indices, to_class_logits
from memberscope.monitor.core import PrivacyMonitor
from memberscope.results import AuditResult, ResultsCollection

_keras: Any = require("keras", "keras", "memberscope.monitor.keras (the Keras callback)")

logger = logging.getLogger(__name__)

__all__ = ["PrivacyMetrics"]


class PrivacyMetrics(_keras.callbacks.Callback):
    """Keras callback: every ``epochs_per_report`` epochs, audit members vs non-members.

    Parameters
    ----------
    members : (x_train, y_train)
        Training inputs (n_m, …) and labels: class indices (n_m,) or one-hot (n_m, C).
    nonmembers : (x_test, y_test)
        Held-out inputs (n_n, …) and labels, as ``members``.
    epochs_per_report : int
        Audit after 1-based epochs k, 2k, … (the codelab's ``epoch + 1``).
    model_label : str
        The model variant's name, stored in every row's ``metadata["model"]``.
    attacks, slices : sequence of str
        As :func:`memberscope.audit` (default: threshold + lr on entire + class, as the codelab).
    member_sample : int, optional
        Audit a fixed seeded sample of this many members instead of all (e.g. as many as the
        non-members: balanced and much cheaper on a large training set).
    seed : int
        Seed of the member sample and the trained attacks.
    batch_size : int
        Examples per ``predict_on_batch`` call; large batches make auditing cheap.
    from_logits : bool
        True when the model outputs logits (the codelab's model); False when it ends in a
        softmax (or sigmoid) — probabilities are then turned into log-probabilities.
    results_path : path, optional
        Append every audit to this ``results.jsonl`` as it happens.
    extra_metadata : callable, optional
        Called at each audit; its mapping is added to every row (e.g. ``{"epsilon": …}``
        from a DP optimizer's accountant).
    add_to_logs : bool
        Also put ``privacy_<attack>_auc`` / ``_advantage`` of the entire dataset into Keras'
        ``logs`` (so ``History`` and later callbacks see them, on audit epochs only).
    audit_options : mapping, optional
        Further keyword arguments of :func:`memberscope.audit` (``fpr_targets``, ``alpha``, …).

    Attributes
    ----------
    results : ResultsCollection
        Every row so far, each with model, epoch, train/test accuracy and timings.
    attack_results : list of AuditResult
        One entry per audit, as the codelab's ``callback.attack_results``.

    Examples
    --------
    >>> callback = PrivacyMetrics((x_train, y_train), (x_test, y_test),   # doctest: +SKIP
    ...                           epochs_per_report=2, model_label="2 layers")
    >>> model.fit(x_train, y_train, epochs=10, callbacks=[callback])      # doctest: +SKIP
    >>> callback.results.filter(slice="entire_dataset").values("epoch")   # doctest: +SKIP
    [2, 4, 6, 8, 10]
    """

    def __init__(
        self,
        members: tuple[Any, Any],
        nonmembers: tuple[Any, Any],
        *,
        epochs_per_report: int = 2,
        model_label: str = "model",
        attacks: Sequence[str] = DEFAULT_ATTACKS,
        slices: Sequence[str] = DEFAULT_SLICES,
        member_sample: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        from_logits: bool = True,
        results_path: str | Path | None = None,
        extra_metadata: Callable[[], Mapping[str, Any]] | None = None,
        add_to_logs: bool = False,
        audit_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._x_members, member_labels = _unpack("members", members)
        self._x_nonmembers, nonmember_labels = _unpack("nonmembers", nonmembers)
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1; got {batch_size}")
        self.batch_size = batch_size
        self.from_logits = from_logits
        self.extra_metadata = extra_metadata
        self.add_to_logs = add_to_logs
        self.attack_results: list[AuditResult] = []
        self.monitor = PrivacyMonitor(
            member_labels=member_labels, nonmember_labels=nonmember_labels,
            attacks=tuple(attacks), slices=tuple(slices), every=epochs_per_report,
            model_label=model_label, seed=seed, member_sample=member_sample,
            on_result=jsonl_sink(results_path), audit_options=dict(audit_options or {}))

    @property
    def results(self) -> ResultsCollection:
        """Every result row so far (all audits of this callback)."""
        return self.monitor.results

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Keras hook; ``epoch`` is 0-based as Keras passes it."""
        epoch_number = epoch + 1
        if not self.monitor.should_audit(epoch_number):
            return
        started = time.perf_counter()
        metadata = dict(self.extra_metadata()) if self.extra_metadata is not None else {}
        result = self.monitor.on_epoch_end(
            epoch_number,
            lambda index: self._predict(self._x_members, index),
            lambda: self._predict(self._x_nonmembers, None),
            **metadata)
        assert result is not None  # should_audit was checked above
        self.attack_results.append(result)
        if self.add_to_logs and logs is not None:
            for row in entire_dataset_rows(result):
                logs[f"privacy_{row.attack}_auc"] = row.auc
                logs[f"privacy_{row.attack}_advantage"] = row.advantage
        logger.info("privacy report for %s, epoch %d (%.1f s): %s", self.monitor.model_label,
                    epoch_number, time.perf_counter() - started, summary(result))

    def _predict(self, x: Any, index: np.ndarray | None) -> np.ndarray:
        """Logits (len(index) or n, C) of ``x`` (rows ``index`` when given), in large batches."""
        n = len(index) if index is not None else len(x)
        chunks = []
        for part in batch_slices(n, self.batch_size):
            batch = x[index[part]] if index is not None else x[part]
            chunks.append(to_class_logits(self.model.predict_on_batch(batch),
                                          from_logits=self.from_logits))
        return np.concatenate(chunks) if chunks else np.zeros((0, 2))


def _unpack(name: str, pair: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) -> (x as an array, y as class indices), checking their lengths agree."""
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise InputError(f"{name} must be a pair (x, y) of inputs and labels; "
                         f"got {type(pair).__name__}")
    x = np.asarray(pair[0])
    labels = label_indices(pair[1], name=f"{name} labels")
    if len(x) != len(labels):
        raise InputError(f"{name}: x has {len(x)} rows but y has {len(labels)}")
    return x, labels
