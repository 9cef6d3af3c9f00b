"""``memberscope risk RUN_DIR|FILE.npz``: rank training examples by the risk their loss
traces show, and write the ranking as ``risk.json``.

The input is a run directory (its ``traces/*.npz``, one ranking per model variant), one
traces file, or an audit ``.npz`` with ``loss_trace_train`` (its members, in file order).

``risk.json`` (this module owns the format), at ``schema_version`` 1::

    {"schema_version": 1, "memberscope_version": "…", "source": "runs/quickstart",
     "method": "iqr", "min_entries": 5, "top": 100,
     "models": [{"model": "2 layers", "n_examples": 5000, "n_scored": 5000,
                 "epochs": [1, …, 36],
                 "summary": {"method": "iqr", "top_threshold": 0.9, …},
                 "examples": [{"rank": 1, "index": 1234, "risk": 1.8, "label": 6,
                               "loss": 0.001, "entries": 36}, …]}]}

``index`` is the training-set index (a run directory) or the member's position among the
file's members (an audit ``.npz``); ``loss`` is its last recorded training loss; ``entries``
how many epochs recorded it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberscope.cli._table import format_table

if TYPE_CHECKING:
    from memberscope.risk import LossTraces

RISK_FILE = "risk.json"
RISK_SCHEMA_VERSION = 1
DEFAULT_TOP = 100
CAVEAT = ("A ranking, not a membership claim: these members are the ones a membership attack "
          "would most likely single out. Removing them exposes the next ones (the onion "
          "effect, Carlini et al. 2022): re-audit after removing data.")


def register(subparsers: Any) -> None:
    """Add the ``risk`` subcommand."""
    parser = subparsers.add_parser(
        "risk", help="rank training examples by the risk their loss traces show",
        description="Rank members by per-example risk from the training loss recorded at each "
                    "epoch (LT-IQR by default), without reference models. INPUT is a run "
                    "directory (`memberscope run` records traces/), a traces/*.npz file, or "
                    "an audit .npz holding loss_trace_train (members x epochs, NaN where not "
                    "recorded). Prints the most exposed examples and writes risk.json.")
    parser.add_argument("input", type=Path, help="run directory, traces .npz or audit .npz")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"examples to list per model (default: {DEFAULT_TOP})")
    parser.add_argument("--method", default="iqr", help="risk method (default: iqr)")
    parser.add_argument("--min-entries", type=int, default=None,
                        help="examples with fewer recorded epochs get no risk (default: the "
                             "method's, 5 for iqr)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory of risk.json (default: risk-<input name>)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Read the traces, rank, print and write ``risk.json``."""
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
    for traces in read_input(args.input):
        ranking = rank_model(traces, method.name, min_entries, args.top)
        print(model_text(ranking, method.name, min_entries))
        models.append(ranking)
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


def read_input(path: Path) -> list[LossTraces]:
    """The loss traces of a run directory (each variant), a traces file or an audit .npz."""
    from memberscope import rundir
    from memberscope.errors import InputError

    if path.is_dir():
        found = rundir.run_traces(path)
        if not found:
            raise InputError(f"{path} holds no loss traces ({rundir.TRACES_DIR}/*.npz): "
                             "`memberscope run` records them while it trains")
        return found
    if not path.is_file():
        raise InputError(f"input {str(path)!r} does not exist")
    if _is_traces_file(path):
        return [rundir.read_traces(path)]
    return [_audit_file_traces(path)]


def _is_traces_file(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    return {"schema_version.npy", "example_index.npy"} <= names


def _audit_file_traces(path: Path) -> LossTraces:
    from memberscope.errors import InputError
    from memberscope.outputs import LOSS_TRACE_KEY, load_outputs_and_trace
    from memberscope.risk import LossTraces

    outputs, trace = load_outputs_and_trace(path)
    if trace is None:
        raise InputError(f"{path.name} has no {LOSS_TRACE_KEY!r} array (the members' training "
                         "loss per epoch, NaN where not recorded); save it beside the outputs "
                         "to rank members by risk")
    return LossTraces.of_members(trace, outputs, model=path.stem)


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
    head += (f"; the top 1% have risk >= {summary['top_threshold']:.3g} "
             f"(median {summary['median']:.3g})")
    rows = [(e["rank"], e["index"], e["risk"], e["label"], e["loss"], e["entries"])
            for e in ranking["examples"]]
    return head + "\n" + format_table(["rank", "index", "risk", "label", "last loss",
                                       "recorded"], rows)
