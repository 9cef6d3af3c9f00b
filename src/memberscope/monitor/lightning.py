"""``PrivacyMonitorCallback``: a Lightning callback that audits membership leakage every k epochs.

The LightningModule's ``forward`` computes logits of members and non-members in
``torch.inference_mode()`` with large batches (the module is put in eval mode for it and
restored after, and torch's global random state is restored too, so training goes on exactly
as without the callback); :class:`~memberscope.monitor.core.PrivacyMonitor` audits them. The
AUC and advantage of each attack on the entire dataset go to the Lightning logger as
``<log_prefix>/<attack>_auc`` and ``<log_prefix>/<attack>_advantage``; every row is kept in
``.results`` and, when ``results_path`` is given, appended to a ``results.jsonl``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.attacks.blind import input_summary
from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.errors import InputError, require
from memberscope.monitor._common import audit_line, entire_dataset_rows, jsonl_sink, report
from memberscope.monitor._outputs import batch_slices, label_indices, to_class_logits
from memberscope.monitor._rng import torch_rng_untouched
from memberscope.monitor.core import (
    PrivacyMonitor,
    check_monitor_arguments,
    epochs_per_report_argument,
    positive_int,
)
from memberscope.outputs import ExampleInputs
from memberscope.results import AuditResult, ResultsCollection
from memberscope.risk import LossTraces

_FEATURE = "memberscope.monitor.lightning (the Lightning callback)"
_pl: Any = require("lightning.pytorch", "lightning", _FEATURE)
torch: Any = require("torch", "lightning", _FEATURE)

logger = logging.getLogger(__name__)

__all__ = ["INFERENCE_BATCH_SIZE", "PrivacyMonitorCallback"]

# Forward batch for (x, y) tensor pairs. benchmarks/monitor_inference_batch.py, codelab CNNs
# (2 and 3 conv) on 28x28x1 and 32x32x3 images, one CPU thread: 128 was the fastest in all
# four; 256 ran at 0.77-0.91 of its images/s, 512 at 0.63-0.86, 64 at 0.98-0.99.
INFERENCE_BATCH_SIZE = 128


class PrivacyMonitorCallback(_pl.Callback):
    """Lightning callback: every ``epochs_per_report`` epochs, audit members vs non-members.

    Parameters
    ----------
    members, nonmembers : (x, y) or iterable of batches
        Either a pair of tensors/arrays — inputs (n, …) and labels (n,) or one-hot (n, C) —
        or a DataLoader (any re-iterable of ``(x, y, …)`` batches). With a pair, only the
        sampled members are evaluated; a DataLoader is evaluated in full and the sample
        taken from its outputs. A shuffling DataLoader (``shuffle=True``, e.g. the training
        loader) is read in dataset order through a sequential copy; one with another sampler
        (weighted, subset, distributed) is refused, as its examples change between passes.
        A DataLoader's labels are read once when fitting starts (``setup``), so bad labels
        fail then, not at the first audit.
    epochs_per_report : int, default 2
        Audit after 1-based epochs k, 2k, … (``trainer.current_epoch + 1``); ``every`` is its
        deprecated name.
    model_label : str
        The model variant's name, stored in every row's ``metadata["model"]``.
    attacks, slices : sequence of str
        As :func:`memberscope.audit`.
    member_sample : int, optional
        Audit a fixed seeded sample of this many members instead of all.
    seed : int
        Seed of the member sample and the trained attacks.
    batch_size : int
        Inference batch size for tensor pairs (a DataLoader keeps its own batches); the
        default, 128, was the fastest measured on CPU.
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
    verbose : bool
        Print one line per audit (epoch, model, seconds, AUC and advantage of each attack on
        the entire dataset), as the codelab's callback did; False logs it at INFO instead.
    trace_every_epoch : bool, default False
        Record the audited members' losses (:attr:`loss_traces`) after every epoch, not only
        at audits: one inference pass over them on each epoch without an audit.
    control_model : torch.nn.Module, optional
        A model of the same recipe trained on data disjoint from members and non-members
        (a LightningModule or any module returning logits like ``forward``): evaluated on
        the same examples at every audit, for the split guard's control check. The inputs
        always go to the guard's blind check: (x, y) pairs as they are, a DataLoader's
        summarised batch by batch as each audit reads them.

    Every argument is checked here, before training: a misspelt attack or slice name fails
    with a did-you-mean.

    Notes
    -----
    Under distributed training only global rank 0 audits and logs (``rank_zero_only``).
    """

    def __init__(
        self,
        members: Any,
        nonmembers: Any,
        *,
        epochs_per_report: int | None = None,
        model_label: str = "model",
        attacks: Sequence[str] = DEFAULT_ATTACKS,
        slices: Sequence[str] = DEFAULT_SLICES,
        member_sample: int | None = None,
        seed: int = 0,
        batch_size: int = INFERENCE_BATCH_SIZE,
        from_logits: bool = True,
        results_path: str | Path | None = None,
        extra_metadata: Callable[[Any, Any], Mapping[str, Any]] | None = None,
        log_prefix: str = "privacy",
        audit_options: Mapping[str, Any] | None = None,
        verbose: bool = True,
        trace_every_epoch: bool = False,
        every: int | None = None,
        control_model: Any = None,
    ) -> None:
        super().__init__()
        epochs_per_report = epochs_per_report_argument(epochs_per_report, every)
        checked = check_monitor_arguments(attacks=attacks, slices=slices,
                                          audit_options=audit_options, model_label=model_label,
                                          seed=seed, member_sample=member_sample)
        self.batch_size = positive_int("batch_size", batch_size)
        if extra_metadata is not None and not callable(extra_metadata):
            raise InputError("extra_metadata must be callable as extra_metadata(trainer, "
                             f"pl_module); got {type(extra_metadata).__name__}")
        if not isinstance(log_prefix, str) or not log_prefix:
            raise InputError(f"log_prefix must be a non-empty string; got {log_prefix!r}")
        if control_model is not None and not isinstance(control_model, torch.nn.Module):
            raise InputError(f"control_model must be a torch.nn.Module; got "
                             f"{type(control_model).__name__}")
        self.control_model = control_model
        self._members = _Source.of("members", members)
        self._nonmembers = _Source.of("nonmembers", nonmembers)
        self.from_logits = from_logits
        self.extra_metadata = extra_metadata
        self.log_prefix = log_prefix
        self.verbose = verbose
        self.attack_results: list[AuditResult] = []
        self._monitor_options: dict[str, Any] = dict(
            checked, epochs_per_report=epochs_per_report, on_result=jsonl_sink(results_path),
            trace_every_epoch=trace_every_epoch)
        self._results = ResultsCollection()
        self._monitor: PrivacyMonitor | None = None
        if self._members.labels is not None and self._nonmembers.labels is not None:
            self._ensure_monitor()  # tensors: labels known now; DataLoaders: at setup

    @property
    def results(self) -> ResultsCollection:
        """Every result row so far (all audits of this callback)."""
        return self._results

    @property
    def loss_traces(self) -> LossTraces:
        """The audited members' losses at each audit (each epoch with ``trace_every_epoch``),
        rows in the monitor's ``member_index`` order; ``memberscope.rundir.write_traces``
        saves them."""
        return self.monitor.loss_traces

    @property
    def epochs_per_report(self) -> int:
        """Audit after 1-based epochs k, 2k, …"""
        return int(self._monitor_options["epochs_per_report"])

    @property
    def monitor(self) -> PrivacyMonitor:
        """The monitor core (made at construction for tensors, at ``setup`` for DataLoaders)."""
        return self._ensure_monitor()

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Lightning hook: read a DataLoader's labels before training, checking them now."""
        if stage == "fit" and trainer.is_global_zero:
            self._ensure_monitor()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Lightning hook: audit at epochs k, 2k, … (1-based) as the monitor core decides."""
        epoch = int(trainer.current_epoch) + 1
        if not trainer.is_global_zero:
            return
        monitor = self._ensure_monitor()
        if not monitor.should_audit(epoch):
            if monitor.trace_every_epoch:
                monitor.record_member_losses(epoch, self._member_logits(pl_module, monitor))
            return
        started = time.perf_counter()
        metadata = (dict(self.extra_metadata(trainer, pl_module))
                    if self.extra_metadata is not None else {})
        member_logits, nonmember_logits, inference_seconds = self._logits(pl_module, monitor)
        control_logits = None
        if self.control_model is not None:
            *logits, seconds = self._logits(self.control_model, monitor)
            control_logits = (logits[0], logits[1])
            inference_seconds += seconds
        summaries = (self._members.summaries, self._nonmembers.summaries)
        blind_features = None
        if monitor.inputs is None and summaries[0] is not None and summaries[1] is not None:
            blind_features = (summaries[0][monitor.member_index], summaries[1])
        result = monitor.audit_logits(member_logits, nonmember_logits, epoch=epoch,
                                      control_logits=control_logits,
                                      blind_features=blind_features,
                                      inference_seconds=inference_seconds, **metadata)
        self.attack_results.append(result)
        for row in entire_dataset_rows(result):
            for metric in ("auc", "advantage"):
                pl_module.log(f"{self.log_prefix}/{row.attack}_{metric}", row.metric(metric),
                              on_step=False, on_epoch=True, rank_zero_only=True)
        report(audit_line(monitor.model_label, epoch, time.perf_counter() - started, result),
               verbose=self.verbose, logger=logger)

    def _logits(self, pl_module: Any, monitor: PrivacyMonitor
                ) -> tuple[np.ndarray, np.ndarray, float]:
        """Logits of the (sampled) members and of the non-members, and the seconds taken.

        The module runs in eval mode under ``torch.inference_mode()``; its mode and torch's
        global random state are restored.
        """
        started = time.perf_counter()
        with _evaluating(pl_module):
            forward = self._forward(pl_module)
            member_logits = self._members.logits(forward, self.batch_size, monitor.member_index)
            nonmember_logits = self._nonmembers.logits(forward, self.batch_size, None)
        return member_logits, nonmember_logits, time.perf_counter() - started

    def _member_logits(self, pl_module: Any, monitor: PrivacyMonitor) -> np.ndarray:
        """Logits of the (sampled) members alone, as :meth:`_logits` computes them."""
        with _evaluating(pl_module):
            return self._members.logits(self._forward(pl_module), self.batch_size,
                                        monitor.member_index)

    def _ensure_monitor(self) -> PrivacyMonitor:
        """The monitor; for a DataLoader, made after one pass that reads its labels."""
        if self._monitor is None:
            with torch_rng_untouched():
                member_labels = self._members.read_labels()
                nonmember_labels = self._nonmembers.read_labels()
            self._monitor = PrivacyMonitor(
                member_labels=member_labels, nonmember_labels=nonmember_labels,
                results=self._results, member_inputs=self._members.host_inputs(),
                nonmember_inputs=self._nonmembers.host_inputs(), **self._monitor_options)
        return self._monitor

    def _forward(self, pl_module: Any) -> Callable[[Any], np.ndarray]:
        """A function: one input batch -> (b, C) float64 logits from the module's forward."""
        device = _device_of(pl_module)

        def forward(x: Any) -> np.ndarray:
            x = torch.as_tensor(x).to(device, non_blocking=True)
            out = pl_module(x)
            return to_class_logits(out.float().cpu().numpy(), from_logits=self.from_logits)

        return forward


@contextlib.contextmanager
def _evaluating(module: Any) -> Iterator[None]:
    """``module`` in eval mode under ``torch.inference_mode()``, its mode and torch's global
    random state restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        with torch_rng_untouched(_device_of(module)), torch.inference_mode():
            yield
    finally:
        module.train(was_training)


class _Source:
    """Members or non-members: a tensor pair indexed directly, or a re-iterable of batches."""

    def __init__(self, name: str, x: Any = None, labels: np.ndarray | None = None,
                 batches: Iterable[Any] | None = None) -> None:
        self.name = name
        self.x = x
        self.labels = labels
        self.batches = batches
        # A DataLoader's inputs summarised for the blind check during each pass (their
        # default features are per example, so batch by batch gives what all at once would).
        self.summaries: np.ndarray | None = None

    @classmethod
    def of(cls, name: str, data: Any) -> _Source:
        if isinstance(data, tuple | list) and len(data) == 2:
            x = data[0] if isinstance(data[0], torch.Tensor) else torch.as_tensor(
                np.asarray(data[0]))
            labels = label_indices(_numpy(data[1]), name=f"{name} labels")
            if len(x) != len(labels):
                raise InputError(f"{name}: x has {len(x)} rows but y has {len(labels)}")
            return cls(name, x=x, labels=labels)
        if isinstance(data, torch.utils.data.DataLoader):
            return cls(name, batches=_in_fixed_order(name, data))
        if isinstance(data, Iterable) and not isinstance(data, str | bytes):
            if iter(data) is data:
                raise InputError(f"{name} is an iterator, which one pass would use up; give "
                                 "a DataLoader, a list of batches or the (x, y) tensors")
            return cls(name, batches=data)
        raise InputError(f"{name} must be a pair (x, y) or a DataLoader of (x, y) batches; "
                         f"got {type(data).__name__}")

    def host_inputs(self) -> np.ndarray | None:
        """The inputs as a host array (a view of a CPU tensor), for the blind check; None for
        batches, whose inputs are not held."""
        if self.x is None or self.batches is not None:
            return None
        return _numpy(self.x)

    def read_labels(self) -> np.ndarray:
        """The labels: given with tensors, or read by one pass over the batches."""
        if self.labels is None:
            assert self.batches is not None
            self.labels = np.concatenate([label_indices(_numpy(batch[1]),
                                                        name=f"{self.name} labels")
                                          for batch in self._checked(self.batches)]
                                         or [np.zeros(0, np.int64)])
        return self.labels

    def _checked(self, batches: Iterable[Any]) -> Iterable[Any]:
        for batch in batches:
            if not isinstance(batch, tuple | list) or len(batch) < 2:
                raise InputError(f"{self.name}: each batch must be (x, y, …); "
                                 f"got {type(batch).__name__}")
            yield batch

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
        outputs, labels, summaries = [], [], []
        for batch in self._checked(self.batches):
            outputs.append(forward(batch[0]))
            labels.append(label_indices(_numpy(batch[1]), name=f"{self.name} labels"))
            summaries.append(input_summary(ExampleInputs.of(_numpy(batch[0]),
                                                            f"{self.name} inputs")))
        all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        if self.labels is not None and not np.array_equal(all_labels, self.labels):
            raise InputError(f"{self.name}: the batches came in another order than when their "
                             "labels were read; give the examples in a fixed order")
        self.labels = all_labels
        self.summaries = np.concatenate(summaries) if summaries else None
        logits = _concat(outputs)
        return logits if index is None else logits[index]


def _in_fixed_order(name: str, loader: Any) -> Any:
    """``loader``, or a sequential copy of a shuffling one: every example once, in dataset order.

    Raises InputError for a sampler that picks other examples on each pass.
    """
    data = torch.utils.data
    if isinstance(loader.dataset, data.IterableDataset):
        return loader  # its order is the dataset's own
    sampler = loader.sampler
    if isinstance(sampler, data.SequentialSampler):
        return loader
    if isinstance(sampler, data.RandomSampler) and type(loader.batch_sampler) is data.BatchSampler \
            and not sampler.replacement and len(sampler) == len(loader.dataset):
        # The shuffled training loader, most likely: same batches, collate and workers, in
        # order, and with its own generator, so no pass draws from torch's global one.
        return data.DataLoader(
            loader.dataset, batch_size=loader.batch_size, shuffle=False, drop_last=False,
            num_workers=loader.num_workers, collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory, timeout=loader.timeout,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context,
            generator=torch.Generator(), persistent_workers=loader.persistent_workers,
            **({"prefetch_factor": loader.prefetch_factor} if loader.num_workers else {}))
    raise InputError(
        f"{name}: the DataLoader draws its examples with a {type(sampler).__name__}, which "
        "changes them between passes; the monitor needs every example once in a fixed order: "
        "pass a DataLoader with shuffle=False and no sampler, or the (x, y) tensors")


def _device_of(module: Any) -> Any:
    """A LightningModule's device, or a plain module's (its first parameter's; CPU if none)."""
    device = getattr(module, "device", None)
    if device is not None:
        return device
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _concat(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros((0, 2))
