"""``PrivacyMonitorCallback``: a Lightning callback that audits membership leakage every k epochs.

The LightningModule's ``forward`` computes logits of members and non-members in
``torch.inference_mode()`` with large batches (the module is put in eval mode for it and
restored after); :class:`~memberscope.monitor.core.PrivacyMonitor` audits them. The AUC and
advantage of each attack on the entire dataset go to the Lightning logger as
``<log_prefix>/<attack>_auc`` and ``<log_prefix>/<attack>_advantage``; every row is kept in
``.results`` and, when ``results_path`` is given, appended to a ``results.jsonl``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.errors import InputError, require
from memberscope.monitor._common import entire_dataset_rows, jsonl_sink, summary
from memberscope.monitor._outputs import batch_slices, label_indices, to_class_logits
from memberscope.monitor.core import PrivacyMonitor
from memberscope.results import AuditResult, ResultsCollection

_FEATURE = "memberscope.monitor.lightning (the Lightning callback)"
_pl: Any = require("lightning.pytorch", "lightning", _FEATURE)
torch: Any = require("torch", "lightning", _FEATURE)

logger = logging.getLogger(__name__)

__all__ = ["PrivacyMonitorCallback"]


class PrivacyMonitorCallback(_pl.Callback):
    """Lightning callback: every ``every`` epochs, audit members vs non-members.

    Parameters
    ----------
    members, nonmembers : (x, y) or iterable of batches
        Either a pair of tensors/arrays — inputs (n, …) and labels (n,) or one-hot (n, C) —
        or a DataLoader (any re-iterable of ``(x, y, …)`` batches) in a fixed order
        (``shuffle=False``). With a pair, only the sampled members are evaluated; a
        DataLoader is evaluated in full and the sample taken from its outputs.
    every : int
        Audit after 1-based epochs k, 2k, … (``trainer.current_epoch + 1``).
    model_label : str
        The model variant's name, stored in every row's ``metadata["model"]``.
    attacks, slices : sequence of str
        As :func:`memberscope.audit`.
    member_sample : int, optional
        Audit a fixed seeded sample of this many members instead of all.
    seed : int
        Seed of the member sample and the trained attacks.
    batch_size : int
        Inference batch size for tensor pairs (a DataLoader keeps its own batches).
    from_logits : bool
        True when ``forward`` returns logits; False when it returns probabilities.
    results_path : path, optional
        Append every audit to this ``results.jsonl`` as it happens.
    extra_metadata : callable, optional
        ``extra_metadata(trainer, pl_module)`` -> mapping added to every row (e.g. the DP
        accountant's ``{"epsilon": …}``).
    log_prefix : str
        Prefix of the logged metric names.
    audit_options : mapping, optional
        Further keyword arguments of :func:`memberscope.audit`.

    Notes
    -----
    Under distributed training only global rank 0 audits and logs (``rank_zero_only``).
    """

    def __init__(
        self,
        members: Any,
        nonmembers: Any,
        *,
        every: int = 2,
        model_label: str = "model",
        attacks: Sequence[str] = DEFAULT_ATTACKS,
        slices: Sequence[str] = DEFAULT_SLICES,
        member_sample: int | None = None,
        seed: int = 0,
        batch_size: int = 256,
        from_logits: bool = True,
        results_path: str | Path | None = None,
        extra_metadata: Callable[[Any, Any], Mapping[str, Any]] | None = None,
        log_prefix: str = "privacy",
        audit_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if every < 1:
            raise InputError(f"every must be >= 1 epoch; got {every}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1; got {batch_size}")
        self._members = _Source.of("members", members)
        self._nonmembers = _Source.of("nonmembers", nonmembers)
        self.every = every
        self.batch_size = batch_size
        self.from_logits = from_logits
        self.extra_metadata = extra_metadata
        self.log_prefix = log_prefix
        self.attack_results: list[AuditResult] = []
        self._monitor_options: dict[str, Any] = dict(
            attacks=tuple(attacks), slices=tuple(slices), every=every, model_label=model_label,
            seed=seed, member_sample=member_sample, on_result=jsonl_sink(results_path),
            audit_options=dict(audit_options or {}))
        self._results = ResultsCollection()
        self._monitor: PrivacyMonitor | None = None
        if self._members.labels is not None and self._nonmembers.labels is not None:
            self._ensure_monitor()  # tensors: labels known now; DataLoaders: at the first audit

    @property
    def results(self) -> ResultsCollection:
        """Every result row so far (all audits of this callback)."""
        return self._results

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Lightning hook: audit at epochs ``every``, ``2·every``, … (1-based)."""
        epoch = int(trainer.current_epoch) + 1
        if epoch % self.every != 0 or not trainer.is_global_zero:
            return
        started = time.perf_counter()
        metadata = (dict(self.extra_metadata(trainer, pl_module))
                    if self.extra_metadata is not None else {})
        member_logits, nonmember_logits, inference_seconds = self._logits(pl_module)
        monitor = self._ensure_monitor()
        if len(member_logits) != len(monitor.member_index):
            # A first pass over a members DataLoader computed every member's logits.
            member_logits = member_logits[monitor.member_index]
        result = monitor.audit_logits(member_logits, nonmember_logits, epoch=epoch,
                                      inference_seconds=inference_seconds, **metadata)
        self.attack_results.append(result)
        for row in entire_dataset_rows(result):
            for metric in ("auc", "advantage"):
                pl_module.log(f"{self.log_prefix}/{row.attack}_{metric}", row.metric(metric),
                              on_step=False, on_epoch=True, rank_zero_only=True)
        logger.info("privacy report for %s, epoch %d (%.1f s): %s",
                    self._monitor_options["model_label"], epoch,
                    time.perf_counter() - started, summary(result))

    def _logits(self, pl_module: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """Logits of the (sampled) members and of the non-members, and the seconds taken.

        The module runs in eval mode under ``torch.inference_mode()``; its mode is restored.
        """
        started = time.perf_counter()
        member_index = self._monitor.member_index if self._monitor is not None else None
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.inference_mode():
                forward = self._forward(pl_module)
                member_logits = self._members.logits(forward, self.batch_size, member_index)
                nonmember_logits = self._nonmembers.logits(forward, self.batch_size, None)
        finally:
            pl_module.train(was_training)
        return member_logits, nonmember_logits, time.perf_counter() - started

    def _ensure_monitor(self) -> PrivacyMonitor:
        """The monitor; built at the first audit when a DataLoader's labels were unknown."""
        if self._monitor is None:
            if self._members.labels is None or self._nonmembers.labels is None:
                raise RuntimeError("labels are known after the first pass over the data")
            self._monitor = PrivacyMonitor(
                member_labels=self._members.labels, nonmember_labels=self._nonmembers.labels,
                results=self._results, **self._monitor_options)
        return self._monitor

    def _forward(self, pl_module: Any) -> Callable[[Any], np.ndarray]:
        """A function: one input batch -> (b, C) float64 logits from the module's forward."""
        device = pl_module.device

        def forward(x: Any) -> np.ndarray:
            x = torch.as_tensor(x).to(device, non_blocking=True)
            out = pl_module(x)
            return to_class_logits(out.float().cpu().numpy(), from_logits=self.from_logits)

        return forward


class _Source:
    """Members or non-members: a tensor pair indexed directly, or a re-iterable of batches."""

    def __init__(self, name: str, x: Any = None, labels: np.ndarray | None = None,
                 batches: Iterable[Any] | None = None) -> None:
        self.name = name
        self.x = x
        self.labels = labels
        self.batches = batches

    @classmethod
    def of(cls, name: str, data: Any) -> _Source:
        if isinstance(data, tuple | list) and len(data) == 2:
            x = data[0] if isinstance(data[0], torch.Tensor) else torch.as_tensor(
                np.asarray(data[0]))
            labels = label_indices(_numpy(data[1]), name=f"{name} labels")
            if len(x) != len(labels):
                raise InputError(f"{name}: x has {len(x)} rows but y has {len(labels)}")
            return cls(name, x=x, labels=labels)
        if isinstance(data, Iterable) and not isinstance(data, str | bytes):
            return cls(name, batches=data)
        raise InputError(f"{name} must be a pair (x, y) or a DataLoader of (x, y) batches; "
                         f"got {type(data).__name__}")

    def logits(self, forward: Callable[[Any], np.ndarray], batch_size: int,
               index: np.ndarray | None) -> np.ndarray:
        """Logits (k, C) of rows ``index`` (all rows when None); a pass over a DataLoader
        also records its labels (and checks they come in the same order as before)."""
        if self.batches is None:
            assert self.labels is not None
            rows = np.arange(len(self.labels)) if index is None else index
            chunks = [forward(self.x[torch.as_tensor(rows[part])])
                      for part in batch_slices(len(rows), batch_size)]
            return _concat(chunks)
        outputs, labels = [], []
        for batch in self.batches:
            if not isinstance(batch, tuple | list) or len(batch) < 2:
                raise InputError(f"{self.name}: each batch must be (x, y, …); "
                                 f"got {type(batch).__name__}")
            outputs.append(forward(batch[0]))
            labels.append(label_indices(_numpy(batch[1]), name=f"{self.name} labels"))
        all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        if self.labels is not None and not np.array_equal(all_labels, self.labels):
            raise InputError(f"{self.name}: the DataLoader gave its examples in another order "
                             "than at the first audit; use shuffle=False")
        self.labels = all_labels
        logits = _concat(outputs)
        return logits if index is None else logits[index]


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _concat(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros((0, 2))
