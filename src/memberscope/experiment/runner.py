"""``run_experiment``: train every model variant of a config, audit it as it trains, and keep
everything in a run directory (its layout: :mod:`memberscope.rundir`)::

    RUN_DIR/config.toml        the resolved config (every default filled in)
    RUN_DIR/results.jsonl      one line per (model, epoch, slice, attack), appended as it goes
    RUN_DIR/scores/LABEL/epoch_NNNN.npz   per-example attack scores of each audit
    RUN_DIR/checkpoints/LABEL.pt       model, optimizer, RNG and accountant state
    RUN_DIR/canaries/LABEL.npz         DP variants with canaries: who they are, whether each
                                       was included, and their scores at the last audit
    RUN_DIR/traces/LABEL.npz           every member's training loss at every epoch
    RUN_DIR/report.html        when the report module is installed

After each epoch the runner adds the members' losses to their loss traces, audits (at report
epochs; each row carries a summary of the members' trace risk so far), appends the rows, then
writes the checkpoint. Killing it at any moment loses at most the epoch in progress: with
``resume=True`` each variant continues from its checkpoint, and rows (and trace epochs) a
killed run wrote after its last checkpoint are dropped (they are recomputed identically,
training being deterministic).
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope import rundir
from memberscope._io import atomic_write_text
from memberscope._seeding import stream_rng, stream_seed
from memberscope.errors import InputError, MemberscopeError, MissingExtraError, require
from memberscope.experiment.config import ExperimentConfig, VariantConfig, load_config, to_toml
from memberscope.metrics import DEFAULT_FPR_TARGETS, LowResolutionWarning
from memberscope.results import AuditResult
from memberscope.risk import LossTraces, risk_summary
from memberscope.store import append_result, load_results, read_jsonl, write_jsonl
from memberscope.summary import Group, summarize
from memberscope.train.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    save_checkpoint,
)

if TYPE_CHECKING:
    from memberscope.data import Dataset

logger = logging.getLogger(__name__)

Notify = Callable[[str], None]

# The summary in each audit row's metadata is in loss units, comparable across epochs and
# variants; the default ranking method's values are percentiles (its top 1% starts near 0.99
# by construction), which a summary could not compare.
TRACE_RISK_METHOD = "iqr"


class RunWriteError(MemberscopeError, OSError):
    """Writing into the run directory failed (e.g. the disk is full); what was written
    before is intact and the run can continue with ``--resume`` once the cause is fixed."""


@dataclass(frozen=True)
class VariantSummary:
    """The last audit of one variant: epoch, accuracies, DP ε, the highest AUC of any row
    (``max_auc``, chance included) and of the rows distinguishable from chance
    (``worst_significant_auc``, None when none is), with ``leakage`` saying it in words."""

    label: str
    epoch: int
    train_accuracy: float
    test_accuracy: float
    epsilon: float | None
    max_auc: float
    worst_significant_auc: float | None = None
    n_results: int = 0
    leakage: str = ""


@dataclass(frozen=True)
class RunSummary:
    """Where a run's files are and how each variant ended."""

    run_dir: Path
    results_path: Path
    report_path: Path | None
    variants: tuple[VariantSummary, ...]


# --- the run directory ----------------------------------------------------------------------


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += _differences(old.get(key), new.get(key), sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in _differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def prepare_run_dir(config: ExperimentConfig, run_dir: Path, *, resume: bool) -> None:
    """Create the run directory and its ``config.toml``, or check that a resumed run has
    the same config; refuses to mix runs."""
    config_path = rundir.config_path(run_dir)
    if config_path.exists():
        if not resume:
            raise InputError(f"{run_dir} already holds a run; pass --resume to continue it or "
                             "choose another output directory")
        stored = load_config(config_path)
        if stored.fingerprint() != config.fingerprint():
            changed = _differences(stored.to_dict(), config.to_dict())
            changed = [c for c in changed if not c.startswith("training.threads")]
            raise CheckpointMismatchError(
                f"{run_dir} was started with another config; changed: {'; '.join(changed[:5])}"
                f"{' …' if len(changed) > 5 else ''}. Resume with the original config "
                f"({config_path}) or start a new run directory")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        raise InputError(f"{run_dir} exists and is not a memberscope run directory (no "
                         f"{rundir.CONFIG_FILE}); choose an empty or new output directory")
    _write(lambda: atomic_write_text(config_path, to_toml(config.to_dict())), config_path,
           run_dir)


def _write(action: Callable[[], object], path: Path, run_dir: Path) -> None:
    try:
        action()
    except OSError as exc:
        if isinstance(exc, MemberscopeError):
            raise
        reason = exc.strerror or str(exc)
        raise RunWriteError(
            f"could not write {path}: {reason}. Everything written before is intact in "
            f"{run_dir}; fix the cause (free disk space?) and continue with --resume") from exc


def drop_rows_after(results_path: Path, label: str, epoch: int) -> int:
    """Remove rows of ``label`` with an epoch after ``epoch`` (written after the checkpoint a
    run is resumed from); returns how many were removed. Rewrites the file atomically."""
    if not results_path.exists():
        return 0
    records = read_jsonl(results_path)

    def stale(record: dict[str, Any]) -> bool:
        metadata = record.get("metadata", {})
        return metadata.get("model") == label and int(metadata.get("epoch", 0)) > epoch

    kept = [r for r in records if not stale(r)]
    removed = len(records) - len(kept)
    if removed:
        write_jsonl(results_path, kept)
    return removed


# --- data and models ------------------------------------------------------------------------


def load_run_dataset(config: ExperimentConfig) -> Dataset:
    """The config's dataset, with the optional seeded ``max_train``/``max_test`` subsets and
    ``pad`` zero pixels around each image."""
    return _run_split(_loaded(config), config)[0]


def control_set(config: ExperimentConfig, loaded: Dataset, spare: np.ndarray,
                n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples (x, y) of ``loaded``'s training split at rows ``spare`` (used neither
    as members nor as non-members), seeded: what the run's control models train on. Raises
    naming the settings when too few are left."""
    if len(spare) < n:
        raise InputError(
            f"audit.split_guard.control: a control model trains on as many examples as the "
            f"members ({n}), disjoint from members and non-members; the training split of "
            f"{loaded.name!r} leaves {len(spare)}. Lower dataset.max_train (or "
            "dataset.max_test with dataset.nonmembers = \"train\")")
    rows = np.sort(stream_rng(config.seed, "control-set").permutation(spare)[:n])
    return loaded.x_train[rows], loaded.y_train[rows]


def _loaded(config: ExperimentConfig) -> Dataset:
    """The config's whole dataset, padded as configured."""
    from memberscope.data import load_dataset

    spec = config.dataset
    try:
        data = load_dataset(spec.name, cache_dir=spec.cache_dir, path=spec.path, url=spec.url,
                            sha256=spec.sha256)
    except FileNotFoundError as exc:
        raise InputError(f"dataset.name: {exc}") from exc
    except InputError as exc:
        raise InputError(f"dataset.name {spec.name!r}: {exc}") from exc
    return _padded(data, spec.pad) if spec.pad else data


def _run_split(data: Dataset, config: ExperimentConfig) -> tuple[Dataset, np.ndarray]:
    """The run's dataset (members as its training split, non-members as its test split) from
    the loaded ``data``, and the rows of ``data``'s training split that are neither (sorted)."""
    from memberscope.data import Dataset

    spec = config.dataset
    rng = stream_rng(config.seed, "dataset-subset")
    if spec.nonmembers == "train":
        return _nonmembers_from_train(data, spec.max_train, spec.max_test, rng)
    if spec.max_train is None and spec.max_test is None:
        return data, np.zeros(0, dtype=np.int64)

    def subset(n: int, limit: int | None) -> np.ndarray:
        if limit is None or limit >= n:
            return np.arange(n)
        return np.sort(rng.choice(n, limit, replace=False))

    train = subset(data.n_train, spec.max_train)
    test = subset(data.n_test, spec.max_test)
    return Dataset(x_train=data.x_train[train], y_train=data.y_train[train],
                   x_test=data.x_test[test], y_test=data.y_test[test], name=data.name,
                   num_classes=data.num_classes, input_shape=data.input_shape,
                   class_names=data.class_names), np.setdiff1d(np.arange(data.n_train), train)


def _nonmembers_from_train(data: Dataset, max_train: int | None, max_test: int | None,
                           rng: np.random.Generator) -> tuple[Dataset, np.ndarray]:
    """Members and non-members both drawn from ``data``'s training split, disjoint and seeded:
    ``max_train`` members (default half) and ``max_test`` non-members (default the rest);
    and the training rows left over (sorted)."""
    from memberscope.data import Dataset

    n = data.n_train
    n_members = n // 2 if max_train is None else max_train
    n_nonmembers = n - n_members if max_test is None else max_test
    if n_members + n_nonmembers > n or n_nonmembers < 1:
        raise InputError(f"dataset.max_train + dataset.max_test must fit in the {n} training "
                         f"examples of {data.name!r} with dataset.nonmembers = \"train\"; got "
                         f"{n_members} + {n_nonmembers}")
    order = rng.permutation(n)
    train = np.sort(order[:n_members])
    test = np.sort(order[n_members:n_members + n_nonmembers])
    return Dataset(x_train=data.x_train[train], y_train=data.y_train[train],
                   x_test=data.x_train[test], y_test=data.y_train[test], name=data.name,
                   num_classes=data.num_classes, input_shape=data.input_shape,
                   class_names=data.class_names), np.sort(order[n_members + n_nonmembers:])


def _padded(data: Dataset, pad: int) -> Dataset:
    """``data`` with ``pad`` zero pixels on every side of each (H, W, C) image."""
    from memberscope.data import Dataset

    if len(data.input_shape) != 3:
        raise InputError(f"dataset.pad: only images can be padded; {data.name!r} has "
                         f"examples of shape {tuple(data.input_shape)}")
    widths = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    height, width, channels = data.input_shape
    return Dataset(x_train=np.pad(data.x_train, widths), y_train=data.y_train,
                   x_test=np.pad(data.x_test, widths), y_test=data.y_test, name=data.name,
                   num_classes=data.num_classes,
                   input_shape=(height + 2 * pad, width + 2 * pad, channels),
                   class_names=data.class_names)


def build_variant_model(variant: VariantConfig, input_shape: tuple[int, ...],
                        num_classes: int, seed: int) -> Any:
    """The variant's model with weights seeded by ``seed`` (see
    :func:`memberscope.train.models.build_model`)."""
    from memberscope.train.models import build_model

    model = variant.model
    return build_model(model.kind, input_shape, num_classes, num_conv=model.num_conv,
                       activation=model.activation, hidden=model.hidden, seed=seed)


def _check_models(config: ExperimentConfig, data: Dataset) -> None:
    problems = []
    for index, variant in enumerate(config.variants):
        try:
            build_variant_model(variant, data.input_shape, data.num_classes, 0)
        except InputError as exc:
            problems.append(f"variants[{index}].model: {exc}")
    if problems:
        raise InputError("; ".join(problems))


def _member_sample(config: ExperimentConfig, data: Dataset) -> int | None:
    sample = config.audit.member_sample
    if sample == "all":
        return None
    if sample == "balanced":
        return min(data.n_train, data.n_test)
    return int(sample)


# --- training one variant -------------------------------------------------------------------


def train_variant(config: ExperimentConfig, variant: VariantConfig, data: Dataset,
                  run_dir: Path, *, progress: bool = False, notify: Notify | None = None,
                  device: str | None = None,
                  control_set: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Train (or resume) one variant, auditing every ``epochs_per_report`` epochs.

    With ``control_set`` (x, y), a control model of the same recipe trains on it alongside,
    epoch by epoch, and every audit's split guard compares with it
    (``[audit.split_guard] control = true``)."""
    from memberscope.monitor.torch import TorchMonitorHook
    from memberscope.train.trainer import Trainer

    say = notify or (lambda _message: None)
    results_path = rundir.results_path(run_dir)
    checkpoint_path = rundir.checkpoint_path(run_dir, variant.label)
    fingerprint = config.fingerprint()
    model = build_variant_model(variant, data.input_shape, data.num_classes,
                                stream_seed(config.seed, "model", variant.label))
    input_canaries = _input_canaries(variant, data)
    x_train, y_train = (data.x_train, data.y_train) if input_canaries is None else \
        input_canaries.training_data(data.x_train, data.y_train)
    trainer = Trainer(model, x_train, y_train, variant.training, device=device,
                      progress=progress, description=variant.label)
    if checkpoint_path.exists():
        document = load_checkpoint(checkpoint_path, fingerprint=fingerprint,
                                   label=variant.label)
        trainer.load_state_dict(document["trainer"])
        if document["finished"]:
            say(f"[{variant.label}] already finished ({trainer.epoch} epochs)")
            return
        trainer.restore_loss_trace(_saved_trace(run_dir, variant.label, trainer.n))
        say(f"[{variant.label}] resuming after epoch {trainer.epoch}")
    control = None if control_set is None else _control_trainer(
        config, variant, data, run_dir, control_set, trainer.epoch, device)
    removed = drop_rows_after(results_path, variant.label, trainer.epoch)
    if removed:
        logger.info("dropped %d rows of %s written after its checkpoint", removed, variant.label)
    dp = variant.training.dp
    if dp is not None:
        say(f"[{variant.label}] DP: noise multiplier {trainer.noise_multiplier:.3f}, "
            f"clipping {dp.max_grad_norm}, sample rate {trainer.sample_rate:.5f}, "
            f"accountant {dp.accountant} at delta {dp.delta:g}")

    def record(result: AuditResult) -> None:
        _write(lambda: append_result(results_path, result), results_path, run_dir)
        if config.audit.keep_scores:
            epoch = result.rows[0].metadata["epoch"] if result.rows else trainer.epoch
            path = rundir.scores_path(run_dir, variant.label, epoch)
            _write(lambda: rundir.write_scores(run_dir, variant.label, epoch, result,
                                               member_index=hook.member_index), path, run_dir)

    hook = TorchMonitorHook(
        trainer.model, members=(data.x_train, data.y_train), nonmembers=(data.x_test, data.y_test),
        epochs_per_report=config.epochs_per_report, attacks=config.audit.attacks,
        slices=config.audit.slices, model_label=variant.label,
        member_sample=_member_sample(config, data), seed=config.seed,
        epsilon=trainer.epsilon if trainer.accountant is not None else None,
        delta=None if dp is None else dp.delta, accountant=None if dp is None else dp.accountant,
        on_result=record, batch_size=config.audit.batch_size,
        device=trainer.device, verbose=False,  # the epoch line below reports each audit
        control_model=None if control is None else control.model)
    epochs = variant.training.epochs
    control_path = rundir.control_checkpoint_path(run_dir, variant.label)
    traces_path = rundir.traces_path(run_dir, variant.label)
    traces_written = False  # by this process: the first write drops epochs after a checkpoint
    while trainer.epoch < epochs:
        stats = trainer.train_epoch()
        if control is not None:
            control.train_epoch()
        _write(functools.partial(_record_traces, trainer, variant.label, data, run_dir,
                                 append=traces_written), traces_path, run_dir)
        traces_written = True
        extra: dict[str, Any] = {}
        if hook.monitor.should_audit(stats.epoch):
            traces = _member_traces(trainer, variant.label, data)
            extra["trace_risk"] = risk_summary(traces.risk(TRACE_RISK_METHOD),
                                               method=TRACE_RISK_METHOD)
        audited = trainer.canaries is not None or input_canaries is not None
        if audited and hook.monitor.should_audit(stats.epoch):
            extra["epsilon_audit"] = _audit_canaries(trainer, input_canaries, variant.label,
                                                     run_dir)
        result = hook.on_epoch_end(stats.epoch, train_loss=stats.loss,
                                   epoch_seconds=stats.seconds,
                                   images_per_second=stats.images_per_second, **extra)
        say(_epoch_line(variant.label, stats, epochs, result))
        _write(lambda: save_checkpoint(checkpoint_path, trainer.state_dict(),
                                       fingerprint=fingerprint, label=variant.label,
                                       finished=trainer.epoch >= epochs),
               checkpoint_path, run_dir)
        if control is not None:  # after the variant's: a resume catches the control up
            _write(lambda: save_checkpoint(control_path, control.state_dict(),
                                           fingerprint=fingerprint, label=variant.label),
                   control_path, run_dir)


def _control_trainer(config: ExperimentConfig, variant: VariantConfig, data: Dataset,
                     run_dir: Path, control_set: tuple[np.ndarray, np.ndarray], epoch: int,
                     device: str | None) -> Any:
    """The variant's control model's trainer at ``epoch``: the same recipe (architecture,
    optimizer, epochs, DP without canaries) on ``control_set``, its own seeds; restored from
    its checkpoint and caught up to ``epoch`` on a resume."""
    from memberscope.train.trainer import Trainer

    seed = stream_seed(config.seed, "control", variant.label)
    dp = variant.training.dp
    settings = replace(variant.training, seed=seed,
                       dp=None if dp is None else replace(dp, canaries=None))
    model = build_variant_model(variant, data.input_shape, data.num_classes, seed)
    trainer = Trainer(model, *control_set, settings, device=device, progress=False,
                      description=f"{variant.label} (control)", record_losses=False)
    path = rundir.control_checkpoint_path(run_dir, variant.label)
    if path.exists():
        document = load_checkpoint(path, fingerprint=config.fingerprint(), label=variant.label)
        trainer.load_state_dict(document["trainer"])
    while trainer.epoch < epoch:
        trainer.train_epoch()
    return trainer


def _member_traces(trainer: Any, label: str, data: Dataset) -> LossTraces:
    """The trainer's loss traces of the training set's rows (not of canary copies appended
    after them)."""
    n = data.n_train
    return LossTraces(losses=trainer.loss_trace[:n], epochs=np.arange(1, trainer.epoch + 1),
                      labels=data.y_train, model=label)


def _record_traces(trainer: Any, label: str, data: Dataset, run_dir: Path, *,
                   append: bool) -> None:
    """Keep the members' losses of the epoch just trained in ``traces/LABEL.npz``: appended
    (only the new epoch compressed; the stored ones copied as bytes), or the whole file written
    from the trainer's trace (the first time in this process, which drops epochs a killed run
    wrote after the checkpoint it resumes from)."""
    if append:
        rundir.append_traces(run_dir, label, trainer.epoch,
                             trainer.loss_trace[:data.n_train, -1])
    else:
        rundir.write_traces(run_dir, _member_traces(trainer, label, data))


def _saved_trace(run_dir: Path, label: str, n_rows: int) -> np.ndarray | None:
    """The loss trace a killed run left, as (n_rows, epochs) for ``Trainer.restore_loss_trace``
    (rows beyond the file's, canary copies, NaN); None when there is none or it is unreadable
    (the resumed trace then has NaN for the epochs before the checkpoint)."""
    path = rundir.traces_path(run_dir, label)
    if not path.exists():
        return None
    try:
        saved = rundir.read_traces(path)
    except (OSError, ValueError) as exc:
        logger.warning("loss traces of %s not restored: %s", label, exc)
        return None
    trace = np.full((n_rows, saved.losses.shape[1]), np.nan, dtype=np.float32)
    trace[:saved.n] = saved.losses
    return trace


def _input_canaries(variant: VariantConfig, data: Dataset) -> Any:
    """The variant's black-box canaries (mislabelled training examples), or None."""
    dp = variant.training.dp
    if dp is None or dp.canaries is None or not dp.canaries.black_box:
        return None
    from memberscope.train.dp.input_canaries import plan_input_canaries

    return plan_input_canaries(data.y_train, data.num_classes, dp.canaries.m,
                               seed=dp.canaries.seed)


def _audit_canaries(trainer: Any, input_canaries: Any, label: str,
                    run_dir: Path) -> dict[str, Any]:
    """The one-run ε̂ of the canaries so far; keeps their identities, inclusion and scores in
    the run's canary file (:func:`memberscope.rundir.write_canaries`)."""
    from memberscope.train.dp.canaries import epsilon_audit

    black_box = None
    if input_canaries is not None:
        # The canaries' own rows come first in trainer.x: the training set, then the copies.
        logits = trainer.predict(trainer.x, input_canaries.index)
        black_box = rundir.BlackBoxCanaries(
            input_canaries.index, input_canaries.wrong_labels, input_canaries.included,
            input_canaries.seed, input_canaries.scores(logits))
    canaries = trainer.canaries
    white_box = None if canaries is None else rundir.WhiteBoxCanaries(
        canaries.plan.coordinates, canaries.plan.included, canaries.plan.gradient_norm,
        canaries.plan.seed, canaries.scores())
    record = epsilon_audit(canaries, delta=trainer.settings.dp.delta,
                           white_box_scores=None if white_box is None else white_box.scores,
                           black_box_scores=None if black_box is None else black_box.scores,
                           black_box_included=None if black_box is None else
                           black_box.included)
    audited = rundir.AuditedCanaries(label, trainer.epoch, white_box, black_box)
    path = rundir.canaries_path(run_dir, label)
    _write(lambda: rundir.write_canaries(run_dir, audited), path, run_dir)
    return record


def _epoch_line(label: str, stats: Any, epochs: int, result: AuditResult | None) -> str:
    line = (f"[{label}] epoch {stats.epoch}/{epochs}: loss {stats.loss:.4f}, "
            f"train acc {stats.accuracy:.4f}, {stats.seconds:.1f} s "
            f"({stats.images_per_second:,.0f} img/s)")
    if result is not None and result.rows:
        meta = result.rows[0].metadata
        summary = summarize(result)
        first = "".join(f"{s.text}; " for s in summary.leading)  # a shifted split, first
        line += (f"; audit: {first}test acc {meta['test_accuracy']:.4f}, "
                 f"{summary.headline.text}")
        if meta.get("epsilon") is not None:
            line += f", eps {meta['epsilon']:.2f}"
        one_run = meta.get("epsilon_audit")
        if one_run is not None:
            found = ", ".join(f"{kind.replace('_', '-')} {one_run[kind]:.2f}"
                              for kind in ("white_box", "black_box")
                              if one_run[kind] is not None)
            line += f" (one-run canary audit, any DP mechanism, 95% each: eps >= {found})"
        line += f", {meta['inference_seconds'] + meta['audit_seconds']:.1f} s"
    return line


# --- the whole run --------------------------------------------------------------------------


def variant_summaries(run_dir: Path, config: ExperimentConfig) -> tuple[VariantSummary, ...]:
    """Each variant's last audited epoch, read back from ``results.jsonl``, as the run's one
    summary (:func:`memberscope.summary.summarize`) has it."""
    path = rundir.results_path(run_dir)
    if not path.exists():
        return ()
    collection = load_results(path)
    run = summarize(collection) if collection.rows else None
    last: dict[Any, Group] = {} if run is None else {
        checkpoint.key[0]: checkpoint for checkpoint in run.checkpoints}
    summaries = []
    for variant in config.variants:
        checkpoint = last.get(variant.label)
        if checkpoint is None:
            continue
        meta = checkpoint.metadata
        # The variants' last audits side by side are a statement about the run: its family
        # (beyond the split where the run's guard found it shifted), each led by its own guard.
        guard = collection.split_guard(model=variant.label, epoch=checkpoint.key[1])
        final = summarize(checkpoint.rows, family=None if run is None else run.family,
                          split_guards=() if guard is None else (guard,))
        summaries.append(VariantSummary(
            label=variant.label, epoch=int(checkpoint.key[1]),
            train_accuracy=float(meta["train_accuracy"]),
            test_accuracy=float(meta["test_accuracy"]), epsilon=meta.get("epsilon"),
            max_auc=checkpoint.highest,
            worst_significant_auc=None if checkpoint.worst is None else checkpoint.worst.auc,
            n_results=len(checkpoint.rows), leakage=final.headline_text))
    return tuple(summaries)


def write_report(run_dir: Path) -> Path | None:
    """``report.html`` through ``memberscope.report.html.write_run_report`` when installed."""
    try:
        from memberscope.report.html import write_run_report
    except ImportError as exc:
        logger.info("no report.html: %s", exc)
        return None
    if not rundir.results_path(run_dir).exists():
        logger.info("no report.html: no audit ran (fewer epochs than epochs_per_report)")
        return None
    try:
        return Path(write_run_report(run_dir))
    except MissingExtraError as exc:
        logger.info("no report.html: %s", exc)
        return None


def run_experiment(config: ExperimentConfig | str | Path, run_dir: str | Path, *,
                   resume: bool = False, progress: bool = False, notify: Notify | None = None,
                   device: str | None = None) -> RunSummary:
    """Train and audit every variant of ``config``, writing ``run_dir`` as it goes.

    Parameters
    ----------
    config : ExperimentConfig or path of a TOML config
    run_dir : path
        New or empty directory; with ``resume=True`` a directory a run with the same config
        left (anything else is refused with a message naming the changed settings).
    progress : bool
        Rich progress bars per epoch on the terminal.
    notify : callable, optional
        Receives one human-readable line per epoch (the CLI prints them).

    Returns
    -------
    RunSummary
        Paths of the results and report, and each variant's last audit.
    """
    require("torch", "torch", "memberscope run")
    from memberscope._runtime import apply_threads, tune_process

    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    run_dir = Path(run_dir)
    loaded = _loaded(config)
    data, spare = _run_split(loaded, config)
    _check_models(config, data)
    controls = (control_set(config, loaded, spare, data.n_train)
                if config.audit.split_guard.control else None)
    del loaded  # the run keeps only its members, non-members and control set
    prepare_run_dir(config, run_dir, resume=resume)
    # This entry point is an edge: it tunes the process (threads, allocator) for the run
    # and gives the thread count back afterwards.
    tuning = tune_process(config.threads)
    say = notify or (lambda _message: None)
    say(f"{config.name}: {data.name}, {data.n_train} members, {data.n_test} non-members; "
        f"{len(config.variants)} variant(s); {tuning.threads} torch thread(s)")
    too_fine = [f for f in DEFAULT_FPR_TARGETS if f < 1.0 / data.n_test]
    if too_fine:
        say(f"note: with {data.n_test} non-members, TPR at FPR "
            f"{', '.join(f'{f:g}' for f in too_fine)} is stored as null (not resolvable: "
            "n_nonmembers x FPR < 1), on every slice")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowResolutionWarning)  # said once just above
            for variant in config.variants:
                train_variant(config, variant, data, run_dir, progress=progress,
                              notify=notify, device=device, control_set=controls)
    finally:
        apply_threads(tuning.previous_threads)
    report = write_report(run_dir)
    return RunSummary(run_dir=run_dir, results_path=rundir.results_path(run_dir),
                      report_path=report, variants=variant_summaries(run_dir, config))
