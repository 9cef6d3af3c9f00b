"""`memberscope audit` and `memberscope attacks` end to end, against the contract in DESIGN.md."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import memberscope
from memberscope import list_attacks, roc_metrics
from memberscope.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")

SRC = Path(memberscope.__file__).resolve().parents[1]
ROW_KEYS = {"slice", "attack", "n_members", "n_nonmembers", "auc", "advantage", "ppv",
            "tpr_at_fpr", "epsilon_lower_bound", "p_value", "significant", "notes", "metadata",
            "beyond_split_p_value", "beyond_split_significant", "beyond_split_guard"}


def tiny_outputs(seed: int = 0, n_members: int = 120, n_nonmembers: int = 80,
                 num_classes: int = 3) -> dict[str, np.ndarray]:
    """Members first; class 2 has few non-members, so its slice is skipped."""
    rng = np.random.default_rng(seed)
    n = n_members + n_nonmembers
    membership = np.arange(n) < n_members
    labels = np.r_[rng.integers(0, num_classes, n_members),
                   rng.integers(0, num_classes - 1, n_nonmembers - 4), [2, 2, 2, 2]]
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), labels] += 1.0 + 1.5 * membership
    return {"membership": membership, "labels": labels, "logits": logits}


def ours_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def tfp_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    members = arrays["membership"]
    np.savez(path, **{f"{key}_{side}": value[mask]
                      for key, value in arrays.items() if key != "membership"
                      for side, mask in (("train", members), ("test", ~members))})
    return path


def run_audit(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_result_contract(document: dict) -> None:
    assert set(document) == {"schema_version", "memberscope_version", "alpha", "correction",
                             "rows", "skipped", "split_guard"}
    assert document["split_guard"]["verdict"] in ("same-distribution", "shifted",
                                                  "not checked")
    assert document["schema_version"] == 3
    assert (document["alpha"], document["correction"]) == (0.05, "holm")
    assert document["memberscope_version"] == memberscope.__version__
    assert document["rows"]
    for row in document["rows"]:
        assert set(row) == ROW_KEYS, set(row) ^ ROW_KEYS
        assert isinstance(row["slice"], str) and isinstance(row["attack"], str)
        assert isinstance(row["n_members"], int) and isinstance(row["n_nonmembers"], int)
        for key in ("auc", "advantage", "ppv"):
            assert isinstance(row[key], float) and 0 <= row[key] <= 1
        assert set(row["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
        for target, value in row["tpr_at_fpr"].items():
            # null exactly where the slice's non-members cannot resolve the FPR, with a note
            assert (value is None) == (row["n_nonmembers"] * float(target) < 1)
            assert value is None or 0 <= value <= 1
            assert (value is None) == any(f"tpr_at_fpr[{target}] is null" in note
                                          for note in row["notes"])
        assert isinstance(row["p_value"], float) and 0 < row["p_value"] <= 1
        assert isinstance(row["significant"], bool)
        epsilon = row["epsilon_lower_bound"]
        assert set(epsilon) == {"point", "confident", "alpha", "delta", "held_out"}
        assert set(epsilon["held_out"]) == {"tp", "fp", "n_members", "n_nonmembers", "forward"}
        assert (epsilon["alpha"], epsilon["delta"]) == (0.05, 0.0)
        assert epsilon["confident"] >= 0 and epsilon["point"] >= 0
        assert isinstance(row["metadata"], dict)
    for entry in document["skipped"]:
        assert {"slice", "attack", "reason"} <= set(entry) and entry["reason"]


@pytest.mark.parametrize("naming", ["ours", "tfp"])
def test_audit_writes_the_contract_result(naming, tmp_path, capsys):
    arrays = tiny_outputs()
    path = (ours_npz if naming == "ours" else tfp_npz)(tmp_path / "outputs.npz", arrays)
    out = tmp_path / "out"
    code, stdout, stderr = run_audit(capsys, ["audit", str(path), "--attacks", "threshold,lr",
                                              "--slices", "entire,class", "--out", str(out),
                                              "--no-report"])
    assert code == 0, stderr
    document = json.loads((out / "result.json").read_text())
    check_result_contract(document)
    pairs = [(r["slice"], r["attack"]) for r in document["rows"]]
    assert pairs == [(s, a) for a in ("threshold", "lr")
                     for s in ("entire_dataset", "class=0", "class=1")]
    assert [(s["slice"], s["attack"]) for s in document["skipped"]] == [
        ("class=2", "threshold"), ("class=2", "lr")]
    assert "4 non-members" in document["skipped"][0]["reason"]
    entire = document["rows"][0]
    assert (entire["n_members"], entire["n_nonmembers"]) == (120, 80)
    assert entire["metadata"] == {"source": "outputs.npz"}
    # The loss-threshold row is exactly the metric of −cross-entropy on the input.
    logits, labels = arrays["logits"], arrays["labels"]
    loss = np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(labels)), labels]
    expected = roc_metrics(-loss, arrays["membership"])
    assert entire["auc"] == pytest.approx(expected["auc"], abs=1e-12)
    assert entire["advantage"] == pytest.approx(expected["advantage"], abs=1e-12)
    assert entire["ppv"] == pytest.approx(expected["ppv"], abs=1e-12)
    assert entire["auc"] > 0.6

    with np.load(out / "arrays.npz", allow_pickle=False) as archive:
        arrays_out = {key: archive[key] for key in archive.files}
    np.testing.assert_array_equal(arrays_out["membership"], arrays["membership"])
    np.testing.assert_array_equal(arrays_out["labels"], arrays["labels"])
    assert arrays_out["scores_threshold"] == pytest.approx(-loss)
    assert arrays_out["scores_lr"].shape == (200,)
    for index in range(len(document["rows"])):
        fpr, tpr = arrays_out[f"roc_{index}_fpr"], arrays_out[f"roc_{index}_tpr"]
        assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0

    header = stdout.splitlines()[0].split()
    assert header[:5] == ["slice", "attack", "members", "non-members", "AUC"]
    assert {"TPR@0.1%", "TPR@1%", "TPR@10%"} <= set(header)
    for slice_name, attack in pairs:
        assert any(line.split()[:2] == [slice_name, attack] for line in stdout.splitlines())
    assert "skipped class=2 / lr: too small" in stdout
    assert "result.json" in stdout.splitlines()[-1]


def test_both_namings_give_the_same_result(tmp_path, capsys):
    arrays = tiny_outputs(seed=3)
    documents = []
    for writer in (ours_npz, tfp_npz):
        path = writer(tmp_path / f"{writer.__name__}.npz", arrays)
        out = tmp_path / writer.__name__
        code, _, stderr = run_audit(capsys, ["audit", str(path), "--out", str(out),
                                             "--no-report", "--seed", "5"])
        assert code == 0, stderr
        document = json.loads((out / "result.json").read_text())
        for entry in document["rows"] + document["skipped"] + [document["split_guard"]]:
            entry["metadata"].pop("source")
        documents.append(document)
    assert documents[0] == documents[1]


def test_probs_loss_weights_and_options(tmp_path, capsys):
    arrays = tiny_outputs(seed=1)
    logits = arrays.pop("logits")
    arrays["probs"] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    arrays["sample_weight"] = np.r_[np.ones(100), np.full(100, 2.0)]
    path = ours_npz(tmp_path / "probs.npz", arrays)
    code, stdout, stderr = run_audit(capsys, [
        "audit", str(path), "--attacks", "threshold,threshold_entropy", "--slices",
        "entire,correctness,loss_percentile", "--out", str(tmp_path / "o"), "--no-report",
        "--fpr", "0.05,0.2", "--alpha", "0.1", "--delta", "1e-5"])
    assert code == 0, stderr
    document = json.loads((tmp_path / "o" / "result.json").read_text())
    slices = {r["slice"] for r in document["rows"]}
    assert {"entire_dataset", "correctly_classified=True"} <= slices
    assert all(set(r["tpr_at_fpr"]) == {"0.05", "0.2"} for r in document["rows"])
    assert all(r["epsilon_lower_bound"]["alpha"] == 0.1 for r in document["rows"])
    assert all(r["epsilon_lower_bound"]["delta"] == 1e-5 for r in document["rows"])
    assert "TPR@5%" in stdout.splitlines()[0]

    loss_only = {"labels_train": arrays["labels"][:120], "labels_test": arrays["labels"][120:],
                 "loss_train": np.linspace(0, 1, 120), "loss_test": np.linspace(0.5, 2, 80)}
    np.savez(tmp_path / "loss.npz", **loss_only)
    code, stdout, stderr = run_audit(capsys, [
        "audit", str(tmp_path / "loss.npz"), "--attacks", "threshold,threshold_entropy",
        "--slices", "entire,correctness", "--out", str(tmp_path / "l"), "--no-report"])
    assert code == 0, stderr
    document = json.loads((tmp_path / "l" / "result.json").read_text())
    assert [(r["slice"], r["attack"]) for r in document["rows"]] == [
        ("entire_dataset", "threshold")]
    skipped = {(s["slice"], s["attack"]) for s in document["skipped"]}
    assert skipped == {("correctly_classified", "threshold"),
                       ("entire_dataset", "threshold_entropy"),
                       ("correctly_classified", "threshold_entropy")}


def test_default_out_dir_and_low_resolution_note(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ours_npz(tmp_path / "model.npz", tiny_outputs())
    code, stdout, _ = run_audit(capsys, ["audit", "model.npz", "--attacks", "threshold",
                                         "--no-report"])
    assert code == 0
    assert (tmp_path / "audit-model" / "result.json").is_file()
    # 80 non-members in all: TPR at 0.1% and 1% FPR is null on every row, and the note says so.
    for target in ("0.001", "0.01"):
        assert re.search(rf"note: TPR at FPR {target} is stored as null on (\d+) of \1 rows",
                         stdout), stdout


def test_attacks_lists_every_attack(capsys):
    capsys.readouterr()
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0] for line in lines[2:] if line.strip()}
    assert {a.name for a in list_attacks()} <= listed
    assert {"threshold", "threshold_entropy", "lr", "mlp", "rf", "knn"} <= listed


def test_console_entry_point_exit_codes(tmp_path):
    """The real process: exit 0 on success, 2 with one stderr line on bad input."""
    ours_npz(tmp_path / "good.npz", tiny_outputs())
    (tmp_path / "bad.npz").write_text("not an npz")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-c",
               "import sys; from memberscope.cli import main; sys.exit(main())"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120, check=False)

    good = run("audit", "good.npz", "--attacks", "threshold", "--no-report", "--out", "o")
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "o" / "result.json").is_file()
    bad = run("audit", "bad.npz")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "memberscope audit: error: input file 'bad.npz' is not an .npz archive"]


def test_everything_skipped_is_still_a_result_but_exits_3(tmp_path, capsys):
    np.savez(tmp_path / "small.npz", membership=np.arange(10) < 5, labels=np.zeros(10, int),
             loss=np.arange(10.0))
    code, stdout, stderr = run_audit(capsys, ["audit", str(tmp_path / "small.npz"), "--out",
                                              str(tmp_path / "o")])
    assert code == 3, stderr
    assert stderr.strip().splitlines() == [
        "memberscope audit: error: nothing was measured: every requested attack (threshold, "
        f"lr) was skipped on every slice; the reasons are listed above and in "
        f"{tmp_path / 'o' / 'result.json'}"]
    assert not (tmp_path / "o" / "report.html").exists()
    document = json.loads((tmp_path / "o" / "result.json").read_text())
    assert document["rows"] == []
    assert [(s["slice"], s["attack"]) for s in document["skipped"]] == [
        ("entire_dataset", "threshold"), ("class=0", "threshold"),
        ("entire_dataset", "lr"), ("class=0", "lr")]
    assert stdout.count("skipped ") == 4


# A sitecustomize that makes the optional extras unimportable, as on a core-only install.
_BLOCK_EXTRAS = """
import sys

class _CoreOnly:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("matplotlib", "rich", "pandas"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _CoreOnly())
"""


def test_core_only_install_prints_the_table_and_writes_the_arrays(tmp_path):
    """Without matplotlib and rich: table, result.json, arrays.npz, one line about the
    report extra, exit 0 (issue 12)."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCK_EXTRAS)
    tfp_npz(tmp_path / "outputs.npz", tiny_outputs())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(blocker), str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    probe = subprocess.run([sys.executable, "-c", "import matplotlib"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 1 and "No module named 'matplotlib'" in probe.stderr
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from memberscope.cli import main; sys.exit(main())",
         "audit", "outputs.npz", "--attacks", "threshold,lr", "--slices", "entire,class",
         "--out", "audit-out"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["slice", "attack"]
    assert any(line.split()[:2] == ["entire_dataset", "lr"] for line in lines)
    about_report = [line for line in lines if "report.html" in line]
    assert about_report == ["report.html not written: the HTML report needs the 'matplotlib' "
                            "package: pip install 'memberscope[report]'"]
    assert sorted(p.name for p in (tmp_path / "audit-out").iterdir()) == [
        "arrays.npz", "result.json"]
    check_result_contract(json.loads((tmp_path / "audit-out" / "result.json").read_text()))


def test_knn_on_small_class_slices_is_skipped_not_a_crash(tmp_path, capsys):
    path = ours_npz(tmp_path / "small.npz", tiny_outputs(n_members=60, n_nonmembers=45))
    code, stdout, stderr = run_audit(capsys, ["audit", str(path), "--attacks", "threshold,knn",
                                              "--out", str(tmp_path / "o"), "--no-report"])
    assert code == 0, stderr
    document = json.loads((tmp_path / "o" / "result.json").read_text())
    assert ("entire_dataset", "knn") in {(r["slice"], r["attack"]) for r in document["rows"]}
    knn_skips = [s for s in document["skipped"]
                 if s["attack"] == "knn" and s["reason"].startswith("n_neighbors=25")]
    assert knn_skips and all("lower the option n_neighbors" in s["reason"] for s in knn_skips)
    assert "skipped class=0 / knn: n_neighbors=25 but a training fold" in stdout
