"""The framework-agnostic privacy monitor: audit a model every k epochs during training.

Framework adapters (the PyTorch trainer, the Keras and Lightning callbacks, a hand-written
loop's hook) only supply a ``predict`` function returning logits for a batch of inputs; the
monitor decides when to audit, which examples to audit, and records every result with its
epoch, accuracies, model label, ε (under DP) and timings.

Every argument is checked when a monitor is made, not at the first audit epochs later: attack
and slice names (with did-you-mean), sizes, and the options passed on to
:func:`memberscope.audit`.

The monitor also keeps the audited members' losses at each audit (:attr:`PrivacyMonitor.
loss_traces`, the input of :func:`memberscope.risk.trace_risk`), from the logits the audit
computes anyway; with ``trace_every_epoch=True`` it records them after every epoch, at the
cost of one inference pass over the audited members on each epoch without an audit. These
are losses of the model after the epoch, in eval mode; the trainer's own traces
(:attr:`memberscope.train.trainer.Trainer.loss_trace`) are the losses of the training
forward pass, recorded at no cost.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from memberscope import signals
from memberscope.attacks import get_attack
from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES, audit
from memberscope.errors import InputError, UnknownNameError
from memberscope.monitor._outputs import label_indices
from memberscope.outputs import ExampleInputs, InputPart, ModelOutputs, as_input_array
from memberscope.results import AuditResult, ResultsCollection
from memberscope.risk import LossTraces
from memberscope.slicing import parse_slice_kinds

Predict = Callable[[Any], np.ndarray]

DEFAULT_EPOCHS_PER_REPORT = 2  # the codelab's cadence

# Arguments of ``audit`` the monitor fills in itself; the rest may be given as audit options.
_SET_BY_MONITOR = frozenset({"outputs", "attacks", "slices", "seed", "metadata", "control"})


def epochs_per_report_argument(epochs_per_report: int | None, every: int | None, *,
                               stacklevel: int = 3) -> int:
    """The audit cadence from ``epochs_per_report`` or the deprecated alias ``every``.

    ``None`` for both gives the default, 2. ``every`` warns (``DeprecationWarning``) and
    giving both is an error.
    """
    if every is not None:
        warnings.warn("'every' is deprecated; use 'epochs_per_report' (the same value)",
                      DeprecationWarning, stacklevel=stacklevel)
        if epochs_per_report is not None:
            raise InputError(f"give epochs_per_report or the deprecated every, not both; got "
                             f"epochs_per_report={epochs_per_report!r}, every={every!r}")
        epochs_per_report = every
    if epochs_per_report is None:
        return DEFAULT_EPOCHS_PER_REPORT
    return positive_int("epochs_per_report", epochs_per_report, unit=" epoch")


def positive_int(name: str, value: Any, *, unit: str = "") -> int:
    """``value`` as an int >= 1; a bool, float or anything else names ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer >= 1{unit}; got {value!r}")
    if value < 1:
        raise InputError(f"{name} must be >= 1{unit}; got {value}")
    return int(value)


def check_audit_arguments(attacks: str | Sequence[str], slices: str | Sequence[str],
                          audit_options: Mapping[str, Any] | None
                          ) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """Check the names and options a monitor will pass to :func:`memberscope.audit`.

    Returns the attack names, the normalised slice kinds and the options as a dict. Raises
    :class:`~memberscope.errors.InputError` (an ``UnknownNameError`` with a did-you-mean for a
    misspelt name) on the first problem found.
    """
    attack_names = _names("attacks", attacks)
    for name in attack_names:
        attack = get_attack(name)
        if attack.needs_reference and (audit_options or {}).get("reference") is None:
            raise InputError(f"attack {name!r} needs reference models: pass "
                             "reference=ReferenceOutputs(...) in the audit options")
    slice_kinds = parse_slice_kinds(_names("slices", slices))
    options = _check_audit_options(dict(audit_options or {}), attack_names)
    if "custom" in slice_kinds and not options.get("custom_slices"):
        raise InputError("slice kind 'custom' needs custom_slices={'name': mask} in the audit "
                         "options")
    return attack_names, slice_kinds, options


def check_monitor_arguments(*, attacks: str | Sequence[str], slices: str | Sequence[str],
                            audit_options: Mapping[str, Any] | None, model_label: str,
                            seed: int, member_sample: int | None) -> dict[str, Any]:
    """Check every argument of a monitor that does not depend on the data; return them
    normalised (attack names and slice kinds as tuples, options as a dict).

    Adapters whose labels are known only later (a Lightning DataLoader) call this at
    construction, so a misspelt name fails before training starts.
    """
    attack_names, slice_kinds, options = check_audit_arguments(attacks, slices, audit_options)
    if not isinstance(model_label, str) or not model_label:
        raise InputError(f"model_label must be a non-empty string; got {model_label!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be an integer >= 0; got {seed!r}")
    return {"attacks": attack_names, "slices": slice_kinds, "audit_options": options,
            "model_label": model_label, "seed": int(seed),
            "member_sample": (None if member_sample is None
                              else positive_int("member_sample", member_sample))}


def _names(name: str, value: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise InputError(f"{name} must be names, as a list or 'a,b'; got {value!r}")
    if not items or not all(items):
        raise InputError(f"{name} must name at least one, without empty names; got {value!r}")
    return tuple(items)


def _check_audit_options(options: dict[str, Any], attacks: tuple[str, ...]) -> dict[str, Any]:
    valid = [name for name in inspect.signature(audit).parameters if name not in _SET_BY_MONITOR]
    for key in options:
        if key in _SET_BY_MONITOR:
            hint = (" (control_model: a model that saw neither members nor non-members, "
                    "evaluated at every audit)" if key == "control" else "")
            raise InputError(f"audit option {key!r} is set by the monitor itself; pass it to "
                             f"the monitor's own argument where there is one{hint}")
        if key not in valid:
            raise UnknownNameError("audit option", key, valid)
    if "fpr_targets" in options:
        targets = options["fpr_targets"]
        if isinstance(targets, str | bytes) or not isinstance(targets, Sequence) or not targets:
            raise InputError(f"fpr_targets must be a non-empty list of FPRs in (0, 1); "
                             f"got {targets!r}")
        for target in targets:
            _probability("fpr_targets", target)
    if "alpha" in options:
        _probability("alpha", options["alpha"])
    if "delta" in options:
        delta = options["delta"]
        if not isinstance(delta, numbers.Real) or not 0.0 <= float(delta) < 1.0:
            raise InputError(f"delta must be a number in [0, 1); got {delta!r}")
    if "min_slice_size" in options:
        positive_int("min_slice_size", options["min_slice_size"])
    if "n_bootstrap" in options:
        n = options["n_bootstrap"]
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise InputError(f"n_bootstrap must be an integer >= 0; got {n!r}")
    if "keep_scores" in options and not isinstance(options["keep_scores"], bool):
        raise InputError(f"keep_scores must be True or False; got {options['keep_scores']!r}")
    guard = options.get("split_guard", True)
    for attack, attack_options in dict(options.get("attack_options") or {}).items():
        if attack not in attacks and not (attack == "blind" and guard):
            raise InputError(f"attack_options names {attack!r}, which is not among the "
                             f"attacks {list(attacks)}")
        if not isinstance(attack_options, Mapping):
            raise InputError(f"attack_options[{attack!r}] must be a mapping of option names "
                             f"to values; got {type(attack_options).__name__}")
    return options


def _probability(name: str, value: Any) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0.0 < float(value) < 1.0 or math.isnan(float(value))):
        raise InputError(f"{name} must be in (0, 1); got {value!r}")


class PrivacyMonitor:
    """Runs ``audit`` on members vs non-members every ``epochs_per_report`` epochs.

    Parameters
    ----------
    member_labels, nonmember_labels : (n_m,), (n_n,) int, or one-hot (n_m, C), (n_n, C)
        Labels of the training examples and of the held-out examples.
    attacks, slices : names
        As :func:`memberscope.audit`; checked now (a misspelt name suggests the closest).
    epochs_per_report : int, default 2
        Audit after 1-based epochs k, 2k, … (the codelab's callback).
    model_label : str
        The model variant's name, stored in every row's ``metadata["model"]``.
    seed : int
        Seed of the member sample and of the trained attacks.
    member_sample : int, optional
        Audit a fixed, seeded random sample of this many members (all when None or when it
        is at least the number of members). A balanced sample (as many members as
        non-members) keeps monitoring cheap on large training sets.
    on_result : callable, optional
        Called with each ``AuditResult`` (e.g. to append it to ``results.jsonl``).
    audit_options : mapping, optional
        Further keyword arguments of :func:`memberscope.audit` (``fpr_targets``, ``alpha``, …),
        checked now.
    delta : float, optional
        δ of the DP guarantee under audit (the accountant's): the empirical ε lower bound of
        every row is computed at this δ, and rows record it as ``metadata["delta"]``.
    results : ResultsCollection, optional
        Where results are collected (a new one by default).
    trace_every_epoch : bool, default False
        Record the audited members' losses after every epoch, not only at audits: one
        inference pass over the audited members on each epoch without an audit (adapters
        pass ``predict_members`` to :meth:`on_epoch_end` every epoch).
    every : int, optional
        Deprecated name of ``epochs_per_report``.
    member_inputs, nonmember_inputs : (n_m, ...), (n_n, ...) numbers, optional
        The examples' inputs (any per-example shape): every audit's split guard then checks
        whether members and non-members differ before the model sees them (the ``blind``
        attack). Held as given, never copied; only the sampled members are read.

    The monitor never touches numpy's global random state: the member sample comes from its
    own seeded generator.
    """

    def __init__(self, member_labels: Any, nonmember_labels: Any, *,
                 attacks: str | Sequence[str] = DEFAULT_ATTACKS,
                 slices: str | Sequence[str] = DEFAULT_SLICES,
                 epochs_per_report: int | None = None, model_label: str = "model",
                 seed: int = 0, member_sample: int | None = None,
                 on_result: Callable[[AuditResult], None] | None = None,
                 audit_options: Mapping[str, Any] | None = None,
                 delta: float | None = None, results: ResultsCollection | None = None,
                 trace_every_epoch: bool = False, every: int | None = None,
                 member_inputs: Any = None, nonmember_inputs: Any = None) -> None:
        self.epochs_per_report = epochs_per_report_argument(epochs_per_report, every)
        checked = check_monitor_arguments(attacks=attacks, slices=slices,
                                          audit_options=audit_options, model_label=model_label,
                                          seed=seed, member_sample=member_sample)
        self.attacks: tuple[str, ...] = checked["attacks"]
        self.slices: tuple[str, ...] = checked["slices"]
        self.audit_options: dict[str, Any] = checked["audit_options"]
        self.model_label: str = checked["model_label"]
        self.seed: int = checked["seed"]
        self.member_sample: int | None = checked["member_sample"]
        if on_result is not None and not callable(on_result):
            raise InputError(f"on_result must be callable; got {type(on_result).__name__}")
        self.on_result = on_result
        if delta is not None and not (isinstance(delta, int | float) and 0.0 < delta < 1.0):
            raise InputError(f"delta must be a number in (0, 1), the accountant's δ; "
                             f"got {delta!r}")
        self.delta = None if delta is None else float(delta)
        self.results = ResultsCollection() if results is None else results
        if not isinstance(trace_every_epoch, bool):
            raise InputError(f"trace_every_epoch must be True or False; got "
                             f"{trace_every_epoch!r}")
        self.trace_every_epoch = trace_every_epoch
        self._member_losses: dict[int, np.ndarray] = {}  # epoch -> (n_audited,) float32
        self.member_labels = label_indices(member_labels, name="member labels")
        self.nonmember_labels = label_indices(nonmember_labels, name="nonmember labels")
        for name, labels in (("members", self.member_labels),
                             ("nonmembers", self.nonmember_labels)):
            if len(labels) == 0:
                raise InputError(f"{name} has no examples; the monitor needs at least one")
        n_members = len(self.member_labels)
        if self.member_sample is None or self.member_sample >= n_members:
            self.member_index = np.arange(n_members)
        else:
            rng = np.random.default_rng(self.seed)
            self.member_index = np.sort(rng.choice(n_members, self.member_sample, replace=False))
        self.inputs = self._inputs(member_inputs, nonmember_inputs)
        custom = self.audit_options.get("custom_slices") or {}
        n_audited = len(self.member_index) + len(self.nonmember_labels)
        for name, groups in dict(custom).items():
            if len(np.asarray(groups)) != n_audited:
                raise InputError(f"custom_slices[{name!r}] has {len(np.asarray(groups))} "
                                 f"entries; expected {n_audited} (the audited members, then "
                                 "the non-members)")

    def _inputs(self, members: Any, nonmembers: Any) -> ExampleInputs | None:
        """The audited examples' inputs: the sampled members', then the non-members'."""
        if members is None and nonmembers is None:
            return None
        if members is None or nonmembers is None:
            raise InputError("give the inputs of both members and non-members, or neither")
        parts = []
        for name, value, labels, rows in (
                ("members' inputs", members, self.member_labels, self.member_index),
                ("nonmembers' inputs", nonmembers, self.nonmember_labels, None)):
            array = as_input_array(name, value)
            if len(array) != len(labels):
                raise InputError(f"{name} has {len(array)} rows but there are {len(labels)} "
                                 "labels; give one input per example")
            parts.append(InputPart(name, array, rows))
        return ExampleInputs(tuple(parts))

    @property
    def every(self) -> int:
        """Deprecated name of :attr:`epochs_per_report`."""
        warnings.warn("'every' is deprecated; use 'epochs_per_report'", DeprecationWarning,
                      stacklevel=2)
        return self.epochs_per_report

    def should_audit(self, epoch: int) -> bool:
        """Whether the 1-based ``epoch`` is an audit epoch."""
        return epoch % self.epochs_per_report == 0

    def should_record(self, epoch: int) -> bool:
        """Whether the monitor wants the members' logits after the 1-based ``epoch`` (an audit
        epoch, or every epoch with ``trace_every_epoch``)."""
        return self.trace_every_epoch or self.should_audit(epoch)

    def record_member_losses(self, epoch: int, member_logits: np.ndarray) -> None:
        """Keep the audited members' cross-entropy at ``epoch`` from their logits
        (len(member_index), C); a second call for the same epoch replaces the first."""
        labels = self.member_labels[self.member_index]
        logits = np.asarray(member_logits, dtype=np.float64)
        if logits.ndim != 2 or len(logits) != len(labels):
            raise InputError(f"member_logits must be ({len(labels)}, classes) for the sampled "
                             f"members; got shape {logits.shape}")
        self._member_losses[int(epoch)] = signals.cross_entropy_loss(
            labels, logits=logits).astype(np.float32)

    @property
    def loss_traces(self) -> LossTraces:
        """The audited members' recorded losses: rows in ``member_index`` order (their
        positions among the members given), one column per recorded epoch, increasing."""
        epochs = sorted(self._member_losses)
        n = len(self.member_index)
        losses = np.stack([self._member_losses[e] for e in epochs], axis=1) if epochs else \
            np.zeros((n, 0), dtype=np.float32)
        return LossTraces(losses=losses, epochs=np.asarray(epochs, dtype=np.int64),
                          example_index=self.member_index,
                          labels=self.member_labels[self.member_index], model=self.model_label)

    def audit_logits(self, member_logits: np.ndarray, nonmember_logits: np.ndarray, *,
                     epoch: int, control_logits: tuple[np.ndarray, np.ndarray] | None = None,
                     blind_features: tuple[np.ndarray, np.ndarray] | None = None,
                     **metadata: Any) -> AuditResult:
        """Audit given logits: ``member_logits`` (len(member_index), C) for the sampled members,
        ``nonmember_logits`` (n_n, C). Adds model, epoch and accuracies to every row.

        ``control_logits``: a control model's logits on the same (sampled) members and
        non-members, for the split guard's control check (its accuracies are recorded as
        ``control_train_accuracy`` / ``control_test_accuracy``). ``blind_features``: the
        blind check's features of the same examples, where the monitor holds no inputs but
        summarised them batch by batch (a DataLoader's).
        """
        member_labels = self.member_labels[self.member_index]
        if len(member_logits) != len(member_labels):
            raise InputError(f"member_logits has {len(member_logits)} rows; expected "
                             f"{len(member_labels)} (the sampled members)")
        started = time.perf_counter()
        outputs = self._outputs(member_logits, nonmember_logits)
        row_metadata = {
            "model": self.model_label, "epoch": epoch,
            **self._accuracies("", member_logits, nonmember_logits),
            **metadata,
        }
        self.record_member_losses(epoch, member_logits)
        options = dict(self.audit_options)
        if blind_features is not None:
            given = dict(options.get("attack_options") or {})
            given["blind"] = {**given.get("blind", {}),
                              "features": np.concatenate(blind_features)}
            options["attack_options"] = given
        if control_logits is not None:
            options["control"] = self._outputs(*control_logits, name="control")
            row_metadata.update(self._accuracies("control_", *control_logits))
        if self.delta is not None:
            options["delta"] = row_metadata["delta"] = self.delta
        result = audit(outputs, attacks=self.attacks, slices=self.slices, seed=self.seed,
                       metadata=row_metadata, **options)
        result = result.with_metadata(audit_seconds=time.perf_counter() - started)
        self.results.add(result)
        if self.on_result is not None:
            self.on_result(result)
        return result

    def _outputs(self, member_logits: np.ndarray, nonmember_logits: np.ndarray, *,
                 name: str = "") -> ModelOutputs:
        """ModelOutputs of the sampled members and the non-members, with their inputs."""
        member_labels = self.member_labels[self.member_index]
        if name and (len(member_logits), len(nonmember_logits)) != (
                len(member_labels), len(self.nonmember_labels)):
            raise InputError(f"{name} logits have {len(member_logits)} + "
                             f"{len(nonmember_logits)} rows; expected {len(member_labels)} + "
                             f"{len(self.nonmember_labels)} (the sampled members, the "
                             "non-members)")
        outputs = ModelOutputs.from_train_test(
            logits_train=member_logits, logits_test=nonmember_logits,
            labels_train=member_labels, labels_test=self.nonmember_labels)
        return outputs if name or self.inputs is None else replace(outputs, inputs=self.inputs)

    def _accuracies(self, prefix: str, member_logits: np.ndarray,
                    nonmember_logits: np.ndarray) -> dict[str, float]:
        member_labels = self.member_labels[self.member_index]
        return {f"{prefix}train_accuracy": float(np.mean(member_logits.argmax(1) == member_labels)),
                f"{prefix}test_accuracy": float(np.mean(nonmember_logits.argmax(1)
                                                        == self.nonmember_labels))}

    def on_epoch_end(self, epoch: int, predict_members: Callable[[np.ndarray], np.ndarray],
                     predict_nonmembers: Callable[[], np.ndarray], *,
                     control: tuple[Callable[[np.ndarray], np.ndarray],
                                    Callable[[], np.ndarray]] | None = None,
                     **metadata: Any) -> AuditResult | None:
        """At an audit epoch, compute logits and audit; otherwise return None (after recording
        the members' losses with ``trace_every_epoch``).

        ``predict_members(index)`` returns logits (len(index), C) of the members at ``index``;
        ``predict_nonmembers()`` returns logits (n_n, C) of all non-members; ``control`` is
        the same pair for a control model (:meth:`audit_logits`).
        """
        if not self.should_audit(epoch):
            if self.trace_every_epoch:
                self.record_member_losses(epoch, predict_members(self.member_index))
            return None
        started = time.perf_counter()
        member_logits = np.asarray(predict_members(self.member_index), dtype=np.float64)
        nonmember_logits = np.asarray(predict_nonmembers(), dtype=np.float64)
        control_logits = None if control is None else (
            np.asarray(control[0](self.member_index), dtype=np.float64),
            np.asarray(control[1](), dtype=np.float64))
        inference_seconds = time.perf_counter() - started
        return self.audit_logits(member_logits, nonmember_logits, epoch=epoch,
                                 control_logits=control_logits,
                                 inference_seconds=inference_seconds, **metadata)
