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

A loss-trace file (``.npz``, rewritten atomically after every epoch, before the checkpoint)
holds, at ``schema_version`` 1, what :class:`memberscope.risk.LossTraces` holds:

=================  ==========================  ==========================================
``schema_version``  () int                     1
``model``           () str                     the variant label
``loss_trace``      (n, n_epochs) float32      each member's training loss per epoch, NaN
                                               where none was recorded (Poisson sampling)
``epochs``          (n_epochs,) int            1-based epoch of each column
``example_index``   (n,) int                   training-set index of each row
``labels``          (n,) int                   class label of each row
=================  ==========================  ==========================================

Stored compressed: 50,000 members × 36 epochs of real training losses take under the 7.2 MB
of the raw float32 values (see the README for the measured size).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memberscope._io import atomic_write_npz, load_npz
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
_LEGACY_SCORES_PREFIX = "score_"  # schema_version 1
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.npz")

__all__ = ["CANARIES_DIR", "CHECKPOINTS_DIR", "CONFIG_FILE", "FIGURES_DIR", "REPORT_FILE",
           "RESULTS_FILE", "SCORES_DIR", "SCORES_SCHEMA_VERSION", "TRACES_DIR",
           "TRACES_SCHEMA_VERSION", "AuditScores", "canaries_path", "checkpoint_path",
           "config_path", "figure_path", "is_run_dir", "last_scores", "read_scores",
           "read_traces", "report_path", "results_path", "run_traces", "scores_path", "slug",
           "traces_path", "write_scores", "write_traces"]


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
    try:
        arrays = load_npz(path)
    except ValueError as exc:
        raise SchemaError(f"{path} is not a plain-array .npz: {exc}") from exc
    version = arrays.get("schema_version")
    if version is None or version.shape != () or int(version) not in (1, SCORES_SCHEMA_VERSION):
        raise SchemaError(f"{path} has schema_version "
                          f"{None if version is None else version.tolist()!r}; this memberscope "
                          f"reads score files of schema_version 1 and {SCORES_SCHEMA_VERSION}")
    prefix = SCORES_PREFIX if int(version) == SCORES_SCHEMA_VERSION else _LEGACY_SCORES_PREFIX
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


# --- loss-trace files ----------------------------------------------------------------------


def write_traces(run_dir: str | Path, traces: LossTraces) -> Path:
    """Write ``traces`` as ``traces/<slug of traces.model>.npz`` (atomically); returns the
    path."""
    path = traces_path(run_dir, traces.model)
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.asarray(TRACES_SCHEMA_VERSION),
        "model": np.asarray(traces.model),
        "loss_trace": np.asarray(traces.losses, dtype=np.float32),
        "epochs": np.asarray(traces.epochs),
        "example_index": np.asarray(traces.example_index),
    }
    if traces.labels is not None:
        arrays["labels"] = np.asarray(traces.labels)
    atomic_write_npz(path, arrays)
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
    try:
        arrays = load_npz(path)
    except ValueError as exc:
        raise SchemaError(f"{path} is not a plain-array .npz: {exc}") from exc
    version = arrays.get("schema_version")
    if version is None or version.shape != () or int(version) != TRACES_SCHEMA_VERSION:
        raise SchemaError(f"{path} has schema_version "
                          f"{None if version is None else version.tolist()!r}; this memberscope "
                          f"reads loss-trace files of schema_version {TRACES_SCHEMA_VERSION}")
    missing = [key for key in ("loss_trace", "epochs", "example_index") if key not in arrays]
    if missing:
        raise SchemaError(f"{path} has no {', '.join(repr(key) for key in missing)} array")
    try:
        return LossTraces(losses=arrays["loss_trace"], epochs=arrays["epochs"],
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
