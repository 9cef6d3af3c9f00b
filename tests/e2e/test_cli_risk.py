"""``memberscope risk`` end to end: on a real tiny run directory, on one traces file, and on an
audit .npz carrying ``loss_trace_train``, with the LiRA TPR estimate wherever the members' and
non-members' losses are at hand; bad input gets exit code 2 and one clear line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from memberscope import rundir
from memberscope.cli import main
from memberscope.lira_estimate import MEASURED_ERROR, estimate_lira_tpr, no_signal_tpr
from memberscope.risk import LossTraces, trace_risk
from memberscope.store import read_jsonl


def _audit_npz(path: Path, *, n_members: int = 30, n_nonmembers: int = 20, epochs: int = 6,
               member_loss_scale: float = 0.5, **extra: object) -> Path:
    rng = np.random.default_rng(0)
    trace = rng.exponential(1.0, (n_members, epochs)) * np.linspace(1, 0.1, epochs)
    trace[rng.random(trace.shape) < 0.2] = np.nan  # Poisson batches leave holes
    arrays = {"loss_train": rng.exponential(member_loss_scale, n_members),
              "loss_test": rng.exponential(1, n_nonmembers),
              "labels_train": rng.integers(0, 3, n_members),
              "labels_test": rng.integers(0, 3, n_nonmembers),
              "loss_trace_train": trace, **extra}
    np.savez(path, **arrays)
    return path


def test_an_audit_npz_with_loss_trace_train(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    source = _audit_npz(tmp_path / "outputs.npz")
    out = tmp_path / "out"
    assert main(["risk", str(source), "--top", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a ranking, not a membership claim" in printed.lower()
    assert "onion effect" in printed and "re-audit after removing data" in printed
    document = json.loads((out / "risk.json").read_text())
    assert document["schema_version"] == 2 and document["method"] == "std_then_fit"
    assert document["min_entries"] == 2 and document["top"] == 5
    (model,) = document["models"]
    arrays = np.load(source)
    trace, labels = arrays["loss_trace_train"], arrays["labels_train"]
    risk = trace_risk(trace)
    expected = sorted((i for i in range(30) if not np.isnan(risk[i])),
                      key=lambda i: (-risk[i], i))[:5]
    assert [e["index"] for e in model["examples"]] == expected
    assert [e["rank"] for e in model["examples"]] == [1, 2, 3, 4, 5]
    for example in model["examples"]:
        row = trace[example["index"]]
        recorded = row[~np.isnan(row)]
        assert example["risk"] == pytest.approx(risk[example["index"]])
        assert example["label"] == labels[example["index"]]
        assert example["loss"] == pytest.approx(float(np.float32(recorded[-1])))
        assert example["entries"] == len(recorded)
    assert model["n_examples"] == 30 and model["n_scored"] == int((~np.isnan(risk)).sum())
    assert model["summary"]["max"] == pytest.approx(np.nanmax(risk))
    assert str(expected[0]) in printed


def test_a_traces_file_and_a_folder_of_them(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    losses = np.tile(np.linspace(2.0, 0.0, 6, dtype=np.float32), (4, 1))
    losses[2] = 0.5  # flat: risk 0
    traces = LossTraces(losses=losses, epochs=np.arange(1, 7), example_index=[10, 11, 12, 13],
                        labels=[0, 1, 2, 3], model="cnn")
    path = rundir.write_traces(tmp_path / "run", traces)
    assert main(["risk", str(path), "--out", str(tmp_path / "a")]) == 0
    assert main(["risk", str(tmp_path / "run"), "--out", str(tmp_path / "b")]) == 0
    for out in ("a", "b"):
        (model,) = json.loads((tmp_path / out / "risk.json").read_text())["models"]
        assert model["model"] == "cnn"
        assert [e["index"] for e in model["examples"]] == [10, 11, 13, 12]
        # Traces alone hold no non-member's loss: no estimate, and why.
        assert model["lira_tpr_estimate"] is None
    printed = capsys.readouterr().out
    assert "cnn: 4 members, 6 recorded (epochs 1-6)" in printed
    assert "No LiRA TPR estimate: a traces file holds no non-members' losses" in printed
    assert "No LiRA TPR estimate: the run kept no 'threshold' scores" in printed


def test_the_lira_tpr_estimate_of_an_audit_npz(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    estimates, no_signal = {}, {}
    for name, member_loss_scale in (("leaky", 0.5), ("chance", 1.0)):
        source = _audit_npz(tmp_path / f"{name}.npz", n_members=3000, n_nonmembers=3000,
                            member_loss_scale=member_loss_scale)
        assert main(["risk", str(source), "--out", str(tmp_path / name)]) == 0
        (model,) = json.loads((tmp_path / name / "risk.json").read_text())["models"]
        estimate = model["lira_tpr_estimate"]
        arrays = np.load(source)
        expected = estimate_lira_tpr(arrays["loss_train"], arrays["loss_test"],
                                     fprs=(0.01, 0.001))
        assert [(e["fpr"], e["tpr"]) for e in estimate["tpr_at_fpr"]] == \
            [(e.fpr, pytest.approx(e.tpr, rel=1e-12)) for e in expected]
        assert estimate["estimate"] is True and estimate["method"] == "gaussian"
        assert estimate["measured_error"] == MEASURED_ERROR["gaussian"]
        assert (estimate["n_members"], estimate["n_nonmembers"], estimate["epoch"]) == \
            (3000, 3000, None)
        assert estimate["losses_from"] == f"{name}.npz"
        estimates[name] = estimate["tpr_at_fpr"][0]["tpr"]
        shuffled = no_signal_tpr(arrays["loss_train"], arrays["loss_test"], fprs=(0.01, 0.001))
        assert [e["no_signal_tpr"] for e in estimate["tpr_at_fpr"]] == \
            [shuffled[0.01], shuffled[0.001]]
        no_signal[name] = shuffled[0.01]
        printed = capsys.readouterr().out
        assert (f"{estimate['tpr_at_fpr'][0]['tpr']:.2%} at 1.0% FPR (chance 1.0%; "
                f"{shuffled[0.01]:.2%} with membership shuffled)") in printed
        assert "not a measurement" in printed and "12 of 12" in printed
        assert "DP-trained models not measured" in printed
    # Members fitted twice as well as non-members leak; the same losses do not, and sit at
    # the estimator's own no-signal level (above TPR = FPR).
    assert estimates["leaky"] > 0.05 > 0.02 > estimates["chance"]
    assert estimates["leaky"] > 3 * no_signal["leaky"]
    assert estimates["chance"] < 1.5 * no_signal["chance"]


def test_too_short_traces_exit_3_naming_min_entries(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = _audit_npz(tmp_path / "short.npz", epochs=3)
    assert main(["risk", str(source), "--method", "iqr", "--out", str(tmp_path / "o")]) == 3
    assert "no example has the 5 recorded epochs iqr needs; lower --min-entries" in \
        capsys.readouterr().err
    capsys.readouterr()
    assert main(["risk", str(source), "--method", "iqr", "--min-entries", "2",
                 "--out", str(tmp_path / "o")]) == 0
    assert "the top 1% have risk >= " in capsys.readouterr().out  # in loss units
    assert main(["risk", str(source), "--out", str(tmp_path / "o")]) == 0  # default needs 2
    printed = capsys.readouterr().out  # percentiles: their top 1% is ~0.99 by construction
    assert "risk is a percentile among the members" in printed
    assert "the top 1% have risk" not in printed


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: _audit_npz(p, loss_trace_train=np.ones((29, 6))),
     r"loss_trace_train has 29 rows but the file has 30 members"),
    (lambda p: _audit_npz(p, loss_trace_train=np.array([["a"] * 6] * 30)),
     r"loss_trace_train has dtype <U1; expected numbers"),
    (lambda p: _audit_npz(p, loss_trace_train=np.ones(30)),
     r"loss_trace_train must be 2-dimensional \(n_members, n_epochs\)"),
    (lambda p: _audit_npz(p, loss_trace_train=np.full((30, 6), np.inf)),
     r"loss_trace_train contains 180 infinite value"),
    (lambda p: np.savez(p, loss_train=np.ones(3), loss_test=np.ones(3)) or p,
     r"has no 'loss_trace_train' array"),
    (lambda p: p.parent / "missing.npz", r"does not exist"),
    (lambda p: p.parent, r"holds no loss traces \(traces/\*\.npz\)"),
])
def test_bad_input_exits_2_with_one_clear_line(tmp_path: Path, make, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = make(tmp_path / "bad.npz")
    assert main(["risk", str(source), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("memberscope risk: error:") and "\n" not in err
    assert re.search(message, err), err


def test_unknown_method_suggests_the_closest(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", str(_audit_npz(tmp_path / "x.npz")), "--method", "iq"]) == 2
    assert "did you mean 'iqr'?" in capsys.readouterr().err


def test_the_audit_report_ranks_members_by_trace_risk_too(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    source = _audit_npz(tmp_path / "outputs.npz")
    assert main(["audit", str(source), "--attacks", "threshold", "--slices", "entire",
                 "--out", str(tmp_path / "audit")]) == 0
    page = (tmp_path / "audit" / "report.html").read_text()
    assert 'id="trace-exposed"' in page and "not a claim that any of them is exposed" in page
    assert "re-audit after removing data" in page
    risk = trace_risk(np.load(source)["loss_trace_train"])
    top = int(np.nanargmax(risk))
    assert f"{risk[top]:.4g}" in page


@pytest.mark.torch
def test_a_real_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("opacus")
    pytest.importorskip("matplotlib")  # the run's report.html
    config = tmp_path / "tiny.toml"
    config.write_text("""
name = "risk"
seed = 1
[dataset]
name = "digits"
max_train = 200
max_test = 100
[training]
epochs = 5
epochs_per_report = 5
batch_size = 20
learning_rate = 0.01
threads = 1
[audit]
attacks = ["threshold"]
slices = ["entire"]
[[variants]]
label = "mlp"
model = "mlp"
hidden = [16]
[[variants]]
label = "mlp, DP"
model = "mlp"
hidden = [16]
[variants.dp]
noise_multiplier = 1.0
""")
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["risk", str(run_dir), "--top", "3", "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    document = json.loads((tmp_path / "r" / "risk.json").read_text())
    assert [m["model"] for m in document["models"]] == ["mlp", "mlp, DP"]
    for model in document["models"]:
        traces = rundir.read_traces(rundir.traces_path(run_dir, model["model"]))
        assert model["epochs"] == [1, 2, 3, 4, 5] and model["n_examples"] == 200
        risk = traces.risk()
        best = int(np.nanargmax(risk))
        assert model["examples"][0]["index"] == int(traces.example_index[best])
        assert model["examples"][0]["label"] == int(traces.labels[best])
        assert f"{model['model']}: 200 members, 5 recorded" in printed
        # The estimate reads the losses the run's last audit of this model kept.
        scores = rundir.read_scores(rundir.scores_path(run_dir, model["model"], 5))
        loss = -scores.scores["threshold"].astype(np.float64)
        expected = estimate_lira_tpr(loss[scores.membership], loss[~scores.membership],
                                     fprs=(0.01, 0.001))
        estimate = model["lira_tpr_estimate"]
        assert estimate["epoch"] == 5 and estimate["n_nonmembers"] == 100
        assert estimate["losses_from"] == str(scores.path.relative_to(run_dir))
        assert estimate["tpr_at_fpr"][0]["tpr"] == pytest.approx(expected[0].tpr, rel=1e-12)
        # 100 non-members cannot resolve an FPR of 0.1%: no number, and why.
        assert estimate["tpr_at_fpr"][1]["tpr"] is None
        assert "cannot resolve FPR 0.001" in estimate["tpr_at_fpr"][1]["note"]
    assert printed.count("Estimated LiRA TPR at epoch 5: ") == 2
    # Poisson sampling leaves some DP members with too few recorded epochs: unscored.
    assert document["models"][1]["n_scored"] < 200 == document["models"][0]["n_scored"]
    # Every audit row carries the trace-risk summary; the run's report ranks by it too.
    rows = [r for r in read_jsonl(run_dir / "results.jsonl") if r.get("kind") == "row"]
    assert {r["metadata"]["trace_risk"]["method"] for r in rows} == {"iqr"}
    page = (run_dir / "report.html").read_text()
    assert 'id="trace-exposed"' in page and "mlp, DP" in page
