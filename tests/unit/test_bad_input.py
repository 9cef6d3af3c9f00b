"""Bad input gives a clear error naming the array, never a wrong number (issue 2).

The library raises a subclass of ValueError; the CLI exits 2 with one line on stderr.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from memberscope import InputError, ModelOutputs, UnknownNameError, load_outputs_npz, roc_curve
from memberscope.cli import main

rng = np.random.default_rng(0)
N_PER_SIDE, C = 30, 4
MEMBERSHIP = np.arange(2 * N_PER_SIDE) < N_PER_SIDE
LABELS = np.arange(2 * N_PER_SIDE) % C
LOGITS = rng.normal(size=(2 * N_PER_SIDE, C))
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
LOSS = rng.exponential(size=2 * N_PER_SIDE)


def outputs(**changes: object) -> ModelOutputs:
    arrays: dict[str, object] = {"membership": MEMBERSHIP, "labels": LABELS, "logits": LOGITS}
    arrays.update(changes)
    return ModelOutputs(**{k: v for k, v in arrays.items() if v is not None})  # type: ignore[arg-type]


def with_values(array: np.ndarray, positions: list[tuple[int, ...]], value: float) -> np.ndarray:
    changed = array.astype(np.float64).copy()
    for position in positions:
        changed[position] = value
    return changed


# --- ModelOutputs ---------------------------------------------------------------------------


def test_errors_are_value_errors():
    assert issubclass(InputError, ValueError)
    assert issubclass(UnknownNameError, InputError)


def test_nan_in_logits_names_the_array_count_and_first_position():
    bad = with_values(LOGITS, [(17, 2), (20, 0), (41, 3)], np.nan)
    with pytest.raises(InputError,
                       match=r"^logits contains 3 NaN value\(s\) \(first at row 17, column 2\)$"):
        outputs(logits=bad)


def test_inf_in_logits():
    bad = with_values(LOGITS, [(5, 1)], -np.inf)
    with pytest.raises(InputError, match=r"logits contains 1 infinite value\(s\) "
                                         r"\(first at row 5, column 1\)"):
        outputs(logits=bad)


def test_nan_in_probs():
    bad = with_values(PROBS, [(3, 0), (4, 0)], np.nan)
    with pytest.raises(InputError, match=r"probs contains 2 NaN value\(s\) \(first at row 3"):
        outputs(logits=None, probs=bad)


def test_inf_in_loss():
    with pytest.raises(InputError, match=r"loss contains 1 infinite value\(s\) \(first at row 9\)"):
        outputs(logits=None, loss=with_values(LOSS, [(9,)], np.inf))


def test_nan_in_labels():
    with pytest.raises(InputError, match=r"labels contains 1 NaN value\(s\) \(first at row 12\)"):
        outputs(labels=with_values(LABELS, [(12,)], np.nan))


def test_nan_and_inf_in_sample_weight():
    weights = np.ones(2 * N_PER_SIDE)
    with pytest.raises(InputError, match=r"sample_weight contains 1 NaN value\(s\) "
                                         r"\(first at row 2\)"):
        outputs(sample_weight=with_values(weights, [(2,)], np.nan))
    with pytest.raises(InputError, match=r"sample_weight contains 2 infinite value\(s\)"):
        outputs(sample_weight=with_values(weights, [(2,), (3,)], np.inf))
    with pytest.raises(InputError, match=r"sample_weight must be >= 0; row 4 is -1"):
        outputs(sample_weight=with_values(weights, [(4,)], -1.0))


def test_nan_in_membership():
    membership = with_values(MEMBERSHIP, [(7,)], np.nan)
    with pytest.raises(InputError, match=r"membership contains 1 NaN value\(s\) "
                                         r"\(first at row 7\)"):
        outputs(membership=membership)


@pytest.mark.parametrize(("change", "message"), [
    ({"labels": LABELS[:-1]}, r"same number of rows: membership has 60, labels has 59, "
                              r"logits has 60"),
    ({"logits": LOGITS[:-2]}, r"same number of rows: .*logits has 58"),
    ({"membership": MEMBERSHIP[1:]}, r"same number of rows: membership has 59"),
    ({"logits": LOGITS, "probs": PROBS[:, :3]}, r"logits and probs must have the same shape; "
                                                r"got \(60, 4\) and \(60, 3\)"),
    ({"logits": LOGITS[:, :0], "labels": np.zeros(60, int)},
     r"logits has no columns; expected one per class, or one column \(class 1\)"),
    ({"logits": LOGITS[:, :, None]}, r"logits must have 2 dimension\(s\); got shape \(60, 4, 1\)"),
    ({"logits": None, "loss": LOSS[:, None]}, r"loss must have 1 dimension\(s\); "
                                              r"got shape \(60, 1\)"),
    ({"labels": LABELS[:, None]}, r"labels must be 1-dimensional; got shape \(60, 1\)"),
    ({"membership": np.where(MEMBERSHIP, 2, 0)}, r"membership must be boolean \(or 0/1\)"),
])
def test_shape_mismatches_name_the_arrays(change, message):
    with pytest.raises(InputError, match=message):
        outputs(**change)


@pytest.mark.parametrize(("labels", "message"), [
    (with_values(LABELS, [(11,)], 4), r"labels must be < 4 \(the number of classes\); "
                                      r"row 11 is 4"),
    (with_values(LABELS, [(6,)], -1), r"labels must be >= 0; row 6 is -1"),
    (with_values(LABELS, [(8,)], 1.5), r"labels must hold integer class labels; row 8 is"),
    (LABELS.astype(str), r"labels must hold integer class labels; got dtype <U"),
    (LABELS.astype(bool), r"labels must hold integer class labels; got dtype bool"),
])
def test_labels_out_of_range_or_not_integers(labels, message):
    with pytest.raises(InputError, match=message):
        outputs(labels=labels)


def test_integer_valued_float_labels_are_accepted():
    assert outputs(labels=LABELS.astype(np.float32)).labels.dtype == np.int64


def test_probabilities_negative_or_not_summing_to_one():
    negative = PROBS.copy()
    negative[13] = [1.2, -0.2, 0.0, 0.0]
    with pytest.raises(InputError, match=r"probs must be >= 0; row 13 has a negative value"):
        outputs(logits=None, probs=negative)
    off = PROBS.copy()
    off[[21, 30]] *= 1.1
    with pytest.raises(InputError, match=r"probs rows must sum to 1 .*2 row\(s\) do not, "
                                         r"first row 21 sums to 1.1"):
        outputs(logits=None, probs=off)


def test_empty_member_or_non_member_set():
    with pytest.raises(InputError, match=r"membership has no members \(no True value\)"):
        outputs(membership=np.zeros(60, bool))
    with pytest.raises(InputError, match=r"membership has no non-members \(no False value\)"):
        outputs(membership=np.ones(60, bool))


def test_no_outputs_at_all():
    with pytest.raises(InputError, match="needs at least one of logits, probs or loss"):
        outputs(logits=None)


@pytest.mark.parametrize("kind", ["logits", "probs", "loss", "sample_weight", "labels"])
@pytest.mark.parametrize("side", ["train", "test"])
def test_from_train_test_with_only_one_of_a_pair(kind, side):
    full = {"labels": LABELS, "logits": LOGITS, "probs": PROBS, "loss": LOSS,
            "sample_weight": np.ones(60)}
    arrays = {"labels_train": LABELS[:30], "labels_test": LABELS[30:],
              "logits_train": LOGITS[:30], "logits_test": LOGITS[30:]}
    arrays[f"{kind}_train"] = full[kind][:30]
    arrays[f"{kind}_test"] = full[kind][30:]
    other = "test" if side == "train" else "train"
    arrays[f"{kind}_{other}"] = None
    with pytest.raises(InputError, match=f"^{kind}_{side} was given without {kind}_{other}; "
                                         "give both or neither$"):
        ModelOutputs.from_train_test(**arrays)


def test_from_train_test_rejects_rows_that_only_add_up():
    with pytest.raises(InputError, match=r"logits_train has 6 rows but labels_train has 5"):
        ModelOutputs.from_train_test(logits_train=LOGITS[:6], logits_test=LOGITS[6:10],
                                     labels_train=LABELS[:5], labels_test=LABELS[5:10])


def test_from_train_test_names_the_side_and_its_row():
    logits_test = with_values(LOGITS[30:], [(2, 1)], np.nan)
    with pytest.raises(InputError, match=r"^logits_test contains 1 NaN value\(s\) "
                                         r"\(first at row 2, column 1\)$"):
        ModelOutputs.from_train_test(logits_train=LOGITS[:30], logits_test=logits_test,
                                     labels_train=LABELS[:30], labels_test=LABELS[30:])


def test_metric_functions_validate_their_inputs():
    with pytest.raises(InputError, match=r"scores contains 1 NaN value\(s\) \(first at row 1\)"):
        roc_curve(np.array([0.1, np.nan, 0.3]), np.array([True, False, True]))
    with pytest.raises(InputError, match=r"scores has 3 rows but membership has 2"):
        roc_curve(np.array([0.1, 0.2, 0.3]), np.array([True, False]))
    with pytest.raises(InputError, match=r"membership has no non-members"):
        roc_curve(np.array([0.1, 0.2]), np.array([True, True]))


# --- .npz files -----------------------------------------------------------------------------


def save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


OURS = {"membership": MEMBERSHIP, "labels": LABELS, "logits": LOGITS}
TFP = {"labels_train": LABELS[:30], "labels_test": LABELS[30:], "loss_train": LOSS[:30],
       "loss_test": LOSS[30:]}


def _without(arrays: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k != key}


BAD_NPZ = {
    "ours_no_outputs": (_without(OURS, "logits"),
                        r"needs at least one of logits, probs or loss"),
    "ours_unknown_key": ({**OURS, "logit": LOGITS},
                         r"has unknown array\(s\) \['logit'\]; expected among"),
    "ours_mixed_with_tfp": ({**OURS, "loss_train": LOSS[:30]},
                            r"has unknown array\(s\) \['loss_train'\]"),
    "tfp_missing_labels_test": (_without(TFP, "labels_test"),
                                r"labels_train was given without labels_test"),
    "tfp_logits_without_labels": ({"logits_train": LOGITS[:30], "logits_test": LOGITS[30:]},
                                  r"is missing the array 'labels_train' \(needed with logits"),
    "ours_logits_without_labels": (_without(OURS, "labels"),
                                   r"is missing the array 'labels' \(needed with logits"),
    "tfp_missing_outputs": ({"labels_train": LABELS[:30], "labels_test": LABELS[30:]},
                            r"has none of logits_train/probs_train/loss_train"),
    "tfp_half_pair": (_without(TFP, "loss_test"),
                      r"loss_train was given without loss_test"),
    "tfp_unknown_key": ({**TFP, "extra": LOSS}, r"has unknown array\(s\) \['extra'\]"),
    "nan_logits": ({**OURS, "logits": with_values(LOGITS, [(17, 0)], np.nan)},
                   r"logits contains 1 NaN value\(s\) \(first at row 17, column 0\)"),
    "negative_probs": ({"membership": MEMBERSHIP, "labels": LABELS,
                        "probs": with_values(PROBS, [(3, 1)], -0.5)},
                       r"probs must be >= 0; row 3"),
    "labels_out_of_range": ({**OURS, "labels": with_values(LABELS, [(5,)], 9).astype(int)},
                            r"labels must be < 4"),
    "no_members": ({**OURS, "membership": np.zeros(60, bool)}, r"membership has no members"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_contents(case, tmp_path, capsys):
    arrays, message = BAD_NPZ[case]
    path = save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_outputs_npz(path)
    assert_cli_bad_input(capsys, ["audit", str(path), "--out", str(tmp_path / "o")], message)
    assert not (tmp_path / "o").exists()


def assert_cli_bad_input(capsys, argv: list[str], message: str) -> str:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"memberscope {argv[0]}: error: ")
    assert re.search(message, lines[0]), (message, lines[0])
    return lines[0]


class _WritesMarker:
    """Unpickling this object creates a file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_object_arrays_are_refused_and_never_unpickled(tmp_path, capsys):
    marker = tmp_path / "unpickled.marker"
    payload = np.array([_WritesMarker(marker), 1], dtype=object)
    path = save(tmp_path / "evil.npz", membership=MEMBERSHIP, labels=LABELS, logits=payload)
    message = r"array 'logits' in evil.npz holds Python objects; memberscope never unpickles"
    with pytest.raises(InputError, match=message):
        load_outputs_npz(path)
    assert_cli_bad_input(capsys, ["audit", str(path), "--out", str(tmp_path / "o")], message)
    assert not marker.exists()
    # The marker works: loading with pickling allowed does create it.
    with np.load(path, allow_pickle=True) as archive:
        archive["logits"][0].close()
    assert marker.exists()


def _valid_npz_bytes(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **OURS)
    return buffer.getvalue()


NOT_NPZ = {
    "text": (b"membership,labels\n1,0\n", r"is not an \.npz archive"),
    "empty": (b"", r"is not an \.npz archive"),
    "truncated_zip": (_valid_npz_bytes(False)[:700], r"is not an \.npz archive"),
    "truncated_compressed_zip": (_valid_npz_bytes(True)[:500], r"is not an \.npz archive"),
    "bad_crc": (bytes(b ^ 0xFF if 100 <= i < 140 else b
                      for i, b in enumerate(_valid_npz_bytes(False))),
                r"is not a readable \.npz: Bad CRC-32"),
}


@pytest.mark.parametrize("case", sorted(NOT_NPZ))
def test_not_an_npz_at_all(case, tmp_path, capsys):
    content, message = NOT_NPZ[case]
    path = tmp_path / "input.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_outputs_npz(path)
    assert_cli_bad_input(capsys, ["audit", str(path)], message)


def test_missing_input_file(tmp_path, capsys):
    path = tmp_path / "nope.npz"
    with pytest.raises(InputError, match=r"input file '.*nope.npz' does not exist"):
        load_outputs_npz(path)
    assert_cli_bad_input(capsys, ["audit", str(path)], r"nope.npz' does not exist")


def test_corrupt_compressed_npz(tmp_path, capsys):
    content = bytes(b ^ 0xFF if 60 <= i < 200 else b
                    for i, b in enumerate(_valid_npz_bytes(True)))
    path = tmp_path / "input.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"is not a readable \.npz"):
        load_outputs_npz(path)


def test_truncated_array_is_not_reported_as_python_objects(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(60, bool))
    path = tmp_path / "input.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("membership.npy", buffer.getvalue()[:-20])
        for key in ("labels", "logits"):
            member = io.BytesIO()
            np.save(member, OURS[key])
            archive.writestr(f"{key}.npy", member.getvalue())
    with pytest.raises(InputError, match=r"array 'membership' in input.npz is corrupt"):
        load_outputs_npz(path)


# --- names ----------------------------------------------------------------------------------


@pytest.fixture
def good_npz(tmp_path: Path) -> Path:
    return save(tmp_path / "good.npz", **OURS)


def test_unknown_attack_lists_the_valid_ones_and_suggests_the_closest(good_npz, capsys):
    line = assert_cli_bad_input(capsys, ["audit", str(good_npz), "--attacks", "threshold,lrr"],
                                r"unknown attack 'lrr' \(did you mean 'lr'\?\); valid: ")
    for name in ("threshold", "threshold_entropy", "lr", "mlp", "rf", "knn"):
        assert name in line.split("valid: ")[1].split(", ")


def test_unknown_slice_lists_the_valid_ones_and_suggests_the_closest(good_npz, capsys):
    assert_cli_bad_input(capsys, ["audit", str(good_npz), "--slices", "entire,clas"],
                         r"unknown slice 'clas' \(did you mean 'class'\?\); valid: entire, "
                         r"class, loss_percentile, correctness, custom$")


def test_bad_fpr_targets(good_npz, capsys):
    assert_cli_bad_input(capsys, ["audit", str(good_npz), "--fpr", "0.01,abc"],
                         r"--fpr must be comma-separated numbers; got '0.01,abc'")
    assert_cli_bad_input(capsys, ["audit", str(good_npz), "--fpr", "1.5"],
                         r"fpr_targets must be in \[0, 1\]; got 1.5")


def test_bad_alpha(good_npz, capsys):
    assert_cli_bad_input(capsys, ["audit", str(good_npz), "--alpha", "0"],
                         r"alpha must be in \(0, 1\); got 0")


def test_out_dir_that_is_a_file(good_npz, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert_cli_bad_input(capsys, ["audit", str(good_npz), "--attacks", "threshold",
                                  "--no-report", "--out", str(tmp_path / "taken")],
                         r"File exists: .*taken")


def test_a_full_disk_is_one_line_and_exit_1(good_npz, tmp_path, capsys, monkeypatch):
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", no_space)
    capsys.readouterr()
    code = main(["audit", str(good_npz), "--attacks", "threshold", "--no-report", "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err == ["memberscope audit: error: [Errno 28] No space left on device"]


# --- one slice cannot crash an audit; attack options are checked first (issue 12) ------------


def _small_class_outputs() -> ModelOutputs:
    """90 examples, 3 classes: class slices of ~30 leave knn's training folds under 25."""
    gen = np.random.default_rng(1)
    return ModelOutputs(membership=np.arange(90) < 45, labels=np.arange(90) % 3,
                        logits=gen.normal(size=(90, 3)))


@pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")
def test_knn_on_small_slices_is_skipped_with_its_reason_not_a_crash():
    from memberscope import audit

    result = audit(_small_class_outputs(), attacks="threshold,knn", slices="entire,class")
    assert {(r.slice, r.attack) for r in result.rows} >= {
        ("entire_dataset", "knn"), ("class=0", "threshold")}
    skipped = {(s.slice, s.attack): s.reason for s in result.skipped}
    assert set(skipped) == {(f"class={k}", "knn") for k in range(3)}
    assert skipped["class=0", "knn"].startswith(
        "n_neighbors=25 but a training fold of this slice holds only ")


@pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")
def test_an_attack_failing_on_one_slice_is_recorded_and_the_rest_goes_on(monkeypatch):
    from memberscope import attacks, audit
    from memberscope.attacks import Attack, get_attack

    def fails_on_class_1(signal, membership, seed, options):
        if len(signal) < 60:
            raise np.linalg.LinAlgError("Singular matrix")
        return signal

    flaky = Attack("flaky_for_test", "fails on small slices", "loss",
                   get_attack("threshold").signal, fails_on_class_1)
    monkeypatch.setitem(attacks._REGISTRY, flaky.name, flaky)  # gone again after the test
    result = audit(_small_class_outputs(), attacks="flaky_for_test", slices="entire,class")
    assert [r.slice for r in result.rows] == ["entire_dataset"]
    assert [s.reason for s in result.skipped] == [
        "the attack failed on this slice: LinAlgError: Singular matrix"] * 3


@pytest.mark.parametrize(("attack", "options", "message"), [
    ("mlp", {"hidden_layer_sizes": 128}, r"^mlp: hidden layer sizes must be a sequence of "
                                         r"positive integers such as \(128,\) or \[256, 256\]; "
                                         r"got 128$"),
    ("mlp", {"hidden_layer_sizes": (64, 0)}, r"^mlp: hidden layer sizes must be positive "
                                             r"integers; got \[64, 0\]$"),
    ("knn", {"n_neighbours": 5}, r"^knn: unknown option\(s\) \['n_neighbours'\]; valid: "
                                 r"\['max_train_per_side', 'n_folds', 'n_neighbors'\]$"),
    ("knn", {"n_neighbors": 0}, r"^knn: option 'n_neighbors' must be an integer >= 1; got 0$"),
    ("lr", {"n_folds": 1}, r"^lr: option 'n_folds' must be an integer >= 2; got 1$"),
    ("lr", {"l2": -1.0}, r"^lr: option 'l2' must be a number >= 0; got -1.0$"),
    ("rf", {"n_estimators": 2.5}, r"^rf: option 'n_estimators' must be an integer >= 1"),
])
def test_attack_options_are_checked_before_any_work(attack, options, message, monkeypatch):
    from memberscope import audit
    from memberscope.attacks import trained

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("an attacker was trained before the options were checked")

    monkeypatch.setattr(trained, "cross_validated_scores", no_work)
    with pytest.raises(InputError, match=message):
        audit(_small_class_outputs(), attacks=["threshold", attack],
              attack_options={attack: options})


def test_the_mlp_model_builder_names_its_hidden_sizes():
    pytest.importorskip("torch")
    from memberscope.train.models import mlp

    with pytest.raises(InputError, match=r"^mlp: hidden layer sizes must be a sequence of "
                                         r"positive integers .*; got 128$"):
        mlp(64, 10, 128)  # type: ignore[arg-type]
    assert len(mlp(64, 10, [256, 256])) == 6


# --- TF Privacy's inputs: binary outputs, loss without labels, the user's names (issue 12) ----


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_binary_logits_and_probabilities_are_class_1_of_a_sigmoid():
    gen = np.random.default_rng(4)
    z = gen.normal(scale=3.0, size=40)
    labels = gen.integers(0, 2, 40)
    # Oracle: binary cross-entropy, written out.
    p = _sigmoid(z)
    expected_loss = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    for name, column in (("logits", z), ("probs", p)):
        for shaped in (column, column[:, None]):
            out = ModelOutputs.from_train_test(
                **{f"{name}_train": shaped[:25], f"{name}_test": shaped[25:]},
                labels_train=labels[:25], labels_test=labels[25:])
            assert out.num_classes == 2
            np.testing.assert_allclose(out.loss_values, expected_loss, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(out.probabilities[:, 1], p, rtol=1e-12)
            np.testing.assert_array_equal(out.is_correct, (p > 0.5) == (labels == 1))
    direct = ModelOutputs(membership=np.arange(40) < 25, labels=labels, probs=p)
    np.testing.assert_allclose(direct.loss_values, expected_loss, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"probs_test": np.r_[0.2, 0.4, 0.1, 1.5, 0.3]},
     r"^probs_test holds a binary model's probability of class 1 and must be in \[0, 1\]; "
     r"row 3 is 1.5$"),
    ({"labels_test": np.r_[0, 1, 1, 2, 0]},
     r"^labels_test must be < 2 \(the number of classes\); row 3 is 2$"),
    ({"logits_train": np.r_[0.1, np.nan, 0.3, 0.2, 0.0, 1.0], "probs_train": None,
      "probs_test": None, "logits_test": np.zeros(5)},
     r"^logits_train contains 1 NaN value\(s\) \(first at row 1\)$"),
])
def test_binary_input_errors_name_the_users_array_and_row(arrays, message):
    given: dict[str, object] = {"probs_train": np.full(6, 0.7), "probs_test": np.full(5, 0.4),
                                "labels_train": np.ones(6, int), "labels_test": np.zeros(5, int)}
    given.update(arrays)
    with pytest.raises(InputError, match=message):
        ModelOutputs.from_train_test(**given)


@pytest.mark.parametrize(("side", "array", "value", "message"), [
    ("test", "labels", 4, r"^labels_test must be < 4 \(the number of classes\); row 3 is 4$"),
    ("train", "labels", -1, r"^labels_train must be >= 0; row 3 is -1$"),
    ("test", "sample_weight", -1.0, r"^sample_weight_test must be >= 0; row 3 is -1.0$"),
    ("train", "probs", 2.0, r"^probs_train rows must sum to 1 .* first row 3 sums to"),
    ("test", "loss", np.inf, r"^loss_test contains 1 infinite value\(s\) \(first at row 3\)$"),
])
def test_from_train_test_messages_name_the_users_array_and_its_row(side, array, value,
                                                                    message):
    """The members' rows come first in the merged arrays; messages still count in the
    user's own array (row 3 of labels_test, not row 33 of the merged labels)."""
    full = {"labels": LABELS.copy(), "probs": PROBS.copy(), "loss": LOSS.copy(),
            "sample_weight": np.ones(60)}
    halves = {f"{k}_{s}": v[:30].copy() if s == "train" else v[30:].copy()
              for k, v in full.items() for s in ("train", "test")}
    target = halves[f"{array}_{side}"]
    target[3] = value if array != "probs" else target[3] * value
    with pytest.raises(InputError, match=message):
        ModelOutputs.from_train_test(**halves)


def test_loss_without_labels_audits_and_skips_what_needs_labels(tmp_path, capsys):
    """TF Privacy's loss-only input (a language model's per-example losses): labels optional."""
    import json

    gen = np.random.default_rng(5)
    path = save(tmp_path / "lm.npz", loss_train=gen.exponential(0.8, 50),
                loss_test=gen.exponential(1.2, 40))
    out = load_outputs_npz(path)
    assert out.labels is None and (out.n_members, out.n_nonmembers) == (50, 40)
    capsys.readouterr()
    code = main(["audit", str(path), "--attacks", "threshold,lr,threshold_entropy",
                 "--slices", "entire,class,correctness", "--out", str(tmp_path / "o"),
                 "--no-report"])
    assert code == 0, capsys.readouterr().err
    document = json.loads((tmp_path / "o" / "result.json").read_text())
    assert [(r["slice"], r["attack"]) for r in document["rows"]] == [
        ("entire_dataset", "threshold"), ("entire_dataset", "lr")]
    reasons = {(s["slice"], s["attack"]): s["reason"] for s in document["skipped"]}
    assert reasons["class", "threshold"] == "needs labels; the outputs hold loss without labels"
    assert reasons["correctly_classified", "lr"].startswith("needs logits or probs")
    assert reasons["entire_dataset", "threshold_entropy"].startswith(
        "this attack needs logits or probs")
    ours = save(tmp_path / "ours.npz", membership=np.arange(90) < 50,
                loss=np.r_[gen.exponential(0.8, 50), gen.exponential(1.2, 40)])
    assert load_outputs_npz(ours).labels is None
