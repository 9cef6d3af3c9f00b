"""Every metric of a result row, defined once, and the one parser of metric names.

A :class:`Metric` is one scalar a row holds: its key (``auc``, ``tpr@0.01``, …), title,
column header, chance level and direction. A :class:`Definition` is the text of one field of
``result.json`` (``auc``, ``tpr_at_fpr``, ``epsilon_lower_bound``, ``p_value``, …): a plain
explanation and the contract's definition. Rows (``AuditRow.metric``), chance bands, plots,
CLI and report headers, the report's glossary and the README's "Definitions (the contract)"
table all read them from here (a test checks the README table against :func:`contract_table`
and the rendered glossary).

Metric names: ``auc``, ``advantage``, ``ppv``, ``epsilon_confident``, ``epsilon_point``, and
``tpr@F`` for the TPR at FPR F (0 < F < 1, e.g. ``tpr@0.01``). :func:`parse_metric` is the
only code that reads a name; an unknown one is an
:class:`~memberscope.errors.UnknownNameError` listing the valid names with a did-you-mean.

>>> parse_metric("tpr@0.001").title
'TPR at 0.1% FPR'
>>> parse_metric("aucc")  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
memberscope.errors.UnknownNameError: unknown metric 'aucc' (did you mean 'auc'?); valid: ...
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from memberscope.errors import InputError, UnknownNameError

__all__ = ["CONTRACT", "GLOSSARY", "METRIC_NAMES", "SCALAR_METRICS", "Definition", "Metric",
           "contract_table", "parse_metric", "parse_metrics", "tpr_metric"]


@dataclass(frozen=True)
class Definition:
    """The text of one field of a result row.

    ``field`` is its name in ``result.json``; ``term`` the glossary's name for it;
    ``explanation`` says in plain words what it tells a reader; ``text`` is the contract's
    definition (the README table and the glossary show exactly this). Text between backticks
    is code.
    """

    field: str
    term: str
    explanation: str
    text: str


AUC_DEFINITION = Definition(
    "auc", "AUC",
    "How well the attack's score separates training examples (members) from unseen ones "
    "(non-members). 0.5 is guessing; 1.0 means every member scores above every non-member.",
    "area under the ROC curve, ties counting one half (the probability that a random member "
    "outscores a random non-member)")
ADVANTAGE_DEFINITION = Definition(
    "advantage", "Advantage",
    "How much better than a coin flip the attacker does at its best threshold: 0 is no "
    "better, 1 is perfect.",
    "max over thresholds of TPR − FPR, in our score direction (≥ 0: an attack worse than "
    "chance has advantage 0, where TF Privacy takes the absolute difference)")
PPV_DEFINITION = Definition(
    "ppv", "PPV",
    "When the attack says 'member', how often it is demonstrably right at its best threshold, "
    "accounting for how many members and non-members there are.",
    "the precision the attack demonstrably reaches: a lower confidence bound on TP / (TP + FP) "
    "that holds at the grid's thresholds at once with 99% confidence: Clopper-Pearson bounds "
    "at the thresholds admitting at most k predicted members, k on a fixed grid 1, 2, 3, 5, "
    "8, … (×1.5, up to n: G points), each at level 0.01/G (Bonferroni), the largest of them. "
    "One lucky top-scored member gives 0.01/G (0.0005 at 6,000 examples), not 1.0; on "
    "no-signal data it exceeded the prior 1/(1+r) (r = non-members/members) in 1, 1 and 9 "
    "of 3,000 runs at 30, 300 and 3,000 per side, and never the prior + 0.1")
TPR_DEFINITION = Definition(
    "tpr_at_fpr", "TPR at x% FPR",
    "The share of members the attack finds while wrongly flagging at most x% of non-members. "
    "Low FPR is what matters: an attack that confidently identifies even a few training "
    "examples is a real privacy risk even when its AUC is modest.",
    "for each target f (0.1%, 1%, 10% by default): the largest TPR with FPR ≤ f on the full "
    "ROC curve, only where n_nonmembers · f ≥ 1; otherwise `null`, with a row `notes` entry "
    "saying why")
P_VALUE_DEFINITION = Definition(
    "p_value", "p-value",
    "How surprising the attack's success would be if the model leaked nothing: small means "
    "the result is unlikely to be chance.",
    "one-sided test of H0 \"the scores carry no membership information\": Mann-Whitney U "
    "(exact for small slices without ties, else normal with tie correction) where scores are "
    "exchangeable under H0 (threshold attacks, LiRA, RMIA); for trained attacks one "
    "Mann-Whitney test per cross-validation fold (each fold scored by one model that never "
    "saw it), combined by Bonferroni (k × the smallest)")
SIGNIFICANT_DEFINITION = Definition(
    "significant", "Significant",
    "Whether the result is distinguishable from chance after accounting for how many results "
    "were tested: only significant results make a headline.",
    "`p_value` after Holm's family-wise correction over all rows of one `audit` call at "
    "α = 0.05 (`audit(..., alpha=0.05, correction=\"holm\")`; `\"bonferroni\"` also "
    "accepted): on a no-signal audit, the chance that any row is significant is ≤ α. A "
    "statement about several audits (a run's worst result, \"at any epoch\", which variants "
    "leak, the suggested checkpoint) recomputes the verdicts over all rows of all of them "
    "(`memberscope.results.run_family`); each row keeps its audit's own")
EPSILON_DEFINITION = Definition(
    "epsilon_lower_bound", "ε lower bound",
    "A floor on the differential-privacy ε this model can have, proven by the attack. Higher "
    "means more leakage; 0 means the attack proves nothing.",
    "ε ≥ max(ln((TPR_lo − δ)/FPR_hi), ln((TNR_lo − δ)/FNR_hi)) with Clopper-Pearson bounds "
    "at confidence 1−α; `confident`: a valid (1−α) lower bound — the threshold is chosen on "
    "one seeded half, the bounds computed on the other; `point`: the plug-in ε at the best "
    "threshold")
ACCOUNTANT_EPSILON_DEFINITION = Definition(
    "metadata.epsilon", "Accountant ε",
    "Under DP training: the privacy guarantee the training algorithm promises (with its δ). "
    "The empirical lower bound should stay below it.",
    "ε of (ε, δ)-DP spent so far, from the privacy accountant (RDP or PRV) of "
    "DP-SGD/DP-Adam")

SPLIT_GUARD_DEFINITION = Definition(
    "split_guard", "Split guard",
    "Whether members and non-members differ before the model sees them (another source, "
    "date, crop or class balance). Then every attack beats chance without any memorisation: "
    "such a split cannot show memorisation, and only leakage beyond the split counts.",
    "once per audit: `verdict` `shifted` when the `blind` attack (a classifier on the inputs "
    "and labels, never the model) or the control check (the loss of a model that saw neither "
    "side: a control model, or the reference models that left each example out) on the entire "
    "dataset is significant at α after Holm over those two; `same-distribution` when one ran "
    "and neither is; `not checked` when neither could run; `blind_auc`, `blind_p_value`, "
    "`control_auc`, `control_p_value` (`null` where not run)")
BEYOND_SPLIT_P_VALUE_DEFINITION = Definition(
    "beyond_split_p_value", "Beyond-split p-value",
    "How surprising it would be, if the model had memorised nothing, that the attack "
    "separates members from non-members this much better than the split alone does.",
    "one-sided paired test, on the slice's examples, of H0 \"AUC(attack) ≤ AUC(bar)\" "
    "against every bar the split guard offers, the largest p-value counting: the same attack "
    "on a control model (and, for trained attacks, the control's loss), else the reference "
    "models' mean signal on each example over those that did not train on it; the "
    "`blind` attack's score; and chance (the row's own `p_value`). "
    "DeLong's test on correlated AUCs with a Student-t tail (Welch df), per cross-validation "
    "fold with Bonferroni for trained attacks; `null` where no guard ran and on the guard's "
    "own rows")
BEYOND_SPLIT_SIGNIFICANT_DEFINITION = Definition(
    "beyond_split_significant", "Beyond split",
    "Whether the attack beats what the split alone explains, after accounting for how many "
    "results were tested: where the split guard says `shifted`, only these results count as "
    "leakage.",
    "`beyond_split_p_value` after the audit's family-wise correction (Holm by default) over "
    "the rows that have one, at the audit's α; `null` where no guard ran")

#: The fields of a result row, in the order of the README's "Definitions (the contract)".
CONTRACT: tuple[Definition, ...] = (
    AUC_DEFINITION, ADVANTAGE_DEFINITION, PPV_DEFINITION, TPR_DEFINITION, P_VALUE_DEFINITION,
    SIGNIFICANT_DEFINITION, EPSILON_DEFINITION, SPLIT_GUARD_DEFINITION,
    BEYOND_SPLIT_P_VALUE_DEFINITION, BEYOND_SPLIT_SIGNIFICANT_DEFINITION)
#: What the report's glossary explains: the contract, then the accountant's ε of DP runs.
GLOSSARY: tuple[Definition, ...] = (*CONTRACT, ACCOUNTANT_EPSILON_DEFINITION)


@dataclass(frozen=True)
class Metric:
    """One scalar metric of a result row.

    ``key`` is its name (what :func:`parse_metric` reads and ``AuditRow.metric`` takes);
    ``title`` names it in figures and sentences, ``header`` in table columns. ``chance`` is
    the value an attack without membership signal centres on, where the metric has a chance
    band (AUC 0.5, advantage 0, TPR at FPR F: F), else None. ``higher_is_leakage``: every
    metric grows with leakage, so the worst row is the one with the highest value.
    ``definition`` is the text of the row field that holds it, ``attribute`` the path to its
    value in an ``AuditRow`` (``("epsilon_lower_bound", "confident")``); for ``tpr@F``,
    ``fpr`` is F and the value is the entry of ``tpr_at_fpr`` at F.
    """

    key: str
    title: str
    header: str
    definition: Definition
    attribute: tuple[str, ...]
    chance: float | None = None
    fpr: float | None = None
    higher_is_leakage: bool = True


AUC = Metric("auc", "attack AUC", "AUC", AUC_DEFINITION, ("auc",), chance=0.5)
ADVANTAGE = Metric("advantage", "attacker advantage", "advantage", ADVANTAGE_DEFINITION,
                   ("advantage",), chance=0.0)
PPV = Metric("ppv", "positive predictive value", "PPV", PPV_DEFINITION, ("ppv",))
EPSILON_CONFIDENT = Metric("epsilon_confident", "empirical ε lower bound", "ε ≥ (conf.)",
                           EPSILON_DEFINITION, ("epsilon_lower_bound", "confident"))
EPSILON_POINT = Metric("epsilon_point", "empirical ε (point estimate)", "ε (point)",
                       EPSILON_DEFINITION, ("epsilon_lower_bound", "point"))
#: The metrics besides ``tpr@F``, one value per row each.
SCALAR_METRICS: tuple[Metric, ...] = (AUC, ADVANTAGE, PPV, EPSILON_CONFIDENT, EPSILON_POINT)
_SCALARS = {m.key: m for m in SCALAR_METRICS}
#: The names of the metrics besides ``tpr@F``.
METRIC_NAMES: tuple[str, ...] = tuple(_SCALARS)
_TPR_PREFIX = "tpr@"
_TPR_PATTERN = "tpr@F (0 < F < 1, e.g. tpr@0.01)"


def tpr_metric(fpr: float) -> Metric:
    """The TPR at FPR ``fpr``: key ``tpr@{fpr:g}``, chance level ``fpr``.

    >>> tpr_metric(0.01).key, tpr_metric(0.01).header
    ('tpr@0.01', 'TPR@1%')
    """
    fpr = float(fpr)
    if not 0.0 < fpr < 1.0:
        raise InputError(f"an FPR target must be in (0, 1); got {fpr!r}")
    percent = f"{fpr * 100:g}%"
    return Metric(f"{_TPR_PREFIX}{fpr:g}", f"TPR at {percent} FPR", f"TPR@{percent}",
                  TPR_DEFINITION, ("tpr_at_fpr",), chance=fpr, fpr=fpr)


def parse_metric(name: str) -> Metric:
    """The metric called ``name``; the one reader of metric names.

    Raises
    ------
    UnknownNameError
        ``name`` is no metric (the message suggests the closest and lists the valid names).
    InputError
        A ``tpr@F`` whose F is not a number in (0, 1).
    """
    if not isinstance(name, str):
        raise InputError(f"a metric name must be a string; got {type(name).__name__}")
    if name in _SCALARS:
        return _SCALARS[name]
    if name.startswith(_TPR_PREFIX):
        text = name.removeprefix(_TPR_PREFIX)
        try:
            fpr = float(text)
        except ValueError:
            fpr = math.nan
        if not 0.0 < fpr < 1.0:
            raise InputError(f"metric {name!r}: F of tpr@F must be a number in (0, 1); "
                             f"got {text!r}")
        return tpr_metric(fpr)
    raise UnknownNameError("metric", name, [*METRIC_NAMES, _TPR_PATTERN])


def parse_metrics(names: str | Iterable[str]) -> tuple[Metric, ...]:
    """Each of ``names`` (a sequence, or ``"a,b"``) parsed by :func:`parse_metric`."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    return tuple(parse_metric(name) for name in items)


def contract_table() -> str:
    """The README's "Definitions (the contract)" table, in Markdown, one row per field.

    Regenerate the README's table after changing a definition: ``python -c "from
    memberscope.metric_definitions import contract_table; print(contract_table())"``.
    """
    lines = ["| metric | definition |", "|---|---|"]
    lines += [f"| `{d.field}` | {d.text} |" for d in CONTRACT]
    return "\n".join(lines)
