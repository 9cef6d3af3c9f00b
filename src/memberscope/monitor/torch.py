"""``TorchMonitorHook``: privacy monitoring for a hand-written PyTorch training loop.

>>> hook = TorchMonitorHook(model, members=(x_train, y_train), nonmembers=(x_test, y_test),
...                         epochs_per_report=2, model_label="3 layers")  # doctest: +SKIP
>>> for epoch in range(1, epochs + 1):                             # doctest: +SKIP
...     train_one_epoch(model)
...     hook.on_epoch_end(epoch)
>>> hook.results.to_pandas()                                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.errors import InputError, require
from memberscope.monitor._common import audit_line, report
from memberscope.monitor._outputs import label_indices
from memberscope.monitor._rng import torch_rng_untouched
from memberscope.monitor.core import PrivacyMonitor, epochs_per_report_argument, positive_int
from memberscope.results import AuditResult, ResultsCollection
from memberscope.risk import LossTraces
from memberscope.train.trainer import INFERENCE_BATCH_SIZE, as_model_input, predict_logits

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def _split(name: str, pair: Any) -> tuple[Any, np.ndarray]:
    try:
        x, y = pair
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a pair (x, y); got {type(pair).__name__}") from None
    labels = label_indices(y.cpu() if hasattr(y, "cpu") else y, name=f"{name} labels")
    if len(labels) != len(x):
        raise InputError(f"{name}: y must be (N,) labels or (N, C) one-hot for the {len(x)} "
                         f"inputs; got {len(labels)} rows")
    return x, labels


class TorchMonitorHook:
    """Audits a PyTorch model every ``epochs_per_report`` epochs from any training loop.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits; evaluated in ``eval()`` mode under ``torch.inference_mode()``, with
        torch's global random state restored afterwards (training goes on as without it).
    members, nonmembers : (x, y)
        x as numpy or tensor, (N, H, W, C) images (NHWC, as the datasets hold them) or
        (N, D) features; y (N,) int labels or (N, C) one-hot. Pass ``channels_first=True``
        for NCHW images.
    epochs_per_report : int, default 2
        Audit after 1-based epochs k, 2k, … (``every`` is its deprecated name).
    member_sample : int, optional
        Audit a fixed seeded sample of this many members (e.g. as many as non-members).
    epsilon : callable, optional
        Returns the DP accountant's ε so far; recorded in every row as ``epsilon``.
    delta : float, optional
        The δ of that ε: recorded as ``delta``, and the rows' empirical ε lower bounds use it.
    accountant : str, optional
        The accountant's name (e.g. "prv"), recorded as ``accountant``.
    on_result : callable, optional
        Receives each :class:`~memberscope.AuditResult` (e.g. ``store.append_result``).
    batch_size : int
        Inference batch size (128 was the fastest here on CPU with channels_last).
    verbose : bool
        Print one line per audit (epoch, model, seconds, AUC and advantage of each attack on
        the entire dataset), as the codelab's callback did; False logs it at INFO instead.
    trace_every_epoch : bool, default False
        Record the audited members' losses (:attr:`loss_traces`) after every epoch, not only
        at audits: one inference pass over them on each epoch without an audit.
    control_model : torch.nn.Module, optional
        A model of the same recipe trained on data disjoint from members and non-members
        (e.g. trained alongside, epoch by epoch): evaluated on the same examples at every
        audit, its loss is the split guard's control check and each attack on it the bar
        for that attack's beyond-split test.
    **audit_options
        More keyword arguments of :func:`memberscope.audit`.
    """

    def __init__(self, model: torch.nn.Module, *, members: Any, nonmembers: Any,
                 epochs_per_report: int | None = None, attacks: Sequence[str] = DEFAULT_ATTACKS,
                 slices: Sequence[str] = DEFAULT_SLICES, model_label: str = "model",
                 member_sample: int | None = None, seed: int = 0,
                 epsilon: Callable[[], float | None] | None = None,
                 delta: float | None = None, accountant: str | None = None,
                 on_result: Callable[[AuditResult], None] | None = None,
                 batch_size: int = INFERENCE_BATCH_SIZE, channels_first: bool = False,
                 device: str | None = None, verbose: bool = True,
                 trace_every_epoch: bool = False, every: int | None = None,
                 control_model: torch.nn.Module | None = None, **audit_options: Any) -> None:
        torch_module: Any = require("torch", "torch", "the PyTorch monitor hook")
        if not isinstance(model, torch_module.nn.Module):
            raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if control_model is not None and not isinstance(control_model, torch_module.nn.Module):
            raise InputError(f"control_model must be a torch.nn.Module; got "
                             f"{type(control_model).__name__}")
        epochs_per_report = epochs_per_report_argument(epochs_per_report, every)
        x_members, y_members = _split("members", members)
        x_nonmembers, y_nonmembers = _split("nonmembers", nonmembers)
        positive_int("batch_size", batch_size)
        if epsilon is not None and not callable(epsilon):
            raise InputError(f"epsilon must be a callable returning ε; got {epsilon!r}")
        self.monitor = PrivacyMonitor(
            member_labels=y_members, nonmember_labels=y_nonmembers, attacks=attacks,
            slices=slices, epochs_per_report=epochs_per_report, model_label=model_label,
            seed=seed, member_sample=member_sample, on_result=on_result,
            audit_options=audit_options, delta=delta, trace_every_epoch=trace_every_epoch,
            member_inputs=_host_inputs(x_members, channels_first),
            nonmember_inputs=_host_inputs(x_nonmembers, channels_first))
        self.model = model
        self.control_model = control_model
        if device is None:
            device = next((str(p.device) for p in model.parameters()), "cpu")
        self.x_members = self._as_input(x_members, channels_first, device)
        self.x_nonmembers = self._as_input(x_nonmembers, channels_first, device)
        self.batch_size = batch_size
        self.epsilon = epsilon
        self.accountant = accountant
        self.verbose = verbose
        self.device = device

    def _logits(self, model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """``model``'s logits (float64) on the sampled members and on the non-members."""
        nonmembers = predict_logits(model, self.x_nonmembers, batch_size=self.batch_size)
        return self._member_logits(model), nonmembers.astype(np.float64)

    def _member_logits(self, model: torch.nn.Module) -> np.ndarray:
        """``model``'s logits (float64) on the sampled members."""
        return predict_logits(model, self.x_members, self.monitor.member_index,
                              batch_size=self.batch_size).astype(np.float64)

    @staticmethod
    def _as_input(x: Any, channels_first: bool, device: str) -> torch.Tensor:
        import torch

        tensor = torch.as_tensor(x)
        if channels_first and tensor.ndim == 4:
            tensor = tensor.permute(0, 2, 3, 1)
        return as_model_input(tensor, device)

    @property
    def results(self) -> ResultsCollection:
        """Every audit row so far."""
        return self.monitor.results

    @property
    def member_index(self) -> np.ndarray:
        """Rows of the members that are audited (all, or the fixed sample)."""
        return self.monitor.member_index

    @property
    def loss_traces(self) -> LossTraces:
        """The audited members' losses at each audit (each epoch with ``trace_every_epoch``);
        rows in :attr:`member_index` order. ``memberscope.rundir.write_traces`` saves them."""
        return self.monitor.loss_traces

    def on_epoch_end(self, epoch: int, **metadata: Any) -> AuditResult | None:
        """Call after each 1-based ``epoch``; audits at audit epochs, else returns None
        (after recording the members' losses with ``trace_every_epoch``).

        ``metadata`` (e.g. ``epoch_seconds=…``) is added to every row of the result.
        """
        if not self.monitor.should_audit(epoch):
            if self.monitor.trace_every_epoch:
                with torch_rng_untouched(self.device):
                    self.monitor.record_member_losses(epoch, self._member_logits(self.model))
            return None
        return self.audit(epoch, **metadata)

    def audit(self, epoch: int, **metadata: Any) -> AuditResult:
        """Audit now, whatever the epoch."""
        started = time.perf_counter()
        with torch_rng_untouched(self.device):
            member_logits, nonmember_logits = self._logits(self.model)
            control_logits = (None if self.control_model is None
                              else self._logits(self.control_model))
        extra: dict[str, Any] = {"inference_seconds": time.perf_counter() - started}
        if self.epsilon is not None:
            extra["epsilon"] = self.epsilon()
        if self.accountant is not None:
            extra["accountant"] = self.accountant
        result = self.monitor.audit_logits(member_logits, nonmember_logits, epoch=epoch,
                                           control_logits=control_logits,
                                           **{**extra, **dict(metadata)})
        report(audit_line(self.monitor.model_label, epoch, time.perf_counter() - started,
                          result), verbose=self.verbose, logger=logger)
        return result


def _host_inputs(x: Any, channels_first: bool) -> np.ndarray:
    """The inputs as a host array for the blind check, NHWC for images: the caller's array
    itself, or a view of a CPU tensor (a GPU tensor is copied to the host once)."""
    array = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return np.moveaxis(array, 1, -1) if channels_first and array.ndim == 4 else array
