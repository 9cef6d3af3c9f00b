"""One reader of metric names (memberscope.metric_definitions): every place that takes a metric
name raises with a did-you-mean on a typo, and no other module parses names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import memberscope
from memberscope import InputError, UnknownNameError
from memberscope.metric_definitions import (
    METRIC_NAMES,
    SCALAR_METRICS,
    parse_metric,
    parse_metrics,
    tpr_metric,
)
from memberscope.metrics import EpsilonBound
from memberscope.null_reference import chance_level, max_null_quantile
from memberscope.results import AuditRow, ResultsCollection, metric_value, worst_row
from memberscope.summary import suggest_checkpoint, summarize, trends

DID_YOU_MEAN = r"unknown metric 'aucc' \(did you mean 'auc'\?\); valid: auc, advantage, ppv"
SRC = Path(memberscope.__file__).resolve().parent
DEFINITIONS = SRC / "metric_definitions.py"


def _row(epoch: int = 1, auc: float = 0.6) -> AuditRow:
    return AuditRow("entire_dataset", "threshold", 100, 100, auc, 0.2, 0.55,
                    {0.01: 0.05, 0.1: 0.3}, EpsilonBound(0.5, 0.2, 0.05, 0.0),
                    metadata={"model": "m", "epoch": epoch, "test_accuracy": 0.7},
                    p_value=0.01, significant=True)


def test_every_name_parses_to_its_definition():
    assert [parse_metric(name).key for name in METRIC_NAMES] == list(METRIC_NAMES)
    assert [m.key for m in SCALAR_METRICS] == list(METRIC_NAMES)
    tpr = parse_metric("tpr@0.001")
    assert (tpr.key, tpr.fpr, tpr.chance, tpr.title, tpr.header) == (
        "tpr@0.001", 0.001, 0.001, "TPR at 0.1% FPR", "TPR@0.1%")
    assert parse_metric("tpr@1e-3") == tpr == tpr_metric(0.001)
    assert (parse_metric("auc").chance, parse_metric("advantage").chance) == (0.5, 0.0)
    assert parse_metric("ppv").chance is None
    assert all(m.higher_is_leakage for m in SCALAR_METRICS)
    assert parse_metric("epsilon_point").definition is parse_metric("epsilon_confident") \
        .definition


@pytest.mark.parametrize("name", ["tpr@", "tpr@x", "tpr@1.5", "tpr@0", "tpr@nan"])
def test_a_bad_fpr_names_the_metric_and_the_range(name):
    with pytest.raises(InputError, match=rf"metric '{re.escape(name)}': F of tpr@F must be a "
                                         r"number in \(0, 1\)"):
        parse_metric(name)


def test_a_typo_raises_with_did_you_mean_everywhere_a_name_is_taken():
    rows = [_row(1), _row(2, 0.7)]
    calls = [
        lambda: parse_metric("aucc"),
        lambda: parse_metrics("auc,aucc"),
        lambda: rows[0].metric("aucc"),
        lambda: metric_value(rows[0], "aucc"),
        lambda: worst_row(rows, "aucc"),
        lambda: ResultsCollection(rows).worst_slice("aucc"),
        lambda: ResultsCollection(rows).best_epoch(metric="aucc"),
        lambda: chance_level("aucc"),
        lambda: max_null_quantile("aucc", [(10, 10)]),
        lambda: summarize(rows, metric="aucc"),
        lambda: trends(rows, "aucc"),
        lambda: suggest_checkpoint(rows, limit=None, metric="aucc"),
    ]
    for call in calls:
        with pytest.raises(UnknownNameError, match=DID_YOU_MEAN):
            call()
    with pytest.raises(UnknownNameError, match="did you mean 'ppv'"):
        rows[0].metric("ppvv")


def test_report_helpers_and_plots_refuse_a_typo_instead_of_dropping_it(tmp_path):
    from memberscope.report._data import available_metrics, chance_band
    from memberscope.summary import worst_series

    rows = [_row(1), _row(2, 0.7)]
    assert available_metrics(rows, ["auc", "tpr@0.001"]) == ["auc"]  # not stored: left out
    for call in (lambda: available_metrics(rows, ["aucc", "auc"]),
                 lambda: worst_series(rows, "aucc"),
                 lambda: chance_band(rows, "aucc")):
        with pytest.raises(UnknownNameError, match=DID_YOU_MEAN):
            call()

    pytest.importorskip("matplotlib")
    from memberscope.report import figures, plots
    from memberscope.report.html import write_results_report

    for call in (lambda: plots.plot_metric_by_epoch(rows, "aucc"),
                 lambda: plots.plot_privacy_vs_utility(rows, "aucc"),
                 lambda: plots.plot_slice_heatmap(rows, "aucc"),
                 lambda: figures.epoch_figure(rows, metrics=["auc", "aucc"]),
                 lambda: figures.heatmap_figure(rows, "aucc"),
                 lambda: write_results_report(ResultsCollection(rows), tmp_path / "r.html",
                                              metric="aucc")):
        with pytest.raises(UnknownNameError, match=DID_YOU_MEAN):
            call()


def test_no_module_but_the_definitions_parses_metric_names():
    """A string starting with ``tpr@`` (a literal, or an f-string building or matching one),
    slicing a name after its prefix, or a list of the metric names belongs only in
    memberscope/metric_definitions.py; everywhere else goes through parse_metric/tpr_metric."""
    patterns = {
        "a 'tpr@' string": re.compile(r"""\b[fr]?["']tpr@"""),
        "a name sliced after 'tpr@'": re.compile(r"""\[4:\]|removeprefix\(["']tpr"""),
        "a metric-name literal": re.compile(r"""["']epsilon_(confident|point)["']"""),
    }
    offenders = []
    for path in sorted(SRC.rglob("*")):
        if path.suffix not in (".py", ".j2") or path == DEFINITIONS:
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            offenders += [f"{path.relative_to(SRC)}:{number}: {what}: {line.strip()}"
                          for what, pattern in patterns.items() if pattern.search(line)]
    assert not offenders, "\n".join(offenders)
