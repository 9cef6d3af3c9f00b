"""Saving and loading results (result.json, arrays.npz, results.jsonl) and collection queries."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from memberscope import (
    AuditResult,
    AuditRow,
    EpsilonBound,
    InputError,
    ModelOutputs,
    ResultsCollection,
    SchemaError,
    SkippedEntry,
    UnknownNameError,
    audit,
    load_result,
    load_results,
    save_result,
)
from memberscope.results import (
    audit_of,
    distinguishable_rows,
    run_family,
    tpr_family,
    worst_row,
)
from memberscope.store import (
    append_jsonl,
    append_result,
    atomic_write_json,
    atomic_write_npz,
    read_jsonl,
)

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")


def small_result(seed: int = 0, **metadata: object) -> AuditResult:
    rng = np.random.default_rng(seed)
    membership = np.arange(120) < 60
    labels = np.arange(120) % 3
    labels[-3:] = 2
    labels[membership & (labels == 2)] = 0  # class 2: non-members only, so it is skipped
    loss = rng.exponential(np.where(membership, 0.5, 1.0))
    outputs = ModelOutputs(membership=membership, labels=labels, loss=loss)
    return audit(outputs, attacks=["threshold"], slices=["entire", "class"], seed=seed,
                 n_bootstrap=5, metadata=metadata or None)


def make_row(slice_: str = "entire_dataset", attack: str = "threshold", auc: float = 0.6,
             **metadata: object) -> AuditRow:
    return AuditRow(slice=slice_, attack=attack, n_members=10, n_nonmembers=10, auc=auc,
                    advantage=auc - 0.5, ppv=0.55,
                    tpr_at_fpr={0.001: 0.0, 0.01: 0.02, 0.1: auc / 4},
                    epsilon_lower_bound=EpsilonBound(0.4, 0.1, 0.05, 0.0), metadata=dict(metadata))


# --- result.json + arrays.npz ---------------------------------------------------------------


def test_result_round_trip(tmp_path):
    result = small_result(model="2 layers", epoch=3, test_accuracy=0.7)
    assert result.skipped and result.rows[0].auc_ci is not None
    path = save_result(result, tmp_path / "out")
    assert path == tmp_path / "out" / "result.json"
    loaded = load_result(tmp_path / "out")
    assert loaded.rows == result.rows
    assert loaded.skipped == result.skipped
    assert load_result(path).rows == result.rows
    np.testing.assert_array_equal(loaded.scores["threshold"], result.scores["threshold"])
    np.testing.assert_array_equal(loaded.membership, result.membership)
    np.testing.assert_array_equal(loaded.labels, result.labels)
    for saved, original in zip(loaded.rocs, result.rocs, strict=True):
        np.testing.assert_array_equal(saved.fpr, original.fpr)
        np.testing.assert_array_equal(saved.tpr, original.tpr)
    with np.load(tmp_path / "out" / "arrays.npz", allow_pickle=False) as archive:
        assert all(archive[key].dtype != object for key in archive.files)


def test_result_json_without_arrays_still_loads(tmp_path):
    result = small_result()
    save_result(result, tmp_path)
    (tmp_path / "arrays.npz").unlink()
    assert load_result(tmp_path).rows == result.rows


def test_non_finite_values_become_null_not_invalid_json(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [np.float64(np.inf)],
                                             "c": np.int64(3), "d": Path("p")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [None], "c": 3,
                                                             "d": "p"}


@pytest.mark.parametrize("version", [4, 0, None, "1"])
def test_schema_version_mismatch_raises_schema_error(tmp_path, version):
    save_result(small_result(), tmp_path)
    document = json.loads((tmp_path / "result.json").read_text())
    if version is None:
        del document["schema_version"]
    else:
        document["schema_version"] = version
    (tmp_path / "result.json").write_text(json.dumps(document))
    with pytest.raises(SchemaError, match=r"result.json has schema_version .*; this memberscope "
                                          r"reads 1, 2, 3"):
        load_result(tmp_path)


def test_corrupt_result_json_raises_schema_error(tmp_path):
    (tmp_path / "result.json").write_text('{"schema_version": 1, "rows": [')
    with pytest.raises(SchemaError, match="is not valid JSON"):
        load_result(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps(
        {"schema_version": 1, "rows": [{"slice": "entire_dataset", "attack": "threshold"}]}))
    with pytest.raises(SchemaError, match="result row is malformed"):
        load_result(tmp_path)


def test_missing_result_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_result(tmp_path / "nowhere")


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_atomic_write_leaves_the_old_file_intact(tmp_path, monkeypatch, failing):
    save_result(small_result(seed=0), tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ("result.json", "arrays.npz")}

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(OSError, match="No space left"):
        save_result(small_result(seed=1, model="other"), tmp_path)
    monkeypatch.undo()
    after = {name: (tmp_path / name).read_bytes() for name in ("result.json", "arrays.npz")}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "result.json"]
    assert load_result(tmp_path).rows == small_result(seed=0).rows


def test_object_arrays_are_never_written(tmp_path):
    with pytest.raises(TypeError, match="array 'bad' has dtype object"):
        atomic_write_npz(tmp_path / "a.npz", {"bad": np.array([{}, 1], dtype=object)})
    assert not (tmp_path / "a.npz").exists()


# --- results.jsonl --------------------------------------------------------------------------


def test_results_jsonl_append_and_load(tmp_path):
    path = tmp_path / "run" / "results.jsonl"
    first = small_result(seed=0, model="a", epoch=1)
    second = small_result(seed=1, model="a", epoch=2)
    append_result(path, first)
    append_result(path, second)
    collection = load_results(tmp_path / "run")  # a run directory works too
    assert collection.rows == [*first.rows, *second.rows]
    assert collection.skipped == [*first.skipped, *second.skipped]
    assert collection.split_guards == [first.split_guard, second.split_guard]
    lines = path.read_text().splitlines()
    assert len(lines) == len(collection.rows) + len(collection.skipped) + 2  # + split guards
    assert all(json.loads(line)["schema_version"] == 3 for line in lines)


def test_partial_last_line_is_dropped_and_the_next_append_repairs_it(tmp_path):
    path = tmp_path / "results.jsonl"
    first = small_result(seed=0, epoch=1)
    append_result(path, first)
    intact = path.read_bytes()
    with path.open("ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"schema_version": 1, "kind": "row", "slice": "entire_da')
    assert load_results(path).rows == list(first.rows)
    second = small_result(seed=1, epoch=2)
    append_result(path, second)
    content = path.read_bytes()
    assert content.startswith(intact) and content.endswith(b"\n")
    assert b"entire_da\"" not in content and b'"entire_da{' not in content
    records = [json.loads(line) for line in content.splitlines()]  # every line parses
    assert len(records) == len(first.rows) + len(first.skipped) + len(second.rows) + len(
        second.skipped) + 2  # one split guard per audit
    assert load_results(path).rows == [*first.rows, *second.rows]


def test_a_bad_line_before_the_end_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [{"schema_version": 1, "kind": "row", **make_row().to_dict()}])
    with path.open("ab") as handle:
        handle.write(b"garbage\n")
    append_jsonl(path, [{"schema_version": 1, "kind": "row", **make_row().to_dict()}])
    with pytest.raises(SchemaError, match=r"results.jsonl:2 is not valid JSON"):
        read_jsonl(path)


def test_results_jsonl_schema_mismatch(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [{"schema_version": 1, "kind": "row", **make_row().to_dict()},
                        {"schema_version": 4, "kind": "row", **make_row().to_dict()}])
    with pytest.raises(SchemaError, match=r"results.jsonl:2 has schema_version 4"):
        load_results(path)


# --- queries --------------------------------------------------------------------------------


def collection() -> ResultsCollection:
    rows = []
    # model a: accuracy rises and so does leakage; model b: less leaky, less accurate.
    for epoch, (auc, accuracy) in enumerate([(0.55, 0.60), (0.62, 0.70), (0.75, 0.80)], 1):
        for slice_, bump in (("entire_dataset", 0.0), ("class=0", 0.05)):
            rows.append(make_row(slice_, "threshold", auc + bump, model="a", epoch=epoch,
                                 test_accuracy=accuracy))
    for epoch, (auc, accuracy) in enumerate([(0.52, 0.55), (0.54, 0.65)], 1):
        rows.append(make_row("entire_dataset", "lr", auc, model="b", epoch=epoch,
                             test_accuracy=accuracy))
    return ResultsCollection(rows)


def test_filter_and_values():
    results = collection()
    assert len(results) == 8
    assert len(results.filter(model="a")) == 6
    assert len(results.filter(model="a", slice="class=0")) == 3
    assert [r.metadata["epoch"] for r in results.filter(attack="lr")] == [1, 2]
    assert len(results.filter(model="zzz")) == 0
    assert results.values("model") == ["a", "b"]
    assert results.values("epoch") == [1, 2, 3]


def test_worst_slice():
    results = collection()
    worst = results.worst_slice()
    assert (worst.slice, worst.metadata["epoch"], worst.auc) == ("class=0", 3, pytest.approx(0.8))
    assert results.worst_slice(model="b").auc == pytest.approx(0.54)
    assert results.worst_slice("tpr@0.1", model="a", epoch=1).slice == "class=0"
    with pytest.raises(InputError, match="no result rows match"):
        results.worst_slice(model="zzz")


def test_best_epoch_with_max_value():
    results = collection()
    assert results.best_epoch() == {"model": "a", "epoch": 3, "accuracy": 0.80,
                                    "worst": pytest.approx(0.80), "n_tested": 2}
    # Worst AUC over slices must stay <= 0.7: model a epoch 2 (worst 0.67, accuracy 0.70).
    assert results.best_epoch(max_value=0.7) == {"model": "a", "epoch": 2, "accuracy": 0.70,
                                                 "worst": pytest.approx(0.67), "n_tested": 2}
    assert results.best_epoch(max_value=0.58) == {"model": "b", "epoch": 2, "accuracy": 0.65,
                                                  "worst": pytest.approx(0.54), "n_tested": 1}
    assert results.best_epoch(model="b", max_value=0.53)["epoch"] == 1
    assert results.best_epoch(max_value=0.5) is None
    assert results.best_epoch(metric="epsilon_confident", max_value=0.2)["epoch"] == 3


def test_to_pandas_has_one_row_per_result_row_with_flat_columns():
    frame = collection().to_pandas()
    assert len(frame) == 8
    assert {"slice", "attack", "n_members", "n_nonmembers", "auc", "advantage", "ppv",
            "epsilon_point", "epsilon_confident", "tpr@0.001", "tpr@0.01", "tpr@0.1",
            "model", "epoch", "test_accuracy"} <= set(frame.columns)
    assert frame.loc[frame["model"] == "b", "auc"].tolist() == [0.52, 0.54]
    assert small_result().to_pandas()["slice"].tolist() == ["entire_dataset", "class=0",
                                                            "class=1"]


def test_metric_names_and_row_lookup():
    row = make_row()
    assert row.metric("tpr@0.01") == 0.02
    assert row.metric("epsilon_point") == 0.4
    with pytest.raises(UnknownNameError,
                       match=r"unknown metric 'aucc' \(did you mean 'auc'\?\); valid: auc, adv"):
        row.metric("aucc")
    with pytest.raises(InputError, match=r"no TPR stored at FPR 0.05"):
        row.metric("tpr@0.05")
    result = AuditResult(rows=(row,), skipped=(SkippedEntry("class=1", "lr", "too small"),))
    assert result.row("entire_dataset", "threshold") is row
    with pytest.raises(KeyError, match="no row for slice='class=1'"):
        result.row("class=1", "lr")
    assert result.worst("ppv") is row


def test_every_worst_pick_follows_one_nan_rule():
    nan_row = make_row("class=0", auc=float("nan"))
    low, high, tie = make_row("class=1", auc=0.6), make_row("class=2", auc=0.7), \
        make_row("class=3", auc=0.7)
    without_tpr = replace(make_row("class=4", auc=0.9), tpr_at_fpr={0.1: 0.5})
    rows = [nan_row, low, high, tie, without_tpr]
    assert worst_row(rows, "auc") is without_tpr
    assert worst_row(rows[:4], "auc") is high  # NaN never wins; ties go to the first row
    assert worst_row([without_tpr, low], "tpr@0.01") is low  # lacking TPR at 1% FPR: never wins
    assert AuditResult(rows=tuple(rows[:4]), skipped=()).worst("auc") is high
    assert ResultsCollection(rows[:4]).worst_slice("auc") is high
    with pytest.raises(InputError, match="no row has a value for metric 'auc'"):
        worst_row([nan_row], "auc")
    with pytest.raises(InputError, match=r"no TPR stored at FPR 0\.01"):
        worst_row([without_tpr], "tpr@0.01")
    with pytest.raises(UnknownNameError, match="unknown metric 'aucc'"):
        worst_row(rows, "aucc")


# --- schema 2: p_value, significant, notes, null TPR ----------------------------------------


def test_schema_2_fields_round_trip_through_json_jsonl_and_pandas(tmp_path):
    result = small_result()  # 60 non-members: TPR at 0.1% and 1% FPR are not resolvable
    row = result.row("entire_dataset", "threshold")
    assert row.tpr_at_fpr[0.001] is None and row.tpr_at_fpr[0.01] is None
    assert row.tpr_at_fpr[0.1] is not None
    assert row.tpr_at_fpr_ci[0.001] is None and row.tpr_at_fpr_ci[0.1] is not None
    assert any("tpr_at_fpr[0.001] is null" in note for note in row.notes)
    assert 0.0 < row.p_value < 1.0 and isinstance(row.significant, bool)
    save_result(result, tmp_path)
    document = json.loads((tmp_path / "result.json").read_text())
    assert document["schema_version"] == 3
    stored = document["rows"][0]
    assert stored["tpr_at_fpr"]["0.001"] is None and stored["p_value"] == row.p_value
    assert stored["significant"] is row.significant and stored["notes"] == list(row.notes)
    assert load_result(tmp_path).rows == result.rows
    append_result(tmp_path / "results.jsonl", result)
    assert load_results(tmp_path / "results.jsonl").rows == list(result.rows)
    frame = result.to_pandas()
    assert list(frame["p_value"]) == [r.p_value for r in result.rows]
    assert list(frame["significant"]) == [r.significant for r in result.rows]
    assert frame["tpr@0.001"].isna().all()


def test_schema_1_rows_still_load_with_the_new_fields_none(tmp_path):
    old = make_row().to_dict()
    for key in ("p_value", "significant", "notes", "alpha", "correction"):
        del old[key]
    (tmp_path / "result.json").write_text(json.dumps(
        {"schema_version": 1, "memberscope_version": "0.1", "rows": [old], "skipped": []}))
    row = load_result(tmp_path).rows[0]
    assert (row.p_value, row.significant, row.notes) == (None, None, ())
    append_jsonl(tmp_path / "results.jsonl", [{"schema_version": 1, "kind": "row", **old}])
    assert load_results(tmp_path / "results.jsonl").rows == [row]
    assert ResultsCollection([row]).to_pandas()["p_value"].isna().all()


# --- schema 3: the audit's alpha and correction; arrays.npz matched by row id -----------------

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema2_audit"


def _trapezoid_auc(roc) -> float:
    """The area under an unthinned curve: the row's AUC (ties count one half)."""
    return float(np.sum(np.diff(roc.fpr) * (roc.tpr[1:] + roc.tpr[:-1]) / 2))


def test_alpha_and_correction_round_trip_through_the_real_writers(tmp_path):
    rng = np.random.default_rng(1)
    membership = np.arange(120) < 60
    outputs = ModelOutputs(membership=membership, labels=np.arange(120) % 3,
                           loss=rng.exponential(np.where(membership, 0.5, 1.0)))
    result = audit(outputs, attacks=["threshold"], slices=["entire", "class"], alpha=0.1,
                   correction="bonferroni")
    assert (result.alpha, result.correction) == (0.1, "bonferroni")
    assert all((r.alpha, r.correction) == (0.1, "bonferroni") for r in result.rows)
    save_result(result, tmp_path)
    document = json.loads((tmp_path / "result.json").read_text())
    assert (document["alpha"], document["correction"]) == (0.1, "bonferroni")
    assert not {"alpha", "correction"} & set(document["rows"][0])  # once per audit
    loaded = load_result(tmp_path)
    assert (loaded.alpha, loaded.correction) == (0.1, "bonferroni")
    assert loaded.rows == result.rows
    append_result(tmp_path / "results.jsonl", result)
    for line in read_jsonl(tmp_path / "results.jsonl"):
        assert (line["alpha"], line["correction"]) == (0.1, "bonferroni")
    assert load_results(tmp_path / "results.jsonl").rows == list(result.rows)
    empty = AuditResult(rows=(), alpha=0.01, correction="holm")
    save_result(empty, tmp_path / "empty")  # no row to carry them: the document still does
    assert (load_result(tmp_path / "empty").alpha, load_result(tmp_path / "empty").correction) \
        == (0.01, "holm")


def test_files_of_the_previous_schema_load_without_alpha_and_correction(tmp_path):
    """tests/fixtures/schema2_audit was written by memberscope before schema 3 (result.json
    schema 2, arrays.npz without a schema_version, results.jsonl schema 2)."""
    assert json.loads((FIXTURE / "result.json").read_text())["schema_version"] == 2
    with np.load(FIXTURE / "arrays.npz", allow_pickle=False) as archive:
        assert "schema_version" not in archive.files
    result = load_result(FIXTURE)
    assert (result.alpha, result.correction) == (None, None)
    assert all((r.alpha, r.correction) == (None, None) for r in result.rows)
    assert len(result.rows) == 3 and len(result.skipped) == 5
    for row, roc in zip(result.rows, result.rocs, strict=True):  # matched by position
        assert _trapezoid_auc(roc) == pytest.approx(row.auc, abs=1e-12)
    assert result.scores["threshold"].shape == result.membership.shape == (60,)
    rows = load_results(FIXTURE / "results.jsonl").rows
    assert rows == list(result.rows)


def test_arrays_npz_matches_curves_to_rows_by_id_not_position(tmp_path):
    result = load_result(FIXTURE)
    without_middle = replace(result, rocs=(result.rocs[0], None, result.rocs[2]))
    save_result(without_middle, tmp_path)
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as archive:
        assert int(archive["schema_version"]) == 2
        assert archive["roc_slice"].tolist() == ["entire_dataset", "class=1"]
        assert archive["roc_attack"].tolist() == ["threshold", "threshold"]
    document = json.loads((tmp_path / "result.json").read_text())
    document["rows"].reverse()  # another order of rows: curves still find theirs
    (tmp_path / "result.json").write_text(json.dumps(document))
    loaded = load_result(tmp_path)
    assert [r.slice for r in loaded.rows] == ["class=1", "class=0", "entire_dataset"]
    assert loaded.rocs[1] is None
    for row, roc in zip(loaded.rows, loaded.rocs, strict=True):
        if roc is not None:
            assert _trapezoid_auc(roc) == pytest.approx(row.auc, abs=1e-12)


def test_arrays_npz_of_another_schema_or_repeated_ids_are_refused(tmp_path):
    result = load_result(FIXTURE)
    save_result(result, tmp_path)
    arrays = dict(np.load(tmp_path / "arrays.npz", allow_pickle=False))
    atomic_write_npz(tmp_path / "arrays.npz", {**arrays, "schema_version": np.asarray(7)})
    with pytest.raises(SchemaError, match=r"arrays\.npz has schema_version 7"):
        load_result(tmp_path)
    twice = replace(result, rows=(result.rows[0], result.rows[0]))
    with pytest.raises(InputError, match=r"distinct \(slice, attack\).*'entire_dataset'"):
        save_result(twice, tmp_path / "twice")


# --- a run's family and the low-FPR headline's family ------------------------------------


def test_rows_without_a_recorded_family_read_the_epsilon_alpha_and_holm():
    old = make_row().to_dict()
    del old["alpha"], old["correction"]  # as in files of schema 1 and 2
    row = AuditRow.from_dict(old)
    assert (row.alpha, row.correction) == (None, None)
    assert (row.test_alpha, row.test_correction) == (0.05, "holm")


def test_run_family_groups_rows_by_their_audits_metadata():
    audits = [small_result(seed, model="m", epoch=epoch) for seed, epoch in ((1, 1), (2, 2))]
    rows = [row for result in audits for row in result]
    family = run_family(rows)
    assert family.n_audits == 2 and family.size == len(rows)
    assert family.describe() == (f"after Holm's correction over the run's {len(rows)} results "
                                 "(2 audits)")
    assert (family.scope, family.alpha, family.correction) == ("run", 0.05, "holm")
    alone = run_family(audits[0].rows)
    assert alone.n_audits == 1
    assert alone.describe() == "after Holm's correction over this audit's results"
    assert distinguishable_rows(audits[0].rows, alone) == [r for r in audits[0] if r.significant]
    assert audit_of(rows[0]) != audit_of(rows[-1])


def test_run_family_is_stricter_than_each_audits_own():
    """Rows significant in their audit (Holm over 2 rows) but not over the run's 6."""
    rows = [replace(make_row(slice_, epoch=epoch), p_value=p, significant=p <= 0.05 / 2,
                    alpha=0.05, correction="holm")
            for epoch in (1, 2, 3) for slice_, p in (("a", 0.02), ("b", 0.9))]
    assert sum(r.significant for r in rows) == 3
    family = run_family(rows)
    assert distinguishable_rows(rows, family) == []  # 0.02 > 0.05 / 6
    assert distinguishable_rows(rows[:2], family) == []  # a subset keeps the run's verdict
    assert distinguishable_rows(rows) == [rows[0], rows[2], rows[4]]


def test_tpr_family_tests_each_rows_tpr_on_its_own_over_the_resolving_rows():
    def row(slice_: str, tpr: float, n_nonmembers: int, epoch: int) -> AuditRow:
        return replace(make_row(slice_, epoch=epoch), n_members=1000, n_nonmembers=n_nonmembers,
                       tpr_at_fpr={0.01: tpr if n_nonmembers >= 100 else None})

    rows = [row("a", 0.2, 1000, 1),    # 200 members above the 11th non-member: p ~ 1e-50
            row("b", 0.012, 1000, 1),  # about the chance level 0.01
            row("a", 0.5, 50, 2),      # 50 non-members cannot resolve 1%
            row("b", 0.03, 1000, 2)]
    family = tpr_family(rows, 0.01)
    # Alone, 30 members above the 11th of 1,000 non-members beats chance (p = 0.001); it is
    # still significant after Holm over the three resolving rows.
    assert distinguishable_rows(rows, family) == [rows[0], rows[3]]
    assert family.size == 3 and family.n_audits == 2 and family.test == "tpr@0.01"
    assert distinguishable_rows(rows[1:2], tpr_family(rows[1:2], 0.01)) == []
