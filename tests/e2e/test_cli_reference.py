"""The CLI end to end: `memberscope reference train`, then `memberscope audit --reference`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memberscope.cli import main
from memberscope.outputs import ReferenceOutputs, load_reference_npz


def _synthetic_files(tmp_path, n: int = 600, m: int = 8):
    rng = np.random.default_rng(0)
    membership = np.zeros((m, n), dtype=bool)
    for j in range(0, m, 2):
        membership[j, rng.permutation(n)[: n // 2]] = True
        membership[j + 1] = ~membership[j]
    difficulty = rng.normal(0, 2, n)
    signal = difficulty + membership + rng.normal(0, 0.5, (m, n))
    target_in = rng.random(n) < 0.5
    target_signal = difficulty + target_in + rng.normal(0, 0.5, n)
    ReferenceOutputs(signal=signal, true_class_prob=1 / (1 + np.exp(-signal)),
                     membership=membership).save_npz(tmp_path / "ref.npz")
    loss = np.log1p(np.exp(-target_signal))  # -log sigmoid(signal)
    np.savez(tmp_path / "target.npz", membership=target_in, labels=np.zeros(n, int), loss=loss)
    return tmp_path / "target.npz", tmp_path / "ref.npz"


def test_audit_with_reference_runs_lira_and_rmia(tmp_path, capsys) -> None:
    target, ref = _synthetic_files(tmp_path)
    code = main(["audit", str(target), "--attacks", "threshold,lira,rmia", "--slices", "entire",
                 "--reference", str(ref), "--out", str(tmp_path / "out"), "--no-report",
                 "--fpr", "0.01,0.1"])
    assert code == 0
    rows = {r["attack"]: r for r in json.loads((tmp_path / "out" / "result.json").read_text())[
        "rows"]}
    assert rows["lira"]["auc"] > rows["threshold"]["auc"] + 0.1
    assert rows["rmia"]["auc"] > rows["threshold"]["auc"] + 0.1
    assert "lira" in capsys.readouterr().out


def test_audit_reference_errors_are_one_line_exit_2(tmp_path, capsys) -> None:
    target, _ = _synthetic_files(tmp_path)
    code = main(["audit", str(target), "--attacks", "lira", "--reference",
                 str(tmp_path / "absent.npz"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "absent.npz' does not exist" in capsys.readouterr().err
    code = main(["audit", str(target), "--attacks", "lira", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "needs reference models" in capsys.readouterr().err


def test_too_few_reference_models_are_said_not_silent(tmp_path, capsys) -> None:
    """One model: LiRA cannot run on any slice (exit 3); one complementary pair: it runs,
    with a warning printed and kept in result.json."""
    target, ref = _synthetic_files(tmp_path, m=2)
    pair = load_reference_npz(ref)
    pair.select_models([0]).save_npz(tmp_path / "one.npz")
    capsys.readouterr()
    code = main(["audit", str(target), "--attacks", "lira", "--slices", "entire,class",
                 "--reference", str(tmp_path / "one.npz"), "--out", str(tmp_path / "o1")])
    captured = capsys.readouterr()
    assert code == 3
    assert "skipped entire_dataset / lira: " in captured.out
    assert captured.err.startswith("memberscope audit: error: nothing was measured: every "
                                   "requested attack (lira) was skipped on every slice")
    code = main(["audit", str(target), "--attacks", "lira", "--slices", "entire",
                 "--reference", str(ref), "--out", str(tmp_path / "o2"), "--no-report"])
    out = capsys.readouterr().out
    assert code == 0
    warning = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "'in' and 'out' signals cannot be estimated" in warning[0]
    document = json.loads((tmp_path / "o2" / "result.json").read_text())
    assert document["notes"] == [warning[0].removeprefix("warning: ")]


def test_attacks_lists_the_minimum_reference_models(capsys) -> None:
    capsys.readouterr()
    assert main(["attacks"]) == 0
    out = capsys.readouterr().out
    assert ("lira: online: 2 models (1 'in' + 1 'out' per example), 4 to estimate a variance"
            in out)
    assert ("rmia: online: 1 model; offline: 2 (1 'out' per example); offline with a='tune': 4"
            in out)


@pytest.mark.torch
def test_reference_train_then_audit(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    common = ["reference", "train", "--data", "digits", "--population", "240", "--epochs", "2",
              "--num-conv", "1", "--batch-size", "32", "--learning-rate", "0.01",
              "--queries", "identity,shift:1:0", "--cache", str(tmp_path / "cache"),
              "--out", str(tmp_path / "ref.npz"), "--target-out", str(tmp_path / "target.npz")]
    assert main([*common, "--models", "2"]) == 0
    assert main([*common, "--models", "4"]) == 0  # reuses the first two and the target
    err = capsys.readouterr().err
    assert err.count("from cache") == 3
    ref = load_reference_npz(tmp_path / "ref.npz")
    assert ref.signal.shape == (4, 240, 2) and ref.has_target_queries
    np.testing.assert_array_equal(ref.membership.sum(axis=0), 2)
    assert main(["audit", str(tmp_path / "target.npz"), "--attacks", "threshold,lira,rmia",
                 "--slices", "entire", "--reference", str(tmp_path / "ref.npz"), "--no-report",
                 "--out", str(tmp_path / "audit"), "--fpr", "0.1"]) == 0
    document = json.loads((tmp_path / "audit" / "result.json").read_text())
    rows = document["rows"]
    # The reference models that left each example out are the split guard's control.
    assert {r["attack"] for r in rows} == {"threshold", "lira", "rmia", "control"}
    assert document["split_guard"]["control_source"] == "reference models"
