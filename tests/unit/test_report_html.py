"""The HTML report: escaping, self-containment, the answers at the top, files written."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from tests.helpers import report_synth as synth

from memberscope.report import html as report_html
from memberscope.report import page as report_page
from memberscope.results import AuditResult, ResultsCollection
from memberscope.store import load_result, load_results
from memberscope.summary import summarize

EVIL_CONFIG = 'name = "</pre><script>alert(2)</script>"\nnote = "<!-- & \' \\""\n'


class _Collector(HTMLParser):
    """Every tag with its attributes, and the text inside each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def _write_scores(run_dir: Path) -> None:
    """Per-example scores as the runner writes them (memberscope.rundir), for two epochs of
    one variant (the report shows the last) and the last epoch of the other."""
    from memberscope import rundir

    rng = np.random.default_rng(1)
    membership = np.arange(400) < 200
    for model, epoch in ((synth.XSS_LABEL, 4), (synth.XSS_LABEL, 6), ("3 layers", 6)):
        result = AuditResult(rows=(), scores={"threshold": rng.random(400) + membership},
                             membership=membership, labels=rng.integers(0, 2, 400))
        rundir.write_scores(run_dir, model, epoch, result, member_index=np.arange(1000, 1200))


@pytest.fixture(scope="module")
def run_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run_dir = synth.write_synthetic_run(tmp_path_factory.mktemp("run") / "run",
                                        models=(synth.XSS_LABEL, "3 layers"), epochs=(2, 4, 6),
                                        n_classes=4, config=EVIL_CONFIG)
    _write_scores(run_dir)
    path = report_html.write_run_report(run_dir, max_auc=0.7)
    return run_dir, path.read_text(encoding="utf-8")


def test_run_report_is_written_with_figures(run_report):
    run_dir, page = run_report
    assert (run_dir / "report.html").is_file()
    names = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert names == ["by_epoch.png", "dp_epsilon.png", "per_slice.png",
                     "privacy_vs_accuracy.png", "roc.png"]
    assert page.count("data:image/png;base64,") == 5
    assert not list(run_dir.glob(".report.html.*"))  # atomic write leaves no temp file


def test_run_report_shows_each_variants_last_scores(run_report):
    _, page = run_report
    exposed = page.split('id="exposed"')[1].split("</table>")[0]
    assert exposed.count("<tr>") == 1 + 2 * report_html.EXPOSED_ROWS  # header + 10 per variant
    assert "<td>3 layers</td>" in exposed and f"<td>{report_page.escape(synth.XSS_LABEL)}</td>" \
        in exposed
    assert 'data-v="4"' not in exposed  # the epoch-4 file is not the variant's last audit
    indices = [int(i) for i in re.findall(r'<td class="n" data-v="(\d+)">\d+</td><td class="n"',
                                          exposed)]
    assert indices and all(1000 <= i < 1200 for i in indices)  # training-set indices


def test_every_user_string_is_escaped(run_report):
    _, page = run_report
    parsed = _parse(page)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert len(scripts) == 2  # our JSON data block and our sorting script; nothing else
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;!-- &amp; &#39; \\&#34;" in page


def test_embedded_json_cannot_break_out_and_round_trips(run_report):
    _, page = run_report
    data = next(text for attrs, text in _parse(page).scripts
                if attrs.get("type") == "application/json")
    assert "<" not in data and ">" not in data and "&" not in data
    summary = json.loads(data)
    assert summary["worst"]["metadata"]["model"] in (synth.XSS_LABEL, "3 layers")
    assert summary["suggestion"]["model"] == synth.XSS_LABEL


def test_json_for_script_escapes_and_maps_nan_to_null():
    text = report_page.json_for_script({"a": "</script><!--x-->&\u2028", "b": float("nan"),
                                        "c": np.float32(0.5), "d": [np.int64(3)]})
    assert "</" not in text and "<!--" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!--x-->&\u2028", "b": None, "c": 0.5, "d": [3]}


def test_page_is_self_contained(run_report):
    _, page = run_report
    for tag, attrs in _parse(page).tags:
        for name in ("src", "href", "action", "srcset", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), (tag, name, value[:60])
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page


def test_csp_allows_exactly_our_script(run_report):
    _, page = run_report
    parsed = _parse(page)
    csp = next(attrs["content"] for tag, attrs in parsed.tags
               if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    code = next(text for attrs, text in parsed.scripts if "type" not in attrs)
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp


def _numbers(page: str) -> dict[str, float]:
    return {key: float(value) for key, value in
            re.findall(r'class="num" data-key="([^"]+)" data-v="([^"]*)"', page) if value}


def test_answers_match_the_results(run_report):
    run_dir, page = run_report
    collection = load_results(run_dir)
    numbers = _numbers(page)
    worst = max(collection, key=lambda r: r.auc)
    assert numbers["worst.auc"] == worst.auc
    assert numbers["worst.advantage"] == worst.advantage
    assert numbers["worst.tpr@0.001"] == worst.tpr_at_fpr[0.001]
    best = collection.best_epoch(max_value=0.7)
    assert numbers["suggestion.accuracy"] == best["accuracy"]
    assert numbers["suggestion.worst"] == best["worst"]
    assert numbers["limit"] == 0.7
    # The oracle: best accuracy among (model, epoch) whose worst AUC over every row is ≤ 0.7.
    groups: dict = {}
    for row in collection:
        groups.setdefault((row.metadata["model"], row.metadata["epoch"]), []).append(row)
    ok = {k: g[0].metadata["test_accuracy"] for k, g in groups.items()
          if max(r.auc for r in g) <= 0.7}
    assert max(ok.values()) == numbers["suggestion.accuracy"]


def test_trend_and_dp_cards(run_report):
    _, page = run_report
    assert re.search(r"3 layers</b>: worst significant AUC rose from", page)
    assert "accountant ε =" in page and "consistent" in page
    numbers = _numbers(page)
    assert numbers["dp.accountant"] == pytest.approx(3.0)


def test_tables_list_every_row_and_mark_the_suggestion(run_report):
    run_dir, page = run_report
    n_rows = len(load_results(run_dir))
    body = page.split('id="all-results"')[1].split("</tbody>")[0]
    assert body.count("<tr>") + body.count("<tr ") == n_rows + 1  # + header row
    checkpoints = page.split('id="checkpoints"')[1].split("</table>")[0]
    assert checkpoints.count('class="suggested"') == 1
    assert 'data-type="num"' in page and 'data-type="text"' in page
    assert "too few members (3 &lt; 10)" in page  # skipped entries with their reason


def test_metric_explanations_are_present(run_report):
    _, page = run_report
    for name in ("AUC", "Advantage", "PPV", "TPR at x% FPR", "ε lower bound", "Accountant ε"):
        assert f"<dt>{report_page.escape(name)}</dt>" in page
    assert "Clopper-Pearson" in page


def test_no_limit_suggests_the_most_accurate_checkpoint(tmp_path):
    run_dir = synth.write_synthetic_run(tmp_path / "r", models=("m",), epochs=(1, 2),
                                        n_classes=2, dp_model=None)
    rows = load_results(run_dir).rows
    summary = summarize(rows)
    assert summary.suggestion is not None and summary.suggestion.epoch == 2
    page = report_page.render_page(report_page.PageInputs("t", "s", rows))
    assert "no privacy limit set" in page


def test_limit_below_every_checkpoint_says_none_qualifies(tmp_path):
    run_dir = synth.write_synthetic_run(tmp_path / "r", models=("m",), epochs=(1, 2),
                                        n_classes=2, dp_model=None)
    rows = load_results(run_dir).rows
    page = report_page.render_page(report_page.PageInputs("t", "s", rows, max_auc=0.51))
    assert "No checkpoint keeps the worst AUC at or below" in page


def test_audit_report_has_roc_exposed_examples_and_gallery(tmp_path):
    synth.write_synthetic_audit(tmp_path, model=synth.XSS_LABEL)
    result = load_result(tmp_path)
    images = np.random.default_rng(0).random((len(result.membership), 6, 6))
    path = report_html.write_audit_report(result, tmp_path / "report.html", images=images)
    page = path.read_text(encoding="utf-8")
    assert 'id="fig-roc"' in page and 'id="fig-exposed_examples"' in page
    assert 'id="fig-per_slice"' in page
    assert "One audit without epochs" in page
    assert "No accuracies recorded" in page
    exposed = page.split('id="exposed"')[1].split("</table>")[0]
    top = int(np.argmax(np.where(result.membership, result.scores["threshold"], -np.inf)))
    assert re.search(rf'<td class="n" data-v="{top}">{top}</td>', exposed)
    assert "&lt;script&gt;" in page and "<script>alert" not in page


def test_audit_report_from_result_json_alone_notes_missing_curves(tmp_path):
    synth.write_synthetic_audit(tmp_path)
    (tmp_path / "arrays.npz").unlink()
    result = load_result(tmp_path / "result.json")
    page = report_html.write_audit_report(result, tmp_path / "r.html").read_text("utf-8")
    assert "No ROC curves" in page and 'id="fig-roc"' not in page


def test_a_result_with_every_pair_skipped_still_renders(tmp_path):
    from memberscope.results import SkippedEntry

    result = AuditResult(rows=(), skipped=(SkippedEntry("entire_dataset", "lr", "no <b>"),))
    page = report_html.write_audit_report(result, tmp_path / "r.html").read_text("utf-8")
    assert "No results" in page and "no &lt;b&gt;" in page


def test_run_report_can_skip_figure_files(tmp_path, monkeypatch):
    run_dir = synth.write_synthetic_run(tmp_path / "r", models=("m",), epochs=(1, 2),
                                        n_classes=2, dp_model=None)
    fake = report_html._figures.RenderedFigure("f", "title", "caption", b"\x89PNG")
    monkeypatch.setattr(report_html, "_render_figures", lambda *args: [fake])
    out = tmp_path / "elsewhere" / "page.html"
    assert report_html.write_run_report(run_dir, out=out, write_figures=False) == out
    assert 'id="fig-f"' in out.read_text("utf-8")
    assert not (run_dir / "figures").exists() and not (run_dir / "report.html").exists()


def test_missing_run_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"results\.jsonl"):
        report_html.write_run_report(tmp_path)


def test_summary_trends_and_dp_points(tmp_path):
    rows = ResultsCollection(load_results(synth.write_synthetic_run(
        tmp_path / "r", models=("m",), epochs=(1, 2, 3), n_classes=2))).rows
    summary = summarize(rows, max_auc=0.6)
    trend = {t.model: t for t in summary.trends}["m"]
    assert (trend.first_epoch, trend.last_epoch, trend.direction) == (1, 3, "rose")
    assert trend.last_value == max(r.auc for r in rows
                                   if r.metadata["model"] == "m" and r.metadata["epoch"] == 3)
    assert [p.epoch for p in summary.dp] == [1, 2, 3]
    with pytest.raises(ValueError, match="max_auc"):
        summarize(rows, max_auc=1.5)


def test_report_of_a_run_recorded_by_the_privacy_monitor(tmp_path):
    from functools import partial

    from memberscope.monitor.core import PrivacyMonitor
    from memberscope.store import append_result

    rng = np.random.default_rng(0)
    n = 300
    labels_in, labels_out = rng.integers(0, 3, n), rng.integers(0, 3, n)
    monitor = PrivacyMonitor(labels_in, labels_out, attacks=["threshold"], epochs_per_report=1,
                             model_label="cnn <2>", audit_options={"fpr_targets": (0.01, 0.1)},
                             on_result=partial(append_result, tmp_path / "results.jsonl"))
    for epoch in (1, 2, 3):
        confident = 0.5 * epoch  # members grow more confident than non-members each epoch
        monitor.audit_logits(rng.normal(0, 1, (n, 3)) + (1 + confident) * np.eye(3)[labels_in],
                             rng.normal(0, 1, (n, 3)) + np.eye(3)[labels_out], epoch=epoch)
    page = report_html.write_run_report(tmp_path, write_figures=False).read_text("utf-8")
    checkpoints = page.split('id="checkpoints"')[1].split("</table>")[0]
    assert checkpoints.count("cnn &lt;2&gt;") == 3
    assert "audit seconds" in page  # the monitor's timing metadata is listed too
    numbers = _numbers(page)
    assert numbers["worst.auc"] == max(r.auc for r in monitor.results)


def test_report_of_results_held_in_memory(tmp_path):
    from memberscope.monitor.core import PrivacyMonitor
    from memberscope.report import write_results_report

    rng = np.random.default_rng(1)
    n = 200
    labels_in, labels_out = rng.integers(0, 3, n), rng.integers(0, 3, n)
    monitor = PrivacyMonitor(labels_in, labels_out, attacks=["threshold"], every=1,
                             model_label="in <memory>", slices=["entire"],
                             audit_options={"fpr_targets": (0.01, 0.1)})
    for epoch in (1, 2):
        monitor.audit_logits(rng.normal(0, 1, (n, 3)) + (1 + epoch) * np.eye(3)[labels_in],
                             rng.normal(0, 1, (n, 3)) + np.eye(3)[labels_out], epoch=epoch)
    path = write_results_report(monitor.results, tmp_path / "mem.html", max_auc=0.9)
    page = path.read_text("utf-8")
    assert _numbers(page)["worst.auc"] == max(r.auc for r in monitor.results)
    assert "in &lt;memory&gt;</b>: worst significant AUC" in page and 'id="fig-by_epoch"' in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mem.html"]  # nothing else written
    with pytest.raises(ValueError, match="results must be a ResultsCollection; got list"):
        write_results_report(list(monitor.results), tmp_path / "x.html")


def _exposed_section(page: str) -> str:
    return page.split('id="exposed"')[1].split("</table>")[0]


def test_exposed_table_says_when_members_tie_at_a_score(tmp_path):
    membership = np.arange(100) < 50
    tied = np.where(membership, 0.0, -1.0)
    tied[[3, 7, 11]] = 2.0  # three members share the top score, 47 share the next one
    result = AuditResult(rows=(), scores={"threshold": tied}, membership=membership,
                         labels=np.zeros(100, int))
    section = _exposed_section(report_html.write_audit_report(
        result, tmp_path / "t.html").read_text("utf-8"))
    assert "3 members at 2 (threshold); 47 members at 0 (threshold)" in section
    assert "members at this score" in section
    assert section.count('data-v="47">47</td>') == report_html.EXPOSED_ROWS - 3

    distinct = AuditResult(rows=(), scores={"threshold": np.linspace(0, 1, 100)},
                           membership=membership)
    section = _exposed_section(report_html.write_audit_report(
        distinct, tmp_path / "d.html").read_text("utf-8"))
    assert "tie" not in section and "members at this score" not in section


def _dp_card(tmp_path, epsilon_audit):
    from memberscope import ModelOutputs, audit
    from memberscope.report import write_results_report

    rng = np.random.default_rng(0)
    membership = np.arange(400) < 200
    outputs = ModelOutputs(membership=membership, labels=rng.integers(0, 2, 400),
                           loss=rng.exponential(1.0, 400))
    result = audit(outputs, attacks=["threshold"], slices=["entire"], seed=0,
                   fpr_targets=(0.1,), metadata={
        "model": "dp", "epoch": 3, "epsilon": 3.53, "delta": 1e-5,
        "epsilon_audit": epsilon_audit})
    page = write_results_report(ResultsCollection(list(result.rows)),
                                tmp_path / "dp.html").read_text("utf-8")
    card = page[page.index('id="dp"'):]
    return re.sub(r"<[^>]+>", "", card[:card.index("</div>")])


@pytest.mark.parametrize(("white_box", "verdict"), [(1.04, "consistent"), (4.2, "INCONSISTENT")])
def test_dp_card_shows_the_one_run_canary_bound_and_judges_it(tmp_path, white_box, verdict):
    card = _dp_card(tmp_path, {
        "white_box": white_box, "black_box": None, "method": "approx_dp", "assumption": None,
        "m": 1000, "alpha": 0.05, "delta": 1e-5,
        "by_method": {"approx_dp": {"white_box": white_box},
                      "gaussian_fdp": {"white_box": white_box + 1.0}}})
    assert f"one-run canary audit ε ≥ {white_box:.2f} (white-box)" in card
    assert "valid for any (ε, δ)-DP mechanism" in card
    assert f"assuming a Gaussian trade-off curve (μ-GDP), the canaries show ε ≥ " \
           f"{white_box + 1:.2f} (white-box)" in card
    assert f"({verdict}:" in card and "provably" not in card
    # canary bounds recorded without guess counts keep their 95%: 97.5% + 95% - 100% together
    assert "at 92% confidence for all together" in card


def test_dp_card_reads_an_old_record_by_what_it_was(tmp_path):
    # Before issue 17 the headline was the Gaussian-assumption bound ("fdp"): above the
    # accountant's ε it refutes the Gaussian model only; Steinke's bound is the verdict's.
    card = _dp_card(tmp_path, {
        "white_box": 4.2, "black_box": None, "method": "fdp", "m": 1000, "alpha": 0.05,
        "delta": 1e-5, "by_method": {"steinke": {"white_box": 1.1}, "fdp": {"white_box": 4.2}}})
    assert "one-run canary audit ε ≥ 1.10 (white-box), valid for any (ε, δ)-DP mechanism" in card
    assert "assuming a Gaussian trade-off curve (μ-GDP), the canaries show ε ≥ 4.20" in card
    assert "evidence against the Gaussian model, not against (ε, δ)-DP itself" in card
    assert "(consistent:" in card


def test_split_checks_never_rank_exposed_examples(tmp_path):
    # Non-members brighter than members: the blind check separates them far better than the
    # model's loss, yet its scores rank inputs, not what the model exposes.
    from memberscope import ModelOutputs, audit

    rng = np.random.default_rng(4)
    n = 300
    inputs_train = rng.random((n, 6, 6))
    inputs_test = rng.random((n, 6, 6)) + 0.5
    labels_train, labels_test = rng.integers(0, 2, n), rng.integers(0, 2, n)
    logits_train = rng.normal(size=(n, 2)) + 0.3 * np.eye(2)[labels_train]
    logits_test = rng.normal(size=(n, 2))
    outputs = ModelOutputs.from_train_test(
        logits_train=logits_train, logits_test=logits_test, labels_train=labels_train,
        labels_test=labels_test, inputs_train=inputs_train, inputs_test=inputs_test)
    result = audit(outputs, attacks=["threshold"], slices=["entire"], seed=0)
    assert "blind" in result.scores
    images = np.concatenate([inputs_train, inputs_test])
    page = report_html.write_audit_report(result, tmp_path / "r.html",
                                          images=images).read_text("utf-8")
    exposed = page.split('id="exposed"')[1].split("</table>")[0]
    assert "threshold" in exposed and "blind" not in exposed
    top = int(np.argmax(np.where(result.membership, result.scores["threshold"], -np.inf)))
    assert re.search(rf'<td class="n" data-v="{top}">{top}</td>', exposed)
