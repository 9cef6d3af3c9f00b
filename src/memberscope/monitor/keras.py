"""``PrivacyMetrics``: a Keras 3 callback that audits membership leakage every k epochs.

It mirrors the ``PrivacyMetrics`` callback of TF Privacy's privacy-report codelab — run attacks
every ``epochs_per_report`` (1-based) epochs on the training set (members) and the test set
(non-members), label each result with the model variant and epoch — over memberscope's
framework-agnostic :class:`~memberscope.monitor.core.PrivacyMonitor`. It works with every Keras
backend (torch, jax, tensorflow): predictions go through ``model.predict_on_batch``, which each
backend runs without gradient tracking.

Set ``KERAS_BACKEND`` before anything imports keras, as usual
(:func:`memberscope.monitor.keras_backend.choose_keras_backend` picks an installed one).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.errors import InputError, MissingBackendError, MissingExtraError
from memberscope.monitor._common import audit_line, entire_dataset_rows, jsonl_sink, report
from memberscope.monitor._outputs import batch_slices, label_indices, to_class_logits
from memberscope.monitor.core import PrivacyMonitor, positive_int
from memberscope.monitor.keras_backend import backend_problem
from memberscope.results import AuditResult, ResultsCollection
from memberscope.risk import LossTraces

_FEATURE = "memberscope.monitor.keras (the Keras callback)"


def _import_keras() -> Any:
    """keras, or an error saying whether keras itself or its backend is missing."""
    if importlib.util.find_spec("keras") is None:
        raise MissingExtraError("keras", "keras", _FEATURE)
    try:
        return importlib.import_module("keras")
    except Exception as exc:  # keras is there: its backend failed (missing, broken, misnamed)
        raise MissingBackendError(backend_problem(exc)) from exc


_keras: Any = _import_keras()

logger = logging.getLogger(__name__)

__all__ = ["PrivacyMetrics"]


class PrivacyMetrics(_keras.callbacks.Callback):
    """Keras callback: every ``epochs_per_report`` epochs, audit members vs non-members.

    Called as the codelab calls its own callback — ``PrivacyMetrics(epochs_per_report,
    model_name)`` — plus the data the codelab's callback read from global variables:
    ``PrivacyMetrics(2, "2 Layers", members=(x_train, y_train), nonmembers=(x_test, y_test))``.
    The older order ``PrivacyMetrics(members, nonmembers, epochs_per_report=…)`` still works
    and warns (``DeprecationWarning``).

    Parameters
    ----------
    epochs_per_report : int, default 2
        Audit after 1-based epochs k, 2k, … (the codelab's ``epoch + 1``).
    model_label : str
        The model variant's name (the codelab's ``model_name``), stored in every row's
        ``metadata["model"]``.
    members : (x_train, y_train)
        Training inputs (n_m, …) and labels: class indices (n_m,) or one-hot (n_m, C).
    nonmembers : (x_test, y_test)
        Held-out inputs (n_n, …) and labels, as ``members``.
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
    verbose : bool
        Print one line per audit, as the codelab's callback did ("Privacy report for epoch
        2 (2 Layers, 1.3 s): threshold auc=… adv=…; lr …"); False logs it at INFO instead.
    trace_every_epoch : bool, default False
        Record the audited members' losses (``loss_traces``) after every epoch, not only at
        audits: one ``predict_on_batch`` pass over them on each epoch without an audit.
    control_model : keras.Model, optional
        A model of the same recipe trained on data disjoint from members and non-members:
        evaluated on the same examples at every audit for the split guard's control check.
        (The inputs ``x_train`` / ``x_test`` always go to the guard's blind check.)

    Every argument is checked here, before training: a misspelt attack or slice name fails
    with a did-you-mean.

    Attributes
    ----------
    results : ResultsCollection
        Every row so far, each with model, epoch, train/test accuracy and timings.
    attack_results : list of AuditResult
        One entry per audit, as the codelab's ``callback.attack_results``.
    loss_traces : LossTraces
        The audited members' losses at each audit (each epoch with ``trace_every_epoch``),
        for :func:`memberscope.risk.trace_risk`; ``memberscope.rundir.write_traces`` saves
        them.

    Examples
    --------
    >>> callback = PrivacyMetrics(2, "2 layers", members=(x_train, y_train),  # doctest: +SKIP
    ...                           nonmembers=(x_test, y_test))
    >>> model.fit(x_train, y_train, epochs=10, callbacks=[callback])      # doctest: +SKIP
    >>> callback.results.filter(slice="entire_dataset").values("epoch")   # doctest: +SKIP
    [2, 4, 6, 8, 10]
    """

    def __init__(
        self,
        *args: Any,
        epochs_per_report: int | None = None,
        model_label: str | None = None,
        members: tuple[Any, Any] | None = None,
        nonmembers: tuple[Any, Any] | None = None,
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
        verbose: bool = True,
        trace_every_epoch: bool = False,
        control_model: Any = None,
    ) -> None:
        super().__init__()
        epochs_per_report, model_label, members, nonmembers = _arguments_in_codelab_order(
            args, epochs_per_report=epochs_per_report, model_label=model_label,
            members=members, nonmembers=nonmembers)
        self._x_members, member_labels = _unpack("members", members)
        self._x_nonmembers, nonmember_labels = _unpack("nonmembers", nonmembers)
        self.batch_size = positive_int("batch_size", batch_size)
        if extra_metadata is not None and not callable(extra_metadata):
            raise InputError(f"extra_metadata must be callable; got {extra_metadata!r}")
        self.from_logits = from_logits
        self.extra_metadata = extra_metadata
        self.add_to_logs = add_to_logs
        self.verbose = verbose
        self.attack_results: list[AuditResult] = []
        if control_model is not None and not hasattr(control_model, "predict_on_batch"):
            raise InputError(f"control_model must be a Keras model; got "
                             f"{type(control_model).__name__}")
        self.control_model = control_model
        self.monitor = PrivacyMonitor(
            member_labels=member_labels, nonmember_labels=nonmember_labels,
            attacks=attacks, slices=slices, epochs_per_report=epochs_per_report,
            model_label=model_label, seed=seed, member_sample=member_sample,
            on_result=jsonl_sink(results_path), audit_options=audit_options,
            trace_every_epoch=trace_every_epoch,
            member_inputs=self._x_members, nonmember_inputs=self._x_nonmembers)

    @property
    def results(self) -> ResultsCollection:
        """Every result row so far (all audits of this callback)."""
        return self.monitor.results

    @property
    def loss_traces(self) -> LossTraces:
        """The audited members' recorded losses (see the class docstring)."""
        return self.monitor.loss_traces

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Keras hook; ``epoch`` is 0-based as Keras passes it."""
        epoch_number = epoch + 1
        if not self.monitor.should_record(epoch_number):
            return
        started = time.perf_counter()
        audits = self.monitor.should_audit(epoch_number)
        metadata = dict(self.extra_metadata()) if audits and self.extra_metadata else {}
        control = self.control_model
        result = self.monitor.on_epoch_end(
            epoch_number,
            lambda index: self._predict(self._x_members, index),
            lambda: self._predict(self._x_nonmembers, None),
            control=None if control is None else (
                lambda index: self._predict(self._x_members, index, control),
                lambda: self._predict(self._x_nonmembers, None, control)),
            **metadata)
        if result is None:  # an epoch that only records the members' losses
            return
        self.attack_results.append(result)
        if self.add_to_logs and logs is not None:
            for row in entire_dataset_rows(result):
                logs[f"privacy_{row.attack}_auc"] = row.auc
                logs[f"privacy_{row.attack}_advantage"] = row.advantage
        line = audit_line(self.monitor.model_label, epoch_number,
                          time.perf_counter() - started, result)
        # Keras' progress bar (verbose=1) is mid-line when epoch-end callbacks run.
        progress_bar = self.verbose and (getattr(self, "params", None) or {}).get("verbose") == 1
        report("\n" + line if progress_bar else line, verbose=self.verbose, logger=logger)

    def _predict(self, x: Any, index: np.ndarray | None, model: Any = None) -> np.ndarray:
        """Logits (len(index) or n, C) of ``x`` (rows ``index`` when given) by ``model`` (the
        one trained), in large batches."""
        model = self.model if model is None else model
        n = len(index) if index is not None else len(x)
        chunks = []
        for part in batch_slices(n, self.batch_size):
            batch = x[index[part]] if index is not None else x[part]
            chunks.append(to_class_logits(model.predict_on_batch(batch),
                                          from_logits=self.from_logits))
        return np.concatenate(chunks) if chunks else np.zeros((0, 2))


_POSITIONAL = ("epochs_per_report", "model_label", "members", "nonmembers")


def _arguments_in_codelab_order(args: tuple[Any, ...], **given: Any
                                ) -> tuple[int | None, str, Any, Any]:
    """(epochs_per_report, model_label, members, nonmembers) from the positional ``args`` and
    the keyword arguments ``given`` (None where not given).

    The codelab's order is ``(epochs_per_report, model_name)``, then the data; memberscope's
    first release took ``(members, nonmembers)`` first, which is recognised (a pair where an
    int belongs) and warned about.
    """
    names: tuple[str, ...] = _POSITIONAL
    if args and isinstance(args[0], tuple | list):
        warnings.warn("PrivacyMetrics(members, nonmembers, ...) is deprecated; call it as the "
                      "codelab does: PrivacyMetrics(epochs_per_report, model_label, "
                      "members=(x_train, y_train), nonmembers=(x_test, y_test))",
                      DeprecationWarning, stacklevel=3)
        names = ("members", "nonmembers")
    if len(args) > len(names):
        raise InputError(f"PrivacyMetrics takes at most {len(names)} positional arguments "
                         f"({', '.join(names)}); got {len(args)}")
    for name, value in zip(names, args, strict=False):
        if given[name] is not None:
            raise InputError(f"PrivacyMetrics got {name} twice: by position and by keyword")
        given[name] = value
    if given["members"] is None or given["nonmembers"] is None:
        missing = " and ".join(name for name in ("members", "nonmembers") if given[name] is None)
        raise InputError(
            f"PrivacyMetrics needs the examples to audit; {missing} not given. The codelab's "
            "callback read x_train and x_test from global variables; give them: "
            "PrivacyMetrics(epochs_per_report, model_label, members=(x_train, y_train), "
            "nonmembers=(x_test, y_test))")
    label = "model" if given["model_label"] is None else given["model_label"]
    return given["epochs_per_report"], label, given["members"], given["nonmembers"]


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
