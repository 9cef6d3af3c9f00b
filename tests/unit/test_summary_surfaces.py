"""One summary (memberscope.summary), every surface: the HTML page, the terminal table of
``memberscope audit``/``report``, the monitors' per-audit line and the runner's per-epoch line
say the same worst row, the same family of tests (α and correction as the audit ran them) and
the same decisions; templates only place what the summary decided."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import memberscope
from memberscope import ModelOutputs, UnknownNameError, audit
from memberscope.cli._table import render_summary
from memberscope.cli.audit import summary_table
from memberscope.experiment.runner import _epoch_line
from memberscope.monitor._common import audit_line
from memberscope.results import (
    AuditResult,
    Family,
    ResultsCollection,
    audit_family,
    distinguishable_rows,
)
from memberscope.summary import DpPoint, Statement, summarize

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

from memberscope.report.page import PageInputs, render_page

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")
SRC = Path(memberscope.__file__).resolve().parent


def _audit(seed: int = 0, *, epoch: int = 2, model: str = "cnn", shift: float = 0.45,
           **options) -> AuditResult:
    rng = np.random.default_rng(seed)
    n = 1200
    membership = np.arange(n) < n // 2
    outputs = ModelOutputs(membership=membership, labels=rng.integers(0, 4, n),
                           loss=rng.exponential(np.where(membership, shift, 1.0), n))
    return audit(outputs, attacks=["threshold"], slices=["entire", "class"], seed=seed,
                 metadata={"model": model, "epoch": epoch, "test_accuracy": 0.6 + epoch / 100,
                           "train_accuracy": 0.7, "inference_seconds": 0.1,
                           "audit_seconds": 0.2}, **options)


def _numbers(page: str) -> dict[str, float]:
    return {key: float(value) for key, value in
            re.findall(r'class="num" data-key="([^"]+)" data-v="([^"]*)"', page) if value}


def _answers(page: str) -> str:
    """The answers at the top, tags stripped."""
    section = page.split('<section class="answers"', 1)[1].split("</section>", 1)[0]
    return re.sub(r"<[^>]+>", "", section).replace("&#39;", "'")


def test_every_surface_names_the_same_worst_row():
    result = _audit()
    significant = [r for r in result.rows if r.significant]
    worst = max(significant, key=lambda r: r.auc)  # the oracle: largest significant AUC
    summary = summarize(result)
    assert summary.worst is worst
    phrase = (f"worst significant AUC {worst.auc:.3f} (threshold on {worst.slice}; "
              f"{len(significant)} of {len(result.rows)} significant)")
    assert summary.headline_text == phrase

    page = render_page(PageInputs("t", "s", list(result.rows)))
    assert _numbers(page)["worst.auc"] == worst.auc
    assert f"threshold on {worst.slice} (model cnn, epoch 2): AUC {worst.auc:.3f}" in \
        _answers(page)
    assert any(line.startswith(f"worst: threshold on {worst.slice} (model cnn, epoch 2): AUC "
                               f"{worst.auc:.3f}") for line in summary_table(result).splitlines())
    terminal = render_summary(summary)
    assert f"worst: threshold on {worst.slice} (model cnn, epoch 2): AUC {worst.auc:.3f}" in \
        terminal
    table_row = next(line for line in terminal.splitlines() if line.startswith("cnn "))
    assert f"threshold @ {worst.slice}" in table_row and f"{worst.auc:.3f}" in table_row
    assert audit_line("cnn", 2, 1.0, result).endswith(f"| {phrase}")
    stats = SimpleNamespace(epoch=2, loss=0.5, accuracy=0.8, seconds=1.0, images_per_second=10)
    assert f"test acc 0.6200, {phrase}, 0.3 s" in _epoch_line("cnn", stats, 3, result)


def test_a_runs_checkpoints_are_the_same_numbers_in_the_page_and_the_terminal():
    audits = [_audit(seed, epoch=epoch, model=model, shift=shift)
              for seed, (model, epoch, shift) in enumerate(
                  [("a", 1, 0.7), ("a", 2, 0.5), ("b", 1, 1.0), ("b", 2, 0.9)])]
    rows = [r for result in audits for r in result.rows]
    summary = summarize(rows, max_auc=0.65)
    assert [c.key for c in summary.checkpoints] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    for checkpoint, result in zip(summary.checkpoints, audits, strict=True):
        leaking = [r for r in result.rows if r.significant]
        assert checkpoint.n_significant == len(leaking)
        assert checkpoint.worst is (max(leaking, key=lambda r: r.auc) if leaking else None)
        # a bound on the largest of the audit's k rows: each row at 95%/k (issue 17)
        k = len(result.rows)
        assert checkpoint.max_epsilon == max(r.epsilon_lower_bound.confident_at(0.05 / k)
                                             for r in result.rows)

    page = render_page(PageInputs("t", "s", rows, max_auc=0.65))
    table = page.split('id="checkpoints"')[1].split("</tbody>")[0]
    for checkpoint, line in zip(summary.checkpoints, table.split("<tr")[2:], strict=True):
        shown = [float(v) for v in re.findall(r'data-v="([^"]+)"', line)]
        if checkpoint.worst is not None:
            assert checkpoint.worst.auc in shown
            assert checkpoint.max_advantage in shown
        else:
            assert "none distinguishable from chance" in line
    terminal = render_summary(summary).splitlines()
    for model in ("a", "b"):
        last = summary.checkpoints[[c.key for c in summary.checkpoints].index((model, 2))]
        row = next(line for line in terminal if line.startswith(f"{model} "))
        expected = ("none of" if last.worst is None else f"{last.worst.auc:.3f}")
        assert expected in row and f"{last.max_epsilon:.2f}" in row
    # A blank maximum is explained where the table shows one.
    blank = any(c.worst is None or c.max_low_fpr is None
                for c in summary.checkpoints if c.key[1] == 2)
    footnote = "-: no result distinguishable from chance (TPR at a low FPR: by its own test)"
    assert blank and footnote in terminal
    pick = summary.suggestion
    assert pick is not None
    assert _numbers(page)["suggestion.accuracy"] == pick.accuracy
    assert f"suggested checkpoint: {summary.suggestion_statement.text}" in terminal


@pytest.mark.parametrize(("alpha", "correction", "name"),
                         [(0.1, "bonferroni", "Bonferroni's"), (0.01, "holm", "Holm's")])
def test_the_family_is_rendered_from_the_audits_alpha_and_correction(alpha, correction, name):
    result = _audit(alpha=alpha, correction=correction)
    text = f"significant after {name} correction over this audit's results at α = {alpha:g}"
    summary = summarize(result)
    assert (summary.family.alpha, summary.family.correction) == (alpha, correction)
    assert summary.family_text == text
    page = render_page(PageInputs("t", "s", list(result.rows)))
    assert text in _answers(page)
    results_caption = page.split('id="all-results"')[1].split("</caption>")[0]
    assert text in results_caption.replace("&#39;", "'")
    assert text in summary_table(result)
    before_glossary = page.split('<section id="metrics">')[0]
    other = "Holm" if correction == "bonferroni" else "Bonferroni"
    assert other not in before_glossary and "α = 0.05" not in before_glossary

    # Statements about two audits are corrected over both: the run's family.
    n = 2 * len(result.rows)
    run = summarize([*result.rows, *_audit(1, epoch=4, alpha=alpha,
                                           correction=correction).rows])
    assert run.family_text == (f"significant after {name} correction over the run's {n} "
                               f"results (2 audits) at α = {alpha:g}")
    # Audits that chose differently: the smaller level, and Bonferroni where the corrections
    # differ (both allow it).
    mixed = summarize([*result.rows, *_audit(1, epoch=4).rows])
    chosen = "Holm's" if correction == "holm" else "Bonferroni's"
    assert mixed.family_text == (f"significant after {chosen} correction over the run's "
                                 f"{n} results (2 audits) at α = {min(alpha, 0.05):g}")
    assert summarize([*result.rows, *_audit(1, epoch=4).rows],
                     family=audit_family(result.rows)).family_text == text.replace(
        "this audit's", "each audit's")


def test_files_without_alpha_and_correction_say_no_level_in_the_audits_family():
    rows = [replace(r, alpha=None, correction=None) for r in _audit().rows]
    own = summarize(rows, family=audit_family(rows))
    assert own.family == Family("audit", None, None)
    assert own.family_text == "significant after this audit's family-wise correction"
    # The default family recomputes the verdicts at the ε bound's level (the audit's one
    # alpha) with Holm, so it can say so.
    assert summarize(rows).family_text == ("significant after Holm's correction over this "
                                           "audit's results at α = 0.05")


def test_templates_and_page_decide_nothing_and_spell_out_no_test():
    """The DP verdict, the family's wording and every comparison live in memberscope.summary:
    the templates, the page module and the CLI only place what it says."""
    places = [*(SRC / "report" / "templates").glob("*.j2"), SRC / "report" / "page.py",
              *(SRC / "cli").glob("*.py"), SRC / "monitor" / "_common.py",
              SRC / "experiment" / "runner.py"]
    for path in places:
        text = path.read_text("utf-8")
        for word in ("INCONSISTENT", "Holm", "Bonferroni", "α = ", "'no leakage distinguish",
                     '"no leakage distinguish'):
            assert word not in text, f"{path.relative_to(SRC)} spells out {word!r}"
    for path in (SRC / "report" / "templates").glob("*.j2"):
        assert not re.search(r"\{%[^%]*(<=|>=|<|>|max\b)[^%]*%\}", path.read_text("utf-8")), \
            f"{path.name} compares numbers"


@pytest.mark.parametrize(("white_box", "consistent"), [(1.04, True), (4.2, False)])
def test_dp_consistency_is_decided_in_python(white_box, consistent):
    point = DpPoint("dp", 3, accountant=3.53, empirical=0.1, white_box=white_box)
    assert point.consistent is consistent
    assert point.audited == white_box
    assert ("(INCONSISTENT:" in point.statement().text) is not consistent
    assert ("(consistent: what this run measurably leaks stays below the guarantee)"
            in point.statement().text) is consistent


def test_a_leading_statement_comes_first_on_every_surface():
    """The slot for what must precede every headline (issue 16's split guard)."""
    rows = list(_audit().rows)
    summary = summarize(rows)
    lead = Statement(("members and non-members differ before any model saw them",))
    led = replace(summary, leading=(lead,))
    assert led.headline_text == f"{lead.text}; {summary.headline_text}"
    lines = render_summary(led).split("\n\n", 1)[1].splitlines()
    assert lines[0] == lead.text
    page = render_page(PageInputs("t", "s", rows, summary=led))
    answers = _answers(page)
    assert answers.index("Members and non-members differ") < answers.index("Worst leakage")


def test_which_rows_count_is_one_rule_that_takes_the_family():
    rows = _audit().rows
    family = summarize(rows).family
    assert distinguishable_rows(rows, family) == [r for r in rows if r.significant]
    assert all(s.family == family for s in (summarize(rows).headline,
                                            summarize(rows).significance_statement))
    with pytest.raises(UnknownNameError, match="unknown family scope 'runs'"):
        Family("runs")
    assert summarize(ResultsCollection(rows)).worst is summarize(rows).worst


def _tpr_rows(tmp_path: Path, tpr_at_one_percent: float) -> list:
    from tests.helpers import report_synth as synth

    from memberscope.store import load_results

    run_dir = synth.write_synthetic_run(tmp_path / "run", models=("m",), epochs=(1, 2),
                                        n_classes=2, dp_model=None)
    # Every row significant by its rank test; its TPR at 1% FPR as given (500 per side),
    # the lowest FPR its rows store.
    return [replace(r, p_value=1e-12, significant=True,
                    tpr_at_fpr={0.01: tpr_at_one_percent, 0.1: r.tpr_at_fpr[0.1]})
            for r in load_results(run_dir)]


def test_a_tpr_headline_rests_on_the_tpr_s_own_test_not_the_rows_auc(tmp_path):
    at_chance = summarize(_tpr_rows(tmp_path / "a", 0.012), metric="tpr@0.01")
    assert at_chance.worst is None and not at_chance.trends
    assert summarize(_tpr_rows(tmp_path / "b", 0.3), metric="tpr@0.01").worst is not None


def test_on_a_shifted_split_no_tpr_at_a_low_fpr_is_a_headline(tmp_path):
    from memberscope.results import SplitGuard

    rows = _tpr_rows(tmp_path, 0.3)
    shifted = SplitGuard("shifted", blind_auc=0.7, blind_p_value=1e-9, correction="holm",
                         metadata={"model": "m"})
    alike = replace(shifted, verdict="same-distribution", blind_p_value=0.4)
    alike_summary = summarize(rows, metric="tpr@0.01", split_guards=[alike])
    assert alike_summary.worst is not None and alike_summary.worst_low_fpr is not None
    led = summarize(rows, metric="tpr@0.01", split_guards=[shifted])
    assert led.leading and led.worst is None and led.worst_low_fpr is None
    assert all(c.max_low_fpr is None for c in led.checkpoints)


def test_on_a_shifted_split_the_dp_verdict_does_not_read_the_attacks_bound(tmp_path):
    from memberscope.results import SplitGuard

    rows = [replace(r, metadata={**r.metadata, "epsilon": 0.1})
            for r in _tpr_rows(tmp_path, 0.3)]
    guard = SplitGuard("same-distribution", blind_auc=0.5, blind_p_value=0.4,
                       correction="holm", metadata={"model": "m"})
    (*_, alike) = summarize(rows, split_guards=[guard]).dp
    assert alike.empirical > alike.accountant and not alike.consistent
    assert "INCONSISTENT" in alike.statement().text
    (*_, shifted) = summarize(rows, split_guards=[replace(guard, verdict="shifted",
                                                          blind_p_value=1e-9)]).dp
    assert shifted.empirical == alike.empirical and shifted.consistent
    text = shifted.statement().text
    assert "INCONSISTENT" not in text and "not read by the verdict" in text


def test_an_audit_without_epochs_suggests_no_checkpoint():
    result = _audit()
    result = AuditResult(rows=tuple(replace(r, metadata={"model": "a", "test_accuracy": 0.8})
                                    for r in result.rows))
    summary = summarize(result)
    assert summary.suggestion is None
    assert "epoch None" not in render_page(PageInputs("t", "s", list(result.rows)))


def test_the_slice_table_keeps_a_significant_slice_behind_noisy_maxima():
    from memberscope.cli._table import MAX_SLICES

    template = replace(_audit().rows[0], metadata={})  # one audit: a table of slices
    noisy = [replace(template, slice=f"custom:noise{i}", auc=0.70, p_value=0.5,
                     significant=False) for i in range(MAX_SLICES + 2)]
    leaking = replace(template, slice="custom:leak", auc=0.55, p_value=1e-9, significant=True)
    result = AuditResult(rows=(*noisy, leaking), alpha=0.05, correction="holm")
    table = render_summary(summarize(result)).split("\n\n")[0]
    assert "custom:leak" in table
