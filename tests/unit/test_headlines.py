"""Headlines use the null: the worst leakage, trend, verdict, suggested checkpoint and every
terminal summary rank only rows distinguishable from chance, and otherwise say "no leakage
distinguishable from chance (N results tested)"; by-epoch and privacy-vs-utility figures shade
the chance band."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from memberscope import ModelOutputs, audit
from memberscope.cli.audit import summary_table
from memberscope.metrics import EpsilonBound
from memberscope.monitor._common import audit_line
from memberscope.null_reference import max_null_quantile
from memberscope.results import (
    AuditResult,
    AuditRow,
    ResultsCollection,
    worst_distinguishable,
)

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

from memberscope.report import page as report_page
from memberscope.report import plots
from memberscope.summary import summarize

VERDICT_WORDS = ("Slight:", "Weak:", "Moderate:", "Strong:")


def _audit(leaky: bool, seed: int = 0, n: int = 1200, n_bootstrap: int = 0,
           **metadata) -> AuditResult:
    rng = np.random.default_rng(seed)
    membership = np.arange(n) < n // 2
    labels = rng.integers(0, 4, n)
    scale = np.where(membership, 0.45, 1.0) if leaky else np.ones(n)
    outputs = ModelOutputs(membership=membership, labels=labels,
                           loss=rng.exponential(scale, n))
    return audit(outputs, attacks=["threshold"], slices=["entire", "class"], seed=seed,
                 n_bootstrap=n_bootstrap, metadata=metadata or None)


@pytest.fixture(scope="module")
def quiet() -> AuditResult:
    result = _audit(leaky=False)
    assert not any(r.significant for r in result.rows)  # no-signal data: nothing significant
    return result


@pytest.fixture(scope="module")
def leaky() -> AuditResult:
    return _audit(leaky=True)


def _page(rows, **kwargs) -> str:
    return report_page.render_page(report_page.PageInputs("t", "s", list(rows), **kwargs))


def _row(slice_name: str, auc: float, significant: bool | None, *, n: int = 500,
         tpr: float | None = 0.05, **metadata) -> AuditRow:
    return AuditRow(slice=slice_name, attack="threshold", n_members=n, n_nonmembers=n,
                    auc=auc, advantage=2 * (auc - 0.5), ppv=0.5,
                    tpr_at_fpr={0.001: tpr, 0.01: 0.1}, metadata=dict(metadata),
                    epsilon_lower_bound=EpsilonBound(0.0, 0.0, 0.05, 0.0),
                    p_value=0.001 if significant else 0.4, significant=significant)


# --- no-signal and leaky audits --------------------------------------------------------------


def test_no_signal_audit_says_no_leakage_and_gives_no_verdict(quiet):
    n = len(quiet.rows)
    expected = f"no leakage distinguishable from chance ({n} results tested)"
    summary = summarize(quiet)
    assert summary.worst is None and summary.worst_low_fpr is None
    assert summary.no_leakage == expected
    page = _page(quiet.rows)
    assert expected.capitalize() in page
    assert not any(word in page for word in VERDICT_WORDS)
    assert 'data-key="worst.auc"' not in page
    assert summary_table(quiet).splitlines()[-1] == expected
    assert "worst:" not in summary_table(quiet)
    assert summarize(quiet).headline_text == expected


def test_leaky_audit_headline_names_the_worst_significant_row(leaky):
    significant = [r for r in leaky.rows if r.significant]
    assert significant
    worst = max(significant, key=lambda r: r.auc)
    summary = summarize(leaky)
    assert summary.worst is worst and summary.n_significant == len(significant)
    page = _page(leaky.rows)
    numbers = dict(re.findall(r'data-key="(worst\.[^"]+)" data-v="([^"]*)"', page))
    assert float(numbers["worst.auc"]) == worst.auc
    assert float(numbers["worst.p_value"]) == worst.p_value
    assert any(word in page for word in VERDICT_WORDS)
    footer = summary_table(leaky).splitlines()[-1]
    assert footer.startswith(f"worst: threshold on {worst.slice}: AUC {worst.auc:.3f}")


def test_a_larger_non_significant_row_is_never_the_headline():
    rows = [_row("entire_dataset", 0.58, True), _row("class=7", 0.81, False, n=12)]
    summary = summarize(rows)
    assert summary.worst is rows[0]
    assert "class=7" not in _page(rows).split('id="trend"')[0]
    assert summary_table(AuditResult(rows=tuple(rows))).splitlines()[-1].startswith(
        "worst: threshold on entire_dataset")


def test_unresolvable_tpr_is_never_a_headline():
    rows = [_row("entire_dataset", 0.6, True, tpr=None), _row("class=1", 0.55, False, tpr=0.9)]
    summary = summarize(rows)
    assert summary.worst_low_fpr is None  # the only resolvable TPR@0.1% is not significant
    page = _page(rows)
    assert "lowest false-positive rate" not in page
    assert 'data-key="worst.tpr@0.001"' not in page and 'data-key="worst.tpr@0.01"' in page
    # Resolvable and significant by AUC, but its TPR at 0.1% FPR does not beat chance by
    # its own test (2 of 2,000 members above the third non-member): no headline either.
    at_chance = [_row("entire_dataset", 0.6, True, tpr=0.3, n=2000),
                 _row("x", 0.61, True, tpr=0.001, n=2000)]
    assert summarize(at_chance).worst_low_fpr is at_chance[0]
    assert summarize(at_chance[1:]).worst_low_fpr is None


def test_the_low_fpr_headline_is_tested_on_its_own_not_picked_by_auc():
    """TPR@0.1% 0.002 on 5,000 non-members (10 of 5,000 members above the 6th non-member,
    where chance puts 6; p = 0.15) is what chance gives: no headline, though its row is
    significant by AUC. A TPR that beats chance by its own test is one even on a row not
    significant by AUC."""
    lucky = _row("entire_dataset", 0.7, True, tpr=0.002, n=5000)
    real = _row("class=1", 0.52, False, tpr=0.02, n=5000)
    assert summarize([lucky]).worst_low_fpr is None
    summary = summarize([lucky, real])
    assert summary.worst_low_fpr is real
    assert summary.low_fpr_statement.text.endswith(
        "(its own exact test of TPR at 0.1% FPR, significant after Holm's correction over "
        "this audit's results at α = 0.05)")


def test_results_table_shows_p_values_significance_and_intervals():
    leaky = _audit(leaky=True, n_bootstrap=20)
    page = _page(leaky.rows)
    table = page.split('id="all-results"')[1].split("</table>")[0]
    for header in ("AUC 95% CI", "p-value", "significant", "TPR@1% CI"):
        assert f">{header}<" in table, header
    low, high = leaky.rows[0].auc_ci
    assert f"{low:.3f}–{high:.3f}" in table


# --- runs: trend, DP variant, suggestion ------------------------------------------------------


def _run_rows(model: str, aucs_by_epoch: dict[int, float], significant: bool,
              accuracy: float = 0.7, **extra) -> list[AuditRow]:
    return [_row(s, auc + 0.01 * k, significant, model=model, epoch=epoch,
                 test_accuracy=accuracy + 0.01 * epoch, **extra)
            for epoch, auc in aucs_by_epoch.items()
            for k, s in enumerate(("entire_dataset", "class=0", "class=1"))]


def test_a_dp_variant_without_significant_rows_gets_no_verdict_and_no_trend():
    plain = _run_rows("plain", {1: 0.6, 2: 0.7}, True)
    dp = _run_rows("DP", {1: 0.62, 2: 0.64}, False, epsilon=1.0)
    summary = summarize(plain + dp)
    assert [t.model for t in summary.trends] == ["plain"]
    assert summary.quiet_models == (("DP", 6),)
    assert summary.worst.metadata["model"] == "plain"
    page = _page(plain + dp)
    # Said of all 4 audits of the run: corrected over all of their 12 results.
    assert ('<b class="label">DP</b>: no leakage distinguishable from chance at any epoch '
            "(6 results tested, after Holm&#39;s correction over the run&#39;s 12 results "
            "(4 audits))") in page
    assert "no result distinguishable from chance" in page  # in the DP card

    alone = _page(dp)
    assert not any(word in alone for word in VERDICT_WORDS)
    assert ("No leakage distinguishable from chance (6 results tested, after Holm&#39;s "
            "correction over the run&#39;s results (2 audits))") in alone


def test_suggestion_counts_only_significant_rows():
    plain = _run_rows("plain", {1: 0.6, 2: 0.7}, True, accuracy=0.6)
    noisy = _run_rows("noisy", {1: 0.75, 2: 0.8}, False, accuracy=0.7)
    best = ResultsCollection(plain + noisy).best_epoch(max_value=0.65)
    assert best == {"model": "noisy", "epoch": 2, "accuracy": pytest.approx(0.72),
                    "worst": None, "n_tested": 3}
    summary = summarize(plain + noisy, max_auc=0.65)
    assert summary.suggestion.worst is None and summary.suggestion.model == "noisy"
    assert ("no leakage distinguishable from chance (3 results tested, after Holm&#39;s "
            "correction over the run&#39;s 12 results (4 audits))") in _page(
        plain + noisy, max_auc=0.65)


def test_schema_1_rows_without_tests_keep_the_old_headlines():
    rows = [replace(_row("entire_dataset", 0.6, None), p_value=None),
            replace(_row("class=0", 0.7, None), p_value=None)]
    assert worst_distinguishable(rows) is rows[1]
    assert summarize(rows).headline_text == "worst AUC 0.700 (threshold on class=0; not tested)"


# --- terminal lines -------------------------------------------------------------------------


def test_monitor_and_runner_lines_use_the_null(quiet, leaky):
    line = audit_line("m", 2, 1.0, quiet)
    assert line.endswith(f"| no leakage distinguishable from chance ({len(quiet.rows)} "
                         "results tested)")
    worst = max((r for r in leaky.rows if r.significant), key=lambda r: r.auc)
    assert f"| worst significant AUC {worst.auc:.3f} (threshold on {worst.slice}; " in \
        audit_line("m", 2, 1.0, leaky)


def test_runner_epoch_line(quiet):
    from types import SimpleNamespace

    from memberscope.experiment.runner import _epoch_line

    stats = SimpleNamespace(epoch=1, loss=0.5, accuracy=0.8, seconds=1.0, images_per_second=10)
    result = quiet.with_metadata(test_accuracy=0.7, inference_seconds=0.1, audit_seconds=0.2)
    line = _epoch_line("m", stats, 3, result)
    assert f"no leakage distinguishable from chance ({len(quiet.rows)} results tested)" in line
    assert "max AUC" not in line


# --- figures --------------------------------------------------------------------------------


def _band(ax):
    found = [a for a in [*ax.collections, *ax.patches] if a.get_gid() == plots.CHANCE_BAND_GID]
    assert len(found) == 1
    return found[0]


def test_by_epoch_plot_draws_the_chance_band():
    rows = _run_rows("plain", {1: 0.6, 2: 0.7, 3: 0.72}, True)
    ax = plots.plot_metric_by_epoch(rows, "auc")
    band = _band(ax)
    expected = max_null_quantile("auc", [(500, 500)] * 3)
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(expected)
    assert band.get_label().startswith("chance: 95%")
    _band(plots.plot_metric_by_epoch(rows, "advantage"))
    band = _band(plots.plot_metric_by_epoch(rows, "tpr@0.01"))  # exact null for TPR at FPR
    vertices = band.get_paths()[0].vertices[:, 1]
    assert vertices.min() == pytest.approx(0.01)  # the chance level: TPR = FPR
    assert vertices.max() == pytest.approx(max_null_quantile("tpr@0.01", [(500, 500)] * 3))
    ax = plots.plot_metric_by_epoch(rows, "ppv")  # no null reference for PPV: no band
    assert not [a for a in ax.collections if a.get_gid() == plots.CHANCE_BAND_GID]


def test_privacy_vs_utility_plot_draws_the_chance_band():
    rows = _run_rows("plain", {1: 0.6, 2: 0.7}, True) + _run_rows("b", {1: 0.5, 2: 0.55}, False)
    ax = plots.plot_privacy_vs_utility(rows, "auc")
    band = _band(ax)  # axhspan: a rectangle over the whole width, chance … upper in data y
    assert band.get_y() == 0.5
    assert band.get_y() + band.get_height() == pytest.approx(
        max_null_quantile("auc", [(500, 500)] * 3))
