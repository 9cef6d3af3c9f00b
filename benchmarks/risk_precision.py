"""Precision@k of loss-trace risk against LiRA's most vulnerable members (issue 18).

Ground truth. For a target model, LiRA online (Carlini et al. 2022; memberscope's
``lira_scores`` with one global variance, its default below 64 models) with 16 reference models
of the same recipe, each example "in" for 8 of them, scores every population example on the
target's final (epoch-36) logit-scaled confidence. The *top k% most vulnerable members* are
the k% of the target's members with the highest such score.

precision@k of a ranking = |its top k% of the members ∩ the ground truth's top k%| / (k% of
the members), for k = 0.1%, 1%, 5% (5, 50 and 250 of the 5,000 members).

Rankings compared, all of the target's members:

- trace risk: a function of the member's per-epoch training losses (``_trace_candidates``);
- final loss: the trained model's loss on the member, higher = more exposed;
- LiRA with 2 (one complementary pair) and 4 (two pairs) of the same 16 reference models,
  every pair and 8 seeded pairs of pairs, global variance; sharing models with the ground
  truth flatters them;
- LiRA with 8 of the 16 (4 seeded halves): how far a ranking that shares half of its models
  with the ground truth gets;
- reliability of the ground truth itself: LiRA with 8 of the 16 against LiRA with the other 8
  (the same halves), two rankings that share the target but no reference model. With 16 the
  ground truth is less noisy than either half, but this bounds what a precision near 1 needs;
- what sharing flatters: with a 14-model truth (7 of the pairs), LiRA with the 8th pair
  (disjoint from the truth) against LiRA with a pair inside it, and the trace rankings
  against the same 14-model truth, over the 8 choices of the held-out pair.

Targets and selection. Every model of a setting (``_risk_models``) is a target in turn, its
references the 16 pair models outside its own pair. The selection targets (pair models 0 and 1
of each setting) choose the best trace function (highest mean precision@1%); every other
target (16 pair models, plus the quickstart's own model in the Fashion-MNIST settings) is a
fresh seed and split that the choice never saw, and only those are reported.

Usage: python benchmarks/risk_precision.py [--settings fmnist-2conv,fmnist-3conv,rgb32-3conv]
Writes the summaries to ``benchmarks/results/risk_precision.json`` and every record to
``benchmarks/results/cache/risk/risk_precision_records.json``.
"""

from __future__ import annotations

import argparse
import itertools
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _risk_models import CACHE, SETTINGS, TrainedSetting, load_setting
from _trace_candidates import CANDIDATES
from memberscope._seeding import stream_rng
from memberscope.attacks.reference import lira_scores
from memberscope.risk import RISK_METHODS, trace_risk
from memberscope.store import atomic_write_json

RESULTS = Path(__file__).parent / "results"
FRACTIONS = (0.001, 0.01, 0.05)
SELECTION_TARGETS = ("pair00", "pair01")
LIRA_4_SUBSETS = 8
LIRA_8_SUBSETS = 4
RELIABILITY = "LiRA, 8 models vs the other 8"
OUTSIDE_14 = "LiRA, 2 models outside a 14-model truth"
INSIDE_14 = "LiRA, 2 of a 14-model truth's models"
TRACE_VS_14 = ("trace:iqr vs a 14-model truth", "trace:std_then_fit vs a 14-model truth")
PAIRED = (RELIABILITY, OUTSIDE_14, INSIDE_14, *TRACE_VS_14)


def precision_at(scores: np.ndarray, truth: np.ndarray, fraction: float) -> float:
    """|top-k of ``scores`` ∩ top-k of ``truth``| / k with k = round(fraction · n), >= 1."""
    k = max(1, round(fraction * len(truth)))
    top = np.argsort(-scores, kind="stable")[:k]
    true_top = np.argsort(-truth, kind="stable")[:k]
    return len(np.intersect1d(top, true_top)) / k


def softplus_neg(signal: np.ndarray) -> np.ndarray:
    """The cross-entropy loss -log p_y from the logit-scaled confidence log(p_y / (1 - p_y))."""
    return np.logaddexp(0.0, -signal)


def lira(trained: TrainedSetting, target: int, references: np.ndarray,
         snapshot: int = -1) -> np.ndarray:
    """LiRA online scores (n,) of the target at ``snapshot`` with the given reference models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 models: no variance, the ranking is still LiRA's
        return lira_scores(trained.signal[target, snapshot][:, None],
                           trained.signal[references, snapshot][:, :, None],
                           trained.membership[references], online=True, variance="global")


def pairs_of(references: np.ndarray) -> list[np.ndarray]:
    """The complementary pairs among ``references`` (consecutive indices 2k+o, 2k+o+1)."""
    return [references[i:i + 2] for i in range(0, len(references), 2)]


def target_rankings(trained: TrainedSetting, name: str) -> dict[str, list[np.ndarray]]:
    """Every ranking of the target's members: name -> list of (n_members,) score arrays (one
    for deterministic rankings, one per subset for LiRA with few models); plus "truth"."""
    target = trained.index(name)
    members = trained.member_index[target]
    references = trained.references_for(name)
    pairs = pairs_of(references)
    rng = stream_rng(trained.setting.base_seed, "lira-subsets", name)
    rankings: dict[str, list[np.ndarray]] = {
        "truth": [lira(trained, target, references)[members]]}
    trace = trained.traces[target]
    for candidate, function in CANDIDATES.items():
        # What memberscope.risk offers is measured through it.
        scores = trace_risk(trace, method=candidate) if candidate in RISK_METHODS else \
            function(trace)
        rankings[f"trace:{candidate}"] = [scores]
    final_loss = softplus_neg(trained.signal[target, -1, members])
    rankings["final loss"] = [final_loss]
    rankings["final loss, lowest first"] = [-final_loss]
    rankings["LiRA, 2 reference models"] = [lira(trained, target, pair)[members]
                                            for pair in pairs]
    combos = list(itertools.combinations(range(len(pairs)), 2))
    chosen = rng.choice(len(combos), LIRA_4_SUBSETS, replace=False)
    rankings["LiRA, 4 reference models"] = [
        lira(trained, target, np.concatenate([pairs[a], pairs[b]]))[members]
        for a, b in (combos[i] for i in chosen)]
    rankings["LiRA, 8 reference models"] = []
    rankings[RELIABILITY] = []
    for _ in range(LIRA_8_SUBSETS):
        half = rng.choice(len(pairs), len(pairs) // 2, replace=False)
        other = np.setdiff1d(np.arange(len(pairs)), half)
        scores = lira(trained, target, np.concatenate([pairs[i] for i in half]))[members]
        rankings["LiRA, 8 reference models"].append(scores)
        rankings[RELIABILITY].append(np.stack([scores, lira(
            trained, target, np.concatenate([pairs[i] for i in other]))[members]]))
    # How much sharing models with the ground truth flatters LiRA with 2: a 14-model truth
    # (7 pairs) against LiRA on the 8th pair (disjoint) and on one of the 7 (shared).
    for method in (OUTSIDE_14, INSIDE_14, *TRACE_VS_14):
        rankings[method] = []
    for held_out in range(len(pairs)):
        inside = [i for i in range(len(pairs)) if i != held_out]
        truth_14 = lira(trained, target, np.concatenate([pairs[i] for i in inside]))[members]
        rankings[OUTSIDE_14].append(np.stack(
            [lira(trained, target, pairs[held_out])[members], truth_14]))
        rankings[INSIDE_14].append(np.stack(
            [lira(trained, target, pairs[inside[0]])[members], truth_14]))
        for method in TRACE_VS_14:
            rankings[method].append(np.stack(
                [rankings[method.split(" vs ")[0]][0], truth_14]))
    return rankings


def evaluate(trained: TrainedSetting, targets: list[str] | None = None) -> list[dict]:
    """One record per (target, ranking, subset): the precision at each fraction."""
    records = []
    for name in trained.names if targets is None else targets:
        rankings = target_rankings(trained, name)
        truth = rankings.pop("truth")[0]
        phase = "selection" if name in SELECTION_TARGETS else "report"
        for method, subsets in rankings.items():
            for subset, scores in enumerate(subsets):
                # The reliability row ranks by one half of the references against the other.
                ranking, against = (scores[0], scores[1]) if method in PAIRED else \
                    (scores, truth)
                records.append({"setting": trained.setting.name, "target": name,
                                "phase": phase, "method": method, "subset": subset,
                                **{f"p@{f:g}": precision_at(ranking, against, f)
                                   for f in FRACTIONS}})
    return records


def summarize(records: list[dict], phase: str) -> dict:
    """(setting, method) -> {fraction: (mean, sd, count)} over the phase's records."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        if record["phase"] == phase:
            groups[(record["setting"], record["method"])].append(record)
    summary: dict = defaultdict(dict)
    for (setting, method), rows in groups.items():
        summary[setting][method] = {
            f"p@{f:g}": {"mean": float(np.mean([r[f"p@{f:g}"] for r in rows])),
                         "sd": float(np.std([r[f"p@{f:g}"] for r in rows], ddof=1))
                         if len(rows) > 1 else 0.0,
                         "n": len(rows)} for f in FRACTIONS}
    return summary


def choose(selection: dict) -> str:
    """The trace candidate with the highest precision@1% averaged over the selection
    settings (ties: the earlier candidate)."""
    scores = {name: np.mean([selection[s][f"trace:{name}"]["p@0.01"]["mean"]
                             for s in selection]) for name in CANDIDATES}
    return max(scores, key=lambda name: scores[name])


def _print_selection(selection: dict, winner: str) -> None:
    print("selection targets (pair models 0 and 1): precision@1% of each trace candidate, "
          "by setting (" + ", ".join(selection) + ")")
    for candidate in CANDIDATES:
        values = "  ".join(f"{selection[s][f'trace:{candidate}']['p@0.01']['mean']:.2f}"
                           for s in selection)
        print(f"  {candidate:28s} {values}")
    print(f"chosen: {winner}\n")


def records_from_command_line(
        evaluate_setting: Callable[[TrainedSetting, list[str] | None], list[dict]]
) -> tuple[list[dict], bool]:
    """Parse ``--settings`` and ``--selection-only``, and evaluate the targets they name:
    (every record, whether only the selection targets were evaluated)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--selection-only", action="store_true",
                        help="evaluate the selection targets only and print the choice")
    args = parser.parse_args()
    records = []
    for name in args.settings.split(","):
        records.extend(evaluate_setting(load_setting(SETTINGS[name]),
                                        list(SELECTION_TARGETS) if args.selection_only
                                        else None))
    return records, args.selection_only


def main() -> None:
    records, selection_only = records_from_command_line(evaluate)
    selection = summarize(records, "selection")
    winner = choose(selection)
    if selection_only:
        _print_selection(selection, winner)
        return
    report = summarize(records, "report")
    shown = ["trace:iqr", "trace:std", f"trace:{winner}", "final loss", "LiRA, 2 reference models",
             "LiRA, 4 reference models", "LiRA, 8 reference models", RELIABILITY,
             *TRACE_VS_14, OUTSIDE_14, INSIDE_14]
    shown = list(dict.fromkeys(shown))
    _print_selection(selection, winner)
    for setting, methods in report.items():
        n_targets = methods["trace:iqr"]["p@0.01"]["n"]
        print(f"{setting}: {n_targets} fresh targets; precision@k, mean ± sd")
        print(f"  {'ranking':40s} " + " ".join(f"{'@' + format(f, '.1%'):>13s}"
                                                for f in FRACTIONS))
        for method in shown:
            cells = " ".join(f"{methods[method][f'p@{f:g}']['mean']:6.3f} ± "
                             f"{methods[method][f'p@{f:g}']['sd']:.3f}" for f in FRACTIONS)
            print(f"  {method:40s} {cells}")
    header = {"schema_version": 1,
              "ground_truth": "top k% of the target's members by LiRA online (global "
                              "variance) with 16 reference models, final epoch",
              "fractions": list(FRACTIONS), "selection_targets": list(SELECTION_TARGETS),
              "chosen": winner}
    atomic_write_json(RESULTS / "risk_precision.json",
                      {**header, "selection": selection, "report": report})
    # Every (target, ranking, subset) record: too long to keep in the repository.
    atomic_write_json(CACHE / "risk_precision_records.json", {**header, "records": records})


if __name__ == "__main__":
    main()
