"""``memberscope risk RUN_DIR|FILE.npz``: rank training examples by the risk their loss
traces show, estimate LiRA's TPR at low FPR where the non-members' losses are at hand, and
write both as ``risk.json``.

The input is a run directory (its ``traces/*.npz``, one ranking per model variant), one
traces file, or an audit ``.npz`` with ``loss_trace_train`` (its members, in file order).

``risk.json`` (this module owns the format), at ``schema_version`` 2::

    {"schema_version": 2, "memberscope_version": "…", "source": "runs/quickstart",
     "method": "std_then_fit", "min_entries": 2, "top": 100,
     "models": [{"model": "2 layers", "n_examples": 5000, "n_scored": 5000,
                 "epochs": [1, …, 36],
                 "summary": {"method": "std_then_fit", "top_threshold": 0.99, …},
                 "examples": [{"rank": 1, "index": 1234, "risk": 1.04, "label": 6,
                               "loss": 0.001, "entries": 36}, …],
                 "lira_tpr_estimate": {"estimate": true, "method": "gaussian",
                                       "losses_from": "scores/2-layers/epoch_0036.npz",
                                       "epoch": 36, "n_members": 5000, "n_nonmembers": 5000,
                                       "tpr_at_fpr": [{"fpr": 0.01, "tpr": 0.048,
                                                       "note": null,
                                                       "no_signal_tpr": 0.012}, …],
                                       "measured_error": "estimate/LiRA with 16 …"}}]}

``index`` is the training-set index (a run directory) or the member's position among the
file's members (an audit ``.npz``); ``loss`` is its last recorded training loss; ``entries``
how many epochs recorded it. ``lira_tpr_estimate`` (:func:`memberscope.lira_estimate.
estimate_lira_tpr`, no reference model) comes from the losses of an audit ``.npz``, or of a
run's last audit of that variant (its ``threshold`` scores, −loss); it is null for a traces
file alone, or a run whose audits kept no ``threshold`` scores. ``no_signal_tpr`` is the
estimator's level on the same losses with membership shuffled
(:func:`memberscope.lira_estimate.no_signal_tpr`): read the estimate against it. Schema 1
(before the estimate) had no ``lira_tpr_estimate``; memberscope itself reads neither version
back.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberscope.cli._table import format_table

if TYPE_CHECKING:
    import numpy as np

    from memberscope.risk import LossTraces
    from memberscope.rundir import AuditScores

RISK_FILE = "risk.json"
RISK_SCHEMA_VERSION = 2
DEFAULT_TOP = 100
ESTIMATE_FPRS = (0.01, 0.001)
LOSS_SCORES = "threshold"  # the loss-threshold attack: its score is −loss (attacks.threshold)
CAVEAT = ("A ranking, not a membership claim: these members are the ones a membership attack "
          "would most likely single out. Removing them exposes the next ones (the onion "
          "effect, Carlini et al. 2022): re-audit after removing data.")


@dataclass(frozen=True)
class AuditedLosses:
    """The losses (nats) of one model on its audited members and non-members: what the LiRA
    TPR estimate reads. ``source`` names where they came from, ``epoch`` the model's epoch
    (None when the input does not say)."""

    member_loss: np.ndarray
    nonmember_loss: np.ndarray
    source: str
    epoch: int | None


@dataclass(frozen=True)
class ModelInput:
    """One model's traces, with its audited losses or why there are none."""

    traces: LossTraces
    losses: AuditedLosses | None
    no_losses_because: str | None = None


def register(subparsers: Any) -> None:
    """Add the ``risk`` subcommand."""
    from memberscope.risk import DEFAULT_RISK_METHOD, RISK_METHODS

    parser = subparsers.add_parser(
        "risk", help="rank training examples by the risk their loss traces show",
        description="Rank members by per-example risk from the training loss recorded at each "
                    f"epoch ({DEFAULT_RISK_METHOD} by default), without reference models, and "
                    "estimate LiRA's TPR at 1% and 0.1% FPR from the members' and "
                    "non-members' losses where the input has them (an estimate, printed with "
                    "its measured error). INPUT is a run directory (`memberscope run` records "
                    "traces/), a traces/*.npz file, or an audit .npz holding loss_trace_train "
                    "(members x epochs, NaN where not recorded). Prints the most exposed "
                    "examples and writes risk.json.")
    parser.add_argument("input", type=Path, help="run directory, traces .npz or audit .npz")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"examples to list per model (default: {DEFAULT_TOP})")
    parser.add_argument("--method", default=DEFAULT_RISK_METHOD,
                        help=f"risk method, one of {', '.join(RISK_METHODS)} (default: "
                             f"{DEFAULT_RISK_METHOD}; iqr is LT-IQR, the paper's)")
    parser.add_argument("--min-entries", type=int, default=None,
                        help="examples with fewer recorded epochs get no risk (default: the "
                             "method's, 5 for iqr, 2 for the others)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory of risk.json (default: risk-<input name>)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Read the traces (and losses), rank, estimate, print and write ``risk.json``."""
    from memberscope._io import atomic_write_json
    from memberscope._version import __version__
    from memberscope.cli import EXIT_NOTHING_MEASURED
    from memberscope.errors import InputError
    from memberscope.risk import get_risk_method

    method = get_risk_method(args.method)
    if args.top < 1:
        raise InputError(f"--top must be >= 1; got {args.top}")
    min_entries = method.min_entries if args.min_entries is None else args.min_entries
    models = []
    for model in read_input(args.input):
        entry = rank_model(model.traces, method.name, min_entries, args.top)
        entry["lira_tpr_estimate"] = None if model.losses is None else \
            lira_estimate_entry(model.losses)
        if model.losses is None:
            entry["lira_tpr_estimate_missing"] = model.no_losses_because
        print(model_text(entry, method.name, min_entries))
        print(estimate_text(entry))
        models.append(entry)
    out_dir = args.out or Path(f"risk-{args.input.stem or args.input.name}")
    path = out_dir / RISK_FILE
    atomic_write_json(path, {
        "schema_version": RISK_SCHEMA_VERSION, "memberscope_version": __version__,
        "source": str(args.input), "method": method.name, "min_entries": min_entries,
        "top": args.top, "models": models})
    print(f"\n{CAVEAT}\n\nwrote {path}")
    if not any(model["n_scored"] for model in models):
        print(f"memberscope risk: error: no example has the {min_entries} recorded epochs "
              f"{method.name} needs; lower --min-entries to rank the shorter traces",
              file=sys.stderr)
        return EXIT_NOTHING_MEASURED
    return 0


def read_input(path: Path) -> list[ModelInput]:
    """The loss traces of a run directory (each variant, with its last audit's losses), a
    traces file (no losses) or an audit .npz (with its members' and non-members' losses)."""
    from memberscope import rundir
    from memberscope.errors import InputError

    if path.is_dir():
        found = rundir.run_traces(path)
        if not found:
            raise InputError(f"{path} holds no loss traces ({rundir.TRACES_DIR}/*.npz): "
                             "`memberscope run` records them while it trains")
        audits = {rundir.slug(scores.model): scores for scores in rundir.last_scores(path)}
        return [_run_model(traces, audits.get(rundir.slug(traces.model)), path)
                for traces in found]
    if not path.is_file():
        raise InputError(f"input {str(path)!r} does not exist")
    if _is_traces_file(path):
        return [ModelInput(rundir.read_traces(path), None,
                           "a traces file holds no non-members' losses: give the run "
                           "directory or an audit .npz")]
    return [_audit_file_input(path)]


def _run_model(traces: LossTraces, scores: AuditScores | None, run_dir: Path) -> ModelInput:
    """A run's variant: its traces, and the losses of its last audit where it kept them."""
    if scores is None or LOSS_SCORES not in scores.scores:
        return ModelInput(traces, None, f"the run kept no {LOSS_SCORES!r} scores (the audited "
                                        "members' and non-members' losses) for this model")
    loss = -scores.scores[LOSS_SCORES].astype("float64")
    source = str(scores.path.relative_to(run_dir)) if scores.path is not None else "scores"
    return ModelInput(traces, AuditedLosses(loss[scores.membership], loss[~scores.membership],
                                            source=source, epoch=scores.epoch))


def _is_traces_file(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    return {"schema_version.npy", "example_index.npy"} <= names


def _audit_file_input(path: Path) -> ModelInput:
    from memberscope.errors import InputError
    from memberscope.outputs import LOSS_TRACE_KEY, load_outputs_and_trace
    from memberscope.risk import LossTraces

    outputs, trace = load_outputs_and_trace(path)
    if trace is None:
        raise InputError(f"{path.name} has no {LOSS_TRACE_KEY!r} array (the members' training "
                         "loss per epoch, NaN where not recorded); save it beside the outputs "
                         "to rank members by risk")
    loss = outputs.loss_values
    return ModelInput(LossTraces.of_members(trace, outputs, model=path.stem),
                      AuditedLosses(loss[outputs.membership], loss[~outputs.membership],
                                    source=path.name, epoch=None))


def rank_model(traces: LossTraces, method: str, min_entries: int, top: int) -> dict[str, Any]:
    """One model's entry of ``risk.json``: its summary and its ``top`` most exposed
    examples."""
    import numpy as np

    from memberscope.risk import risk_summary, top_k

    risk = traces.risk(method, min_entries=min_entries)
    loss = traces.last_loss()
    entries = np.count_nonzero(~np.isnan(traces.losses), axis=1)
    index = np.asarray(traces.example_index)  # 0..n-1 when the traces name none
    examples = [{"rank": rank, "index": int(index[row]),
                 "risk": float(risk[row]),
                 "label": None if traces.labels is None else int(traces.labels[row]),
                 "loss": float(loss[row]), "entries": int(entries[row])}
                for rank, row in enumerate(top_k(risk, top), start=1)]
    return {"model": traces.model, "n_examples": traces.n,
            "n_scored": int(np.count_nonzero(~np.isnan(risk))),
            "epochs": traces.epochs.tolist(), "summary": risk_summary(risk, method=method),
            "examples": examples}


def lira_estimate_entry(losses: AuditedLosses) -> dict[str, Any]:
    """``lira_tpr_estimate`` of ``risk.json``: LiRA's TPR at :data:`ESTIMATE_FPRS` estimated
    from ``losses`` alone, labelled as an estimate with its method's measured error."""
    from memberscope.lira_estimate import estimate_lira_tpr, no_signal_tpr

    estimates = estimate_lira_tpr(losses.member_loss, losses.nonmember_loss,
                                  fprs=ESTIMATE_FPRS)
    # The estimator's own level without signal: it sits above TPR = FPR.
    no_signal = no_signal_tpr(losses.member_loss, losses.nonmember_loss, fprs=ESTIMATE_FPRS)
    return {"estimate": True, "method": estimates[0].method, "losses_from": losses.source,
            "epoch": losses.epoch, "n_members": estimates[0].n_members,
            "n_nonmembers": estimates[0].n_nonmembers,
            "tpr_at_fpr": [{"fpr": e.fpr, "tpr": e.tpr, "note": e.note,
                            "no_signal_tpr": no_signal[e.fpr]} for e in estimates],
            "measured_error": estimates[0].measured_error}


def model_text(ranking: dict[str, Any], method: str, min_entries: int) -> str:
    """The terminal lines of one model: what was scored, then the ranked examples."""
    epochs = ranking["epochs"]
    span = f"epochs {epochs[0]}-{epochs[-1]}" if epochs else "no epochs"
    head = (f"\n{ranking['model']}: {ranking['n_examples']} members, {len(epochs)} recorded "
            f"({span}); {ranking['n_scored']} with >= {min_entries} recorded epochs scored by "
            f"{method}")
    summary = ranking["summary"]
    if summary["top_threshold"] is None:
        return head
    from memberscope.risk import RISK_METHODS

    if RISK_METHODS[method].percentiles:
        head += "; risk is a percentile among the members (no chance level)"
    else:
        head += (f"; the top 1% have risk >= {summary['top_threshold']:.3g} "
                 f"(median {summary['median']:.3g})")
    rows = [(e["rank"], e["index"], e["risk"], e["label"], e["loss"], e["entries"])
            for e in ranking["examples"]]
    return head + "\n" + format_table(["rank", "index", "risk", "label", "last loss",
                                       "recorded"], rows)


def estimate_text(entry: dict[str, Any]) -> str:
    """The terminal lines of one model's LiRA TPR estimate, or why there is none."""
    estimate = entry["lira_tpr_estimate"]
    if estimate is None:
        return f"No LiRA TPR estimate: {entry['lira_tpr_estimate_missing']}."
    # Chance is TPR = FPR, and the estimator's own no-signal level sits above it.
    rates = ", ".join(f"{e['tpr']:.2%} at {e['fpr']:.1%} FPR (chance {e['fpr']:.1%}; "
                      f"{e['no_signal_tpr']:.2%} with membership shuffled)"
                      if e["tpr"] is not None else
                      f"none at {e['fpr']:.1%} FPR ({e['note']})"
                      for e in estimate["tpr_at_fpr"])
    when = "" if estimate["epoch"] is None else f" at epoch {estimate['epoch']}"
    return (f"Estimated LiRA TPR{when}: {rates}. An estimate from the losses of "
            f"{estimate['n_members']} members and {estimate['n_nonmembers']} non-members "
            f"({estimate['losses_from']}), without reference models, not a measurement; "
            f"measured error: {estimate['measured_error']}.")
