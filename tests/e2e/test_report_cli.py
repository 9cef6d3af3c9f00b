"""``memberscope report`` and ``memberscope audit --out`` end to end, in process."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from tests.helpers import report_synth as synth

from memberscope.cli import main

MARKUP_LABEL = "[bold red]loud[/bold red]"


def test_report_on_a_run_directory_prints_summary_and_writes_html(tmp_path, capsys):
    run_dir = synth.write_synthetic_run(tmp_path / "run", models=(MARKUP_LABEL,),
                                        epochs=(1, 2, 3), n_classes=2)
    out = tmp_path / "out" / "page.html"
    assert main(["report", str(run_dir), "--out", str(out), "--max-auc", "0.7"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and not (run_dir / "report.html").exists()
    assert "memberscope privacy summary" in printed
    assert MARKUP_LABEL in printed.replace("\n", "")  # shown literally, not as rich markup
    assert "suggested checkpoint: most accurate checkpoint with worst significant AUC ≤ 0.7" \
        in printed
    assert "DP-Adam" in printed and "trend:" in printed
    assert f"wrote {out}" in printed
    assert "[bold red]loud[/bold red]" in out.read_text("utf-8")  # in HTML, no markup either


def test_report_on_a_jsonl_file_reports_that_file(tmp_path, capsys):
    from memberscope.store import read_jsonl, write_jsonl

    run_dir = synth.write_synthetic_run(tmp_path / "run", models=("kept", "left out"),
                                        epochs=(1, 2), n_classes=2, dp_model=None)
    subset = run_dir / "kept.jsonl"
    kept = [r for r in read_jsonl(run_dir / "results.jsonl")
            if r.get("metadata", {}).get("model") == "kept"]
    write_jsonl(subset, kept)
    assert main(["report", str(subset), "--out", str(tmp_path / "kept.html")]) == 0
    printed = capsys.readouterr().out
    page = (tmp_path / "kept.html").read_text("utf-8")
    rows = page.split('id="all-results"')[1].split("</tbody>")[0]
    n_rows = sum(r["kind"] == "row" for r in kept)
    assert rows.count("<tr>") == n_rows + 1  # + the header row
    assert "left out" not in page and "left out" not in printed
    assert f"{n_rows} results" in page


def test_report_on_an_audit_directory_and_on_result_json(tmp_path, capsys):
    synth.write_synthetic_audit(tmp_path)
    assert main(["report", str(tmp_path / "result.json"), "--out",
                 str(tmp_path / "a.html")]) == 0
    printed = capsys.readouterr().out
    assert "worst: threshold on" in printed and "entire_dataset" in printed
    assert (tmp_path / "a.html").is_file()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file()


def test_report_rejects_what_it_cannot_read(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    synth.write_synthetic_run(tmp_path / "run", models=("m",), epochs=(1,), n_classes=1,
                              dp_model=None)
    assert main(["report", str(tmp_path / "run"), "--max-auc", "1.5"]) == 2
    assert "--max-auc must be within [0, 1]" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "run"), "--metric", "aucc"]) == 2
    assert "unknown metric 'aucc' (did you mean 'auc'?)" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "run"), "--metric", "tpr@2"]) == 2
    assert "F of tpr@F must be a number in (0, 1)" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "run"), "--metric", "ppv", "--max-auc", "0.6"]) == 2
    assert "cannot be combined with --metric ppv" in capsys.readouterr().err


def test_report_ranks_by_the_metric_asked_for(tmp_path, capsys):
    run_dir = synth.write_synthetic_run(tmp_path / "run", models=("m",), epochs=(1, 2),
                                        n_classes=2, dp_model=None)
    assert main(["report", str(run_dir), "--metric", "tpr@0.01"]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("model "))
    assert "worst TPR@1%" in header
    # Ranked by each TPR's own test: epoch 2's 0.043 (21 of 500 members at 5 false
    # positives) beats chance, epoch 1's 0.024 does not, so no trend rests on epoch 1.
    assert "worst significant TPR@1% 0.043" in printed
    assert "trend: m:" not in printed
    page = (run_dir / "report.html").read_text("utf-8")
    assert "worst TPR@1%" in page.split('id="checkpoints"')[1].split("</thead>")[0]


def test_audit_out_writes_the_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 400
    logits_train = rng.normal(0, 1, (n, 3)) + 2.0 * np.eye(3)[np.arange(n) % 3]
    logits_test = rng.normal(0, 1, (n, 3)) + 0.8 * np.eye(3)[np.arange(n) % 3]
    np.savez(tmp_path / "outputs.npz", logits_train=logits_train, logits_test=logits_test,
             labels_train=np.arange(n) % 3, labels_test=np.arange(n) % 3)
    out = tmp_path / "audit"
    assert main(["audit", str(tmp_path / "outputs.npz"), "--attacks", "threshold",
                 "--out", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (out / "report.html").read_text("utf-8")
    assert 'id="fig-roc"' in page and 'id="worst"' in page


def test_no_signal_audit_then_report_say_no_leakage(tmp_path, capsys):
    """On data without signal neither ``audit`` nor ``report`` names a worst row or a verdict."""
    rng = np.random.default_rng(4)
    n = 600
    labels = np.arange(n) % 3
    np.savez(tmp_path / "outputs.npz", logits_train=rng.normal(0, 1, (n, 3)),
             logits_test=rng.normal(0, 1, (n, 3)), labels_train=labels, labels_test=labels)
    out = tmp_path / "audit"
    assert main(["audit", str(tmp_path / "outputs.npz"), "--attacks", "threshold",
                 "--slices", "entire,class", "--out", str(out), "--no-report"]) == 0
    printed = capsys.readouterr().out
    expected = "no leakage distinguishable from chance (4 results tested)"
    assert expected in printed and "worst:" not in printed
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert expected in printed and "worst:" not in printed
    page = (out / "report.html").read_text("utf-8")
    assert expected.capitalize() in page
    assert not any(w in page for w in ("Slight:", "Weak:", "Moderate:", "Strong:"))
