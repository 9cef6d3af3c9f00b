"""The run directory (DESIGN.md "Run directory"): its layout, and the per-example score files.

The only module that knows where things live in a run directory; the runner, the report and
the CLI go through the path helpers here::

    RUN_DIR/config.toml                     the resolved config actually used
    RUN_DIR/results.jsonl                   one line per (model, epoch, slice, attack): store.py
    RUN_DIR/scores/<slug>/epoch_NNNN.npz    per-example scores of one audit (below)
    RUN_DIR/checkpoints/<slug>.pt           trainer state for --resume (train/checkpoint.py)
    RUN_DIR/canaries/<slug>.npz             DP variants with canaries: who they are, whether
                                            each was included, their scores at the last audit
    RUN_DIR/traces/<slug>.npz               members' training loss at every epoch (below)
    RUN_DIR/report.html                     the self-contained report
    RUN_DIR/figures/<name>.png              the report's figures as files

``<slug>`` is the variant label made file-name safe (:func:`slug`); ``NNNN`` the 1-based epoch.

A score file (``.npz``, read with ``allow_pickle=False``) holds, at ``schema_version`` 2:

=================  ====================  ===============================================
``schema_version``  () int               2
``model``           () str               the variant label
``epoch``           () int               the audited epoch
``scores_<attack>`` (n,) float32         per-example score, higher = more likely member
``membership``      (n,) bool            the audited members first, then the non-members
``labels``          (n,) int             class labels, aligned with the scores
``member_index``    (n_members,) int     training-set index of each audited member
=================  ====================  ===============================================

Version 1 files (keys ``score_<attack>``, no ``model``/``epoch``) are still read: the label
then comes from the folder, the epoch from the file name.

A canary file (``canaries/<slug>.npz``, :class:`AuditedCanaries`) holds, at
``schema_version`` 2, the gradient canaries' ``coordinates``, ``included``, ``gradient_norm``,
``seed`` and ``white_box_scores`` and/or the input canaries' ``input_index``,
``input_wrong_labels``, ``input_included``, ``input_seed`` and ``black_box_scores`` (each
(m,), the scores at the last audit), with ``model`` and ``epoch``. Version 1 (the same keys, a
``schema_version`` 1 only beside gradient canaries, no ``model``) is still read.

A loss-trace file (``traces/<slug>.npz``) holds, at ``schema_version`` 1, what
:class:`memberscope.risk.LossTraces` holds, one array per recorded epoch:

=====================  ====================  ==============================================
``schema_version``      () int               1
``model``               () str               the variant label
``example_index``       (n,) int             training-set index of each member (row)
``labels``              (n,) int             class label of each member
``loss_epoch_NNNN``     (n,) float32         each member's training loss in the 1-based
                                             epoch NNNN, NaN where none was recorded
                                             (Poisson sampling); one array per epoch
=====================  ====================  ==============================================

The runner writes the file after the first epoch and appends each later epoch's array
atomically (:func:`append_traces`: the stored arrays are copied, only the new one is
compressed), before the epoch's checkpoint; a resumed run rewrites it from the epochs its
checkpoint holds. 50,000 members × 36 epochs of real training losses took 6.1 MB (raw
float32: 7.2 MB; docs/risk.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memberscope._io import atomic_append_npz, atomic_write_npz, load_npz
from memberscope.errors import InputError, SchemaError
from memberscope.results import AuditResult
from memberscope.risk import LossTraces
from memberscope.store import REPORT_FILE, RESULTS_FILE, SCORES_PREFIX

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
SCORES_DIR = "scores"
CHECKPOINTS_DIR = "checkpoints"
CANARIES_DIR = "canaries"
TRACES_DIR = "traces"
TRACES_SCHEMA_VERSION = 1
FIGURES_DIR = "figures"
SCORES_SCHEMA_VERSION = 2
CANARIES_SCHEMA_VERSION = 2
_LEGACY_SCORES_PREFIX = "score_"  # schema_version 1
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.npz")

__all__ = ["CANARIES_DIR", "CANARIES_SCHEMA_VERSION", "CHECKPOINTS_DIR", "CONFIG_FILE",
           "FIGURES_DIR", "REPORT_FILE", "RESULTS_FILE", "SCORES_DIR", "SCORES_SCHEMA_VERSION",
           "TRACES_DIR", "TRACES_SCHEMA_VERSION", "AuditScores", "AuditedCanaries",
           "BlackBoxCanaries", "WhiteBoxCanaries", "append_traces", "canaries_path",
           "checkpoint_path", "config_path", "figure_path", "is_run_dir", "last_scores",
           "read_canaries", "read_scores", "read_traces", "report_path", "results_path",
           "run_traces", "scores_path", "slug", "traces_path", "write_canaries",
           "write_scores", "write_traces"]


# --- paths -------------------------------------------------------------------------------


def slug(label: str) -> str:
    """A file-name-safe form of a variant label ("3 layers, DP-Adam" -> "3_layers_DP-Adam")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def config_path(run_dir: str | Path) -> Path:
    """``run_dir/config.toml``."""
    return Path(run_dir) / CONFIG_FILE


def results_path(run_dir: str | Path) -> Path:
    """``run_dir/results.jsonl``."""
    return Path(run_dir) / RESULTS_FILE


def checkpoint_path(run_dir: str | Path, label: str) -> Path:
    """``run_dir/checkpoints/<slug>.pt`` of the variant ``label``."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"{slug(label)}.pt"


def control_checkpoint_path(run_dir: str | Path, label: str) -> Path:
    """``run_dir/checkpoints/<slug>.control.pt``: the control model of the variant ``label``
    (``[audit.split_guard] control = true``)."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"{slug(label)}.control.pt"


def canaries_path(run_dir: str | Path, label: str) -> Path:
    """``run_dir/canaries/<slug>.npz`` of the DP variant ``label`` audited with canaries."""
    return Path(run_dir) / CANARIES_DIR / f"{slug(label)}.npz"


def scores_path(run_dir: str | Path, label: str, epoch: int) -> Path:
    """``run_dir/scores/<slug>/epoch_NNNN.npz`` of the variant ``label`` at ``epoch``."""
    return Path(run_dir) / SCORES_DIR / slug(label) / f"epoch_{int(epoch):04d}.npz"


def traces_path(run_dir: str | Path, label: str) -> Path:
    """``run_dir/traces/<slug>.npz`` of the variant ``label``."""
    return Path(run_dir) / TRACES_DIR / f"{slug(label)}.npz"


def report_path(run_dir: str | Path) -> Path:
    """``run_dir/report.html``."""
    return Path(run_dir) / REPORT_FILE


def figure_path(run_dir: str | Path, name: str) -> Path:
    """``run_dir/figures/<name>.png``."""
    return Path(run_dir) / FIGURES_DIR / f"{name}.png"


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding ``results.jsonl``."""
    return Path(path).is_dir() and results_path(path).is_file()


# --- score files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditScores:
    """The per-example scores of one audit of one variant.

    ``scores`` maps attack -> (n,) scores aligned with ``membership`` (n,) bool and
    ``labels`` (n,); ``member_index`` (n_members,) maps the i-th audited member to its
    training-set index (None when unknown).
    """

    model: str
    epoch: int
    scores: Mapping[str, np.ndarray]
    membership: np.ndarray
    labels: np.ndarray | None = None
    member_index: np.ndarray | None = None
    path: Path | None = field(default=None, compare=False)

    def training_index(self, position: int) -> int | None:
        """The training-set index of the audited example at ``position`` (None for a
        non-member or when the member index was not kept)."""
        if not self.membership[position]:
            return None
        member_position = int(np.count_nonzero(self.membership[:position]))
        if self.member_index is None or member_position >= len(self.member_index):
            return None
        return int(self.member_index[member_position])


def write_scores(run_dir: str | Path, label: str, epoch: int, result: AuditResult, *,
                 member_index: np.ndarray | None = None) -> Path:
    """Write ``result``'s per-example scores as ``scores/<slug>/epoch_NNNN.npz`` (atomically).

    Returns the path written.
    """
    path = scores_path(run_dir, label, epoch)
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.asarray(SCORES_SCHEMA_VERSION),
        "model": np.asarray(str(label)),
        "epoch": np.asarray(int(epoch)),
        **{f"{SCORES_PREFIX}{attack}": np.asarray(values, dtype=np.float32)
           for attack, values in result.scores.items()},
    }
    if result.membership is not None:
        arrays["membership"] = np.asarray(result.membership, dtype=bool)
    if result.labels is not None:
        arrays["labels"] = np.asarray(result.labels)
    if member_index is not None:
        arrays["member_index"] = np.asarray(member_index)
    atomic_write_npz(path, arrays)
    return path


def read_scores(path: str | Path) -> AuditScores:
    """Read one score file (schema_version 1 or 2), never unpickling.

    Raises
    ------
    SchemaError
        Another schema version, no ``membership``, or scores not aligned with it.
    """
    path = Path(path)
    arrays, version = _read_versioned(path, "score files", SCORES_SCHEMA_VERSION,
                                      unversioned=None)
    prefix = SCORES_PREFIX if version == SCORES_SCHEMA_VERSION else _LEGACY_SCORES_PREFIX
    if "membership" not in arrays:
        raise SchemaError(f"{path} has no 'membership' array")
    membership = arrays["membership"].astype(bool)
    scores = {key.removeprefix(prefix): value for key, value in arrays.items()
              if key.startswith(prefix)}
    for attack, values in scores.items():
        if values.shape != membership.shape:
            raise SchemaError(f"{path}: {prefix}{attack} has shape {values.shape}; expected "
                              f"{membership.shape} like membership")
    model = str(arrays["model"]) if "model" in arrays else path.parent.name
    epoch = int(arrays["epoch"]) if "epoch" in arrays else _file_epoch(path)
    return AuditScores(model=model, epoch=epoch, scores=scores, membership=membership,
                       labels=arrays.get("labels"), member_index=arrays.get("member_index"),
                       path=path)


def _read_versioned(path: Path, what: str, current: int,
                    unversioned: int | None) -> tuple[dict[str, np.ndarray], int]:
    """The arrays of ``path`` and its schema version (1 or ``current``; a file without one
    is version ``unversioned``, or refused when that is None), never unpickling."""
    try:
        arrays = load_npz(path)
    except ValueError as exc:
        raise SchemaError(f"{path} is not a plain-array .npz: {exc}") from exc
    stored = arrays.get("schema_version")
    version = unversioned if stored is None else (
        int(stored) if stored.shape == () and stored.dtype.kind in "iu" else None)
    if version not in (1, current):
        readable = " and ".join(str(v) for v in sorted({1, current}))
        raise SchemaError(f"{path} has schema_version "
                          f"{None if stored is None else stored.tolist()!r}; this memberscope "
                          f"reads {what} of schema_version {readable}")
    return arrays, int(version)


def _file_epoch(path: Path) -> int:
    match = _EPOCH_FILE.fullmatch(path.name)
    if match is None:
        raise SchemaError(f"{path} is not named epoch_NNNN.npz")
    return int(match.group(1))


def last_scores(run_dir: str | Path,
                audits: Collection[tuple[str, int]] | None = None) -> list[AuditScores]:
    """Each variant's score file of its last audited epoch, sorted by model label.

    Parameters
    ----------
    run_dir : path
        The run directory.
    audits : collection of (model label, epoch), optional
        Only audits listed here count (e.g. those of the results being reported), so scores
        never describe an epoch the results do not hold.

    A file that cannot be read is logged and skipped: the report still shows the rest.
    """
    folder = Path(run_dir) / SCORES_DIR
    if not folder.is_dir():
        return []
    wanted = None if audits is None else {(slug(m), int(e)) for m, e in audits}
    found = []
    for variant in sorted(p for p in folder.iterdir() if p.is_dir()):
        epochs = sorted(
            (int(m.group(1)), p) for p in variant.glob("epoch_*.npz")
            if (m := _EPOCH_FILE.fullmatch(p.name))
            and (wanted is None or (variant.name, int(m.group(1))) in wanted))
        if not epochs:
            continue
        try:
            found.append(read_scores(epochs[-1][1]))
        except (OSError, ValueError) as exc:
            logger.warning("skipping %s: %s", epochs[-1][1], exc)
    return sorted(found, key=lambda s: s.model)


# --- canary files --------------------------------------------------------------------------


@dataclass(frozen=True)
class WhiteBoxCanaries:
    """Gradient canaries: ``coordinates`` (m,) int in the flattened trainable parameters,
    ``included`` (m,) bool, each one's gradient norm G before clipping, the plan's ``seed``,
    and ``scores`` (m,) at the last audit (higher = more likely included)."""

    coordinates: np.ndarray
    included: np.ndarray
    gradient_norm: float
    seed: int
    scores: np.ndarray


@dataclass(frozen=True)
class BlackBoxCanaries:
    """Input canaries: training rows ``index`` (m,) trained with ``wrong_labels`` (m,) where
    ``included`` (m,), the plan's ``seed``, and ``scores`` (m,) at the last audit."""

    index: np.ndarray
    wrong_labels: np.ndarray
    included: np.ndarray
    seed: int
    scores: np.ndarray


@dataclass(frozen=True)
class AuditedCanaries:
    """Who a DP variant's canaries are, whether each was included, and their scores at the
    variant's last audited ``epoch``: what the one-run ε̂ of its rows was computed from."""

    model: str
    epoch: int
    white_box: WhiteBoxCanaries | None = None
    black_box: BlackBoxCanaries | None = None


_WHITE_BOX_KEYS = {"coordinates": "coordinates", "included": "included",
                   "gradient_norm": "gradient_norm", "seed": "seed", "scores": "white_box_scores"}
_BLACK_BOX_KEYS = {"index": "input_index", "wrong_labels": "input_wrong_labels",
                   "included": "input_included", "seed": "input_seed",
                   "scores": "black_box_scores"}


def write_canaries(run_dir: str | Path, canaries: AuditedCanaries) -> Path:
    """Write ``canaries/<slug>.npz`` of ``canaries.model`` (atomically); returns its path."""
    path = canaries_path(run_dir, canaries.model)
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.asarray(CANARIES_SCHEMA_VERSION),
        "model": np.asarray(str(canaries.model)), "epoch": np.asarray(int(canaries.epoch))}
    for part, keys in ((canaries.white_box, _WHITE_BOX_KEYS),
                       (canaries.black_box, _BLACK_BOX_KEYS)):
        if part is not None:
            arrays.update({key: np.asarray(getattr(part, name)) for name, key in keys.items()})
    atomic_write_npz(path, arrays)
    return path


def read_canaries(path: str | Path) -> AuditedCanaries:
    """Read one canary file (schema_version 1 or 2), never unpickling.

    Raises
    ------
    SchemaError
        Another schema version, or a part whose arrays are missing or not all (m,).
    """
    path = Path(path)
    # Version 1 wrote a schema_version only beside gradient canaries.
    arrays, _ = _read_versioned(path, "canary files", CANARIES_SCHEMA_VERSION, unversioned=1)
    if "epoch" not in arrays:
        raise SchemaError(f"{path} has no 'epoch' array")
    white_box = _canary_part(arrays, _WHITE_BOX_KEYS, path)
    black_box = _canary_part(arrays, _BLACK_BOX_KEYS, path)
    return AuditedCanaries(
        model=str(arrays["model"]) if "model" in arrays else path.stem,
        epoch=int(arrays["epoch"]),
        white_box=None if white_box is None else WhiteBoxCanaries(
            white_box["coordinates"], white_box["included"].astype(bool),
            float(white_box["gradient_norm"]), int(white_box["seed"]), white_box["scores"]),
        black_box=None if black_box is None else BlackBoxCanaries(
            black_box["index"], black_box["wrong_labels"], black_box["included"].astype(bool),
            int(black_box["seed"]), black_box["scores"]))


def _canary_part(arrays: Mapping[str, np.ndarray], keys: Mapping[str, str],
                 path: Path) -> dict[str, np.ndarray] | None:
    """{field: array} of one kind of canaries, None when the file has none of its keys."""
    present = {name: arrays[key] for name, key in keys.items() if key in arrays}
    if not present:
        return None
    missing = [key for name, key in keys.items() if name not in present]
    if missing:
        raise SchemaError(f"{path} lacks {', '.join(missing)}")
    shapes = {present[name].shape for name in keys if name not in ("gradient_norm", "seed")}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise SchemaError(f"{path}: {', '.join(keys.values())} must be (m,) arrays of one m; "
                          f"got shapes {sorted(shapes)}")
    return present


# --- loss-trace files ----------------------------------------------------------------------


_TRACE_EPOCH_KEY = re.compile(r"loss_epoch_(\d+)")


def _epoch_key(epoch: int) -> str:
    return f"loss_epoch_{int(epoch):04d}"


def write_traces(run_dir: str | Path, traces: LossTraces) -> Path:
    """Write ``traces`` as ``traces/<slug of traces.model>.npz`` (atomically, replacing the
    file); returns the path."""
    path = traces_path(run_dir, traces.model)
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.asarray(TRACES_SCHEMA_VERSION),
        "model": np.asarray(traces.model),
        "example_index": np.asarray(traces.example_index),
        **{_epoch_key(epoch): np.asarray(traces.losses[:, column], dtype=np.float32)
           for column, epoch in enumerate(traces.epochs)},
    }
    if traces.labels is not None:
        arrays["labels"] = np.asarray(traces.labels)
    atomic_write_npz(path, arrays)
    return path


def append_traces(run_dir: str | Path, label: str, epoch: int, losses: np.ndarray) -> Path:
    """Add the losses (n,) of a later ``epoch`` to the variant's traces file (atomically; the
    file must exist, from :func:`write_traces`, and not yet hold that epoch); returns its
    path."""
    path = traces_path(run_dir, label)
    atomic_append_npz(path, {_epoch_key(epoch): np.asarray(losses, dtype=np.float32)})
    return path


def read_traces(path: str | Path) -> LossTraces:
    """Read one loss-trace file, never unpickling.

    Raises
    ------
    SchemaError
        Not a plain-array ``.npz``, another schema version, or arrays that do not fit
        together (the message names the array).
    """
    path = Path(path)
    arrays, _ = _read_versioned(path, "loss-trace files", TRACES_SCHEMA_VERSION,
                                unversioned=None)
    if "example_index" not in arrays:
        raise SchemaError(f"{path} has no 'example_index' array")
    n = len(arrays["example_index"])
    columns = sorted((int(match.group(1)), array) for key, array in arrays.items()
                     if (match := _TRACE_EPOCH_KEY.fullmatch(key)))
    for epoch, column in columns:
        if column.shape != (n,):
            raise SchemaError(f"{path}: {_epoch_key(epoch)} has shape {column.shape}; "
                              f"expected ({n},) like example_index")
    losses = np.stack([column for _, column in columns], axis=1) if columns else \
        np.zeros((n, 0), dtype=np.float32)
    try:
        return LossTraces(losses=losses, epochs=np.array([e for e, _ in columns], np.int64),
                          example_index=arrays["example_index"], labels=arrays.get("labels"),
                          model=str(arrays["model"]) if "model" in arrays else path.stem)
    except InputError as exc:
        raise SchemaError(f"{path}: {exc}") from exc


def run_traces(run_dir: str | Path) -> list[LossTraces]:
    """Every variant's loss traces in ``run_dir``, sorted by model label (empty when the run
    recorded none). A file that cannot be read is logged and skipped."""
    folder = Path(run_dir) / TRACES_DIR
    found = []
    for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        try:
            found.append(read_traces(path))
        except (OSError, ValueError) as exc:
            logger.warning("skipping %s: %s", path, exc)
    return sorted(found, key=lambda traces: traces.model)
