"""The run directory's layout and score files (memberscope.rundir)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memberscope import rundir
from memberscope._io import atomic_write_npz
from memberscope.errors import SchemaError
from memberscope.results import AuditResult
from memberscope.risk import LossTraces


def _result(n: int = 10, seed: int = 0) -> AuditResult:
    rng = np.random.default_rng(seed)
    membership = np.arange(n) < n // 2
    return AuditResult(rows=(), scores={"threshold": rng.random(n), "lr": rng.random(n)},
                       membership=membership, labels=rng.integers(0, 3, n))


def test_paths_follow_the_documented_layout(tmp_path: Path) -> None:
    assert rundir.scores_path(tmp_path, "3 layers, DP-Adam", 7) == \
        tmp_path / "scores" / "3_layers_DP-Adam" / "epoch_0007.npz"
    assert rundir.checkpoint_path(tmp_path, "cnn") == tmp_path / "checkpoints" / "cnn.pt"
    assert rundir.results_path(tmp_path) == tmp_path / "results.jsonl"
    assert rundir.config_path(tmp_path) == tmp_path / "config.toml"
    assert rundir.figure_path(tmp_path, "roc") == tmp_path / "figures" / "roc.png"
    assert rundir.slug("<>") == "model"


def test_scores_round_trip_with_label_epoch_and_training_indices(tmp_path: Path) -> None:
    result = _result()
    path = rundir.write_scores(tmp_path, "m <1>", 3, result, member_index=np.arange(50, 55))
    audit = rundir.read_scores(path)
    assert (audit.model, audit.epoch) == ("m <1>", 3)
    for attack, values in result.scores.items():
        np.testing.assert_array_equal(audit.scores[attack], values.astype(np.float32))
    np.testing.assert_array_equal(audit.membership, result.membership)
    assert [audit.training_index(i) for i in (0, 4, 5)] == [50, 54, None]


def test_last_scores_takes_each_variants_last_listed_epoch(tmp_path: Path) -> None:
    for label, epoch in (("a", 1), ("a", 2), ("b", 1), ("b", 3)):
        rundir.write_scores(tmp_path, label, epoch, _result(seed=epoch))
    assert [(s.model, s.epoch) for s in rundir.last_scores(tmp_path)] == [("a", 2), ("b", 3)]
    chosen = rundir.last_scores(tmp_path, {("a", 1), ("b", 1), ("b", 2)})
    assert [(s.model, s.epoch) for s in chosen] == [("a", 1), ("b", 1)]
    assert rundir.last_scores(tmp_path / "nothing") == []


def test_version_1_files_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "scores" / "cnn" / "epoch_0004.npz"
    atomic_write_npz(path, {"score_threshold": np.array([0.1, 0.9], np.float32),
                            "membership": np.array([True, False]), "labels": np.array([1, 2]),
                            "member_index": np.array([7]), "schema_version": np.asarray(1)})
    audit = rundir.read_scores(path)
    assert (audit.model, audit.epoch, list(audit.scores)) == ("cnn", 4, ["threshold"])
    assert audit.training_index(0) == 7


def test_unreadable_score_files_are_refused_naming_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "epoch_0001.npz"
    atomic_write_npz(path, {"schema_version": np.asarray(9), "membership": np.ones(2, bool)})
    with pytest.raises(SchemaError, match="schema_version 9"):
        rundir.read_scores(path)
    atomic_write_npz(path, {"schema_version": np.asarray(2), "membership": np.ones(2, bool),
                            "scores_lr": np.ones(3)})
    with pytest.raises(SchemaError, match=r"scores_lr has shape \(3,\)"):
        rundir.read_scores(path)


def _canaries(m: int = 6, seed: int = 0) -> rundir.AuditedCanaries:
    rng = np.random.default_rng(seed)
    white = rundir.WhiteBoxCanaries(rng.choice(1000, m, replace=False), rng.random(m) < 0.5,
                                    4.0, seed, rng.normal(size=m))
    black = rundir.BlackBoxCanaries(np.sort(rng.choice(50, m, replace=False)),
                                    rng.integers(0, 3, m), rng.random(m) < 0.5, seed + 1,
                                    rng.normal(size=m))
    return rundir.AuditedCanaries("dp <1>", 4, white, black)


def _same_canaries(read: rundir.AuditedCanaries, written: rundir.AuditedCanaries) -> None:
    assert (read.model, read.epoch) == (written.model, written.epoch)
    for kind in ("white_box", "black_box"):
        got, expected = getattr(read, kind), getattr(written, kind)
        assert (got is None) == (expected is None), kind
        if expected is not None:
            for name in vars(expected):
                np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_canary_file_round_trip_through_its_owner(tmp_path: Path) -> None:
    written = _canaries()
    path = rundir.write_canaries(tmp_path, written)
    assert path == rundir.canaries_path(tmp_path, "dp <1>") == tmp_path / "canaries" / "dp_1.npz"
    assert int(np.load(path, allow_pickle=False)["schema_version"]) == 2
    _same_canaries(rundir.read_canaries(path), written)
    one_kind = rundir.AuditedCanaries("w", 2, white_box=written.white_box)
    _same_canaries(rundir.read_canaries(rundir.write_canaries(tmp_path, one_kind)), one_kind)


def test_version_1_canary_files_are_still_read(tmp_path: Path) -> None:
    """As the runner wrote them before rundir owned the format: the gradient plan's arrays
    (with their own schema_version 1), the input canaries' without any, and the scores."""
    expected = _canaries()
    white, black = expected.white_box, expected.black_box
    plan = {"schema_version": np.array(1), "coordinates": white.coordinates,
            "included": white.included, "gradient_norm": np.array(white.gradient_norm),
            "seed": np.array(white.seed)}
    inputs = {"input_index": black.index, "input_wrong_labels": black.wrong_labels,
              "input_included": black.included, "input_seed": np.asarray(black.seed)}
    path = tmp_path / "canaries" / "dp_1.npz"
    atomic_write_npz(path, {"epoch": np.asarray(4), **inputs, "black_box_scores": black.scores,
                            **plan, "white_box_scores": white.scores})
    _same_canaries(rundir.read_canaries(path), rundir.AuditedCanaries("dp_1", 4, white, black))
    atomic_write_npz(path, {"epoch": np.asarray(2), **inputs, "black_box_scores": black.scores})
    _same_canaries(rundir.read_canaries(path),
                   rundir.AuditedCanaries("dp_1", 2, black_box=black))


def test_unreadable_canary_files_are_refused_naming_the_problem(tmp_path: Path) -> None:
    path = rundir.write_canaries(tmp_path, _canaries())
    arrays = dict(np.load(path, allow_pickle=False))
    atomic_write_npz(path, {**arrays, "schema_version": np.asarray(3)})
    with pytest.raises(SchemaError, match="schema_version 3"):
        rundir.read_canaries(path)
    atomic_write_npz(path, {**arrays, "white_box_scores": np.zeros(5)})
    with pytest.raises(SchemaError, match=r"must be \(m,\) arrays of one m"):
        rundir.read_canaries(path)
    del arrays["input_seed"]
    atomic_write_npz(path, arrays)
    with pytest.raises(SchemaError, match="lacks input_seed"):
        rundir.read_canaries(path)


# --- loss-trace files ---------------------------------------------------------------------


def _traces(epochs: int = 3, model: str = "3 layers, DP") -> LossTraces:
    rng = np.random.default_rng(1)
    losses = rng.exponential(1.0, (6, epochs)).astype(np.float32)
    losses[rng.random(losses.shape) < 0.3] = np.nan
    return LossTraces(losses=losses, epochs=np.arange(1, epochs + 1),
                      example_index=np.arange(100, 106), labels=rng.integers(0, 3, 6),
                      model=model)


def _assert_same_traces(got: LossTraces, expected: LossTraces) -> None:
    np.testing.assert_array_equal(got.losses, expected.losses)  # bit for bit, NaN included
    np.testing.assert_array_equal(got.epochs, expected.epochs)
    np.testing.assert_array_equal(got.example_index, expected.example_index)
    np.testing.assert_array_equal(got.labels, expected.labels)
    assert got.model == expected.model


def test_traces_written_then_appended_read_back_as_one_trace(tmp_path: Path) -> None:
    full = _traces(4)
    first = LossTraces(losses=full.losses[:, :2], epochs=[1, 2], example_index=full.example_index,
                       labels=full.labels, model=full.model)
    path = rundir.write_traces(tmp_path, first)
    assert path == tmp_path / "traces" / "3_layers_DP.npz"
    for column in (2, 3):
        rundir.append_traces(tmp_path, full.model, column + 1, full.losses[:, column])
    _assert_same_traces(rundir.read_traces(path), full)
    (found,) = rundir.run_traces(tmp_path)
    _assert_same_traces(found, full)
    # Appending an epoch the file holds is refused and leaves the file as it was.
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"loss_epoch_0004.*already in"):
        rundir.append_traces(tmp_path, full.model, 4, full.losses[:, 3])
    assert path.read_bytes() == before


def test_a_rewrite_replaces_every_epoch(tmp_path: Path) -> None:
    rundir.write_traces(tmp_path, _traces(5))
    shorter = _traces(2)
    _assert_same_traces(rundir.read_traces(rundir.write_traces(tmp_path, shorter)), shorter)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"schema_version": np.asarray(9), "example_index": np.arange(3)},
     r"schema_version 9; this memberscope reads loss-trace files of schema_version 1$"),
    ({"schema_version": np.asarray(1)}, r"has no 'example_index' array"),
    ({"schema_version": np.asarray(1), "example_index": np.arange(3),
      "loss_epoch_0001": np.ones(4)}, r"loss_epoch_0001 has shape \(4,\); expected \(3,\)"),
    ({"schema_version": np.asarray(1), "example_index": np.arange(3),
      "loss_epoch_0001": np.full(3, np.inf)}, r"losses contains 3 infinite"),
])
def test_bad_traces_files_raise_schema_errors_naming_the_array(
        tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    path = tmp_path / "bad.npz"
    atomic_write_npz(path, arrays)
    with pytest.raises(SchemaError, match=message):
        rundir.read_traces(path)
    # A run directory skips the unreadable file and says so in the log.
    (tmp_path / "traces").mkdir()
    path.rename(tmp_path / "traces" / "bad.npz")
    assert rundir.run_traces(tmp_path) == []
