"""``run_experiment`` / ``memberscope run``: run directory, resume after SIGKILL, bad input,
a full disk, and checkpoints of another config."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from memberscope.cli import main
from memberscope.errors import InputError
from memberscope.experiment.config import parse_toml
from memberscope.experiment.runner import RunWriteError, run_experiment
from memberscope.one_run import epsilon_one_run
from memberscope.rundir import canaries_path, read_canaries
from memberscope.store import load_npz, read_jsonl
from memberscope.train.checkpoint import CheckpointMismatchError, load_checkpoint

pytestmark = pytest.mark.torch

TIMING_KEYS = {"inference_seconds", "audit_seconds", "epoch_seconds", "images_per_second"}


def _dataset(path: Path, n_train: int = 600, n_test: int = 300, side: int = 8) -> Path:
    """A learnable synthetic image dataset in the ``.npz`` layout the loaders read."""
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.random((n, side, side, 1), dtype=np.float32) * 0.6
        for label in range(3):
            x[y == label, :, label * side // 3:(label + 1) * side // 3] += 0.4
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _config_text(data: Path, *, epochs: int = 4, every: int = 2, batch: int = 20,
                 lr: float = 0.003, dp: bool = True) -> str:
    text = f"""
name = "tiny"
seed = 7
[dataset]
name = "{data}"
[training]
epochs = {epochs}
epochs_per_report = {every}
batch_size = {batch}
learning_rate = {lr}
threads = 1
[audit]
attacks = ["threshold", "lr"]
slices = ["entire", "class"]
member_sample = "balanced"
[[variants]]
label = "cnn"
num_conv = 1
"""
    if dp:
        text += """
[[variants]]
label = "cnn, DP-Adam"
num_conv = 1
[variants.dp]
noise_multiplier = 1.0
"""
    return text


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    """results.jsonl without the wall-clock timings (which differ between runs)."""
    rows = []
    for record in read_jsonl(run_dir / "results.jsonl"):
        record = dict(record)
        record["metadata"] = {k: v for k, v in record["metadata"].items()
                              if k not in TIMING_KEYS}
        rows.append(record)
    return sorted(rows, key=lambda r: (r["metadata"]["model"], r["metadata"]["epoch"],
                                       r["kind"], r.get("slice", ""), r.get("attack", "")))


def _scores(run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    return {str(p.relative_to(run_dir)): load_npz(p)
            for p in sorted((run_dir / "scores").rglob("*.npz"))}


def _traces(run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.name: load_npz(p) for p in sorted((run_dir / "traces").glob("*.npz"))}


def _assert_same_run(a: Path, b: Path) -> None:
    assert _rows(a) == _rows(b)
    traces_a, traces_b = _traces(a), _traces(b)
    assert traces_a.keys() == traces_b.keys() and traces_a
    for key, arrays in traces_a.items():
        for name, array in arrays.items():
            np.testing.assert_array_equal(array, traces_b[key][name])  # NaN included
    scores_a, scores_b = _scores(a), _scores(b)
    assert scores_a.keys() == scores_b.keys()
    for key, arrays in scores_a.items():
        for name, array in arrays.items():
            np.testing.assert_array_equal(array, scores_b[key][name])


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return _dataset(tmp_path / "tiny.npz")


def test_run_writes_the_run_directory_and_records_epsilon(tmp_path: Path, data: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(_config_text(data))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"results: {out / 'results.jsonl'}" in printed
    assert "report:" in printed
    assert parse_toml((out / "config.toml").read_text()).fingerprint() == \
        parse_toml(config.read_text()).fingerprint()
    rows = [r for r in read_jsonl(out / "results.jsonl") if r["kind"] == "row"]
    by_model: dict[str, set[int]] = {}
    for row in rows:
        by_model.setdefault(row["metadata"]["model"], set()).add(row["metadata"]["epoch"])
    assert by_model == {"cnn": {2, 4}, "cnn, DP-Adam": {2, 4}}
    entire = {(r["metadata"]["model"], r["metadata"]["epoch"]): r for r in rows
              if r.get("slice") == "entire_dataset" and r.get("attack") == "threshold"}
    assert entire["cnn", 4]["n_members"] == entire["cnn", 4]["n_nonmembers"] == 300
    assert entire["cnn", 4]["metadata"]["test_accuracy"] > 0.9
    assert "epsilon" not in entire["cnn", 4]["metadata"]
    eps2 = entire["cnn, DP-Adam", 2]["metadata"]["epsilon"]
    eps4 = entire["cnn, DP-Adam", 4]["metadata"]["epsilon"]
    assert 0 < eps2 < eps4
    # DP rows name the accountant and its δ, and their empirical bound is at that δ.
    dp_rows = [r for r in rows if r["metadata"]["model"] == "cnn, DP-Adam"]
    assert {(r["metadata"]["delta"], r["metadata"]["accountant"]) for r in dp_rows} == \
        {(1e-5, "prv")}
    assert {r["epsilon_lower_bound"]["delta"] for r in dp_rows} == {1e-5}
    assert "delta" not in entire["cnn", 4]["metadata"]
    assert entire["cnn", 4]["epsilon_lower_bound"]["delta"] == 0.0
    for key in ("epoch_seconds", "inference_seconds", "audit_seconds", "train_loss"):
        assert key in entire["cnn", 2]["metadata"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["cnn.pt",
                                                                        "cnn_DP-Adam.pt"]
    scores = load_npz(out / "scores" / "cnn" / "epoch_0004.npz")
    assert scores["scores_threshold"].shape == (600,)
    assert scores["member_index"].shape == (300,)


def test_dp_variant_with_canaries_records_epsilon_audit(tmp_path: Path, data: Path) -> None:
    from memberscope.experiment.runner import run_experiment

    config = parse_toml(_config_text(data) + "[variants.dp.canaries]\nm = 200\n"
                        "black_box = true\n")
    out = tmp_path / "run"
    run_experiment(config, out)
    rows = [r for r in read_jsonl(out / "results.jsonl") if r["kind"] == "row"]
    dp_rows = [r for r in rows if r["metadata"]["model"] == "cnn, DP-Adam"]
    assert all("epsilon_audit" not in r["metadata"] for r in rows if r not in dp_rows)
    for row in dp_rows:
        audit = row["metadata"]["epsilon_audit"]
        assert audit["method"] == "approx_dp" and audit["assumption"] is None
        assert audit["m"] == 200 and audit["delta"] == 1e-5 and audit["alpha"] == 0.05
        assert set(audit["by_method"]) == {"approx_dp", "steinke", "gaussian_fdp"}
        for kind in ("white_box", "black_box"):
            assert 0 <= audit[kind] <= row["metadata"]["epsilon"]
            assert audit["by_method"]["approx_dp"][kind] == audit[kind]
            assert 0 <= audit["by_method"]["gaussian_fdp"][kind] <= row["metadata"]["epsilon"]
    canaries = read_canaries(canaries_path(out, "cnn, DP-Adam"))
    assert (canaries.model, canaries.epoch) == ("cnn, DP-Adam", 4)
    white, black = canaries.white_box, canaries.black_box
    assert white.coordinates.shape == white.included.shape == white.scores.shape == (200,)
    assert black.index.shape == black.included.shape == black.scores.shape == (200,)
    # The file holds what the last audit's one-run bounds were computed from.
    last = next(r for r in dp_rows if r["metadata"]["epoch"] == 4)["metadata"]["epsilon_audit"]
    for kind, part in (("white_box", white), ("black_box", black)):
        assert epsilon_one_run(part.scores, part.included, delta=1e-5,
                               alpha=0.05).epsilon == last[kind]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    # Small batches make epochs slow enough for the kill to land inside the DP variant's
    # training, after its first checkpoint; the non-DP variant has finished by then.
    data = _dataset(tmp_path / "small.npz", n_train=300, n_test=150)
    config_path = tmp_path / "tiny.toml"
    config_path.write_text(_config_text(data, epochs=3, every=1, batch=4))
    config = parse_toml(config_path.read_text())
    reference = tmp_path / "uninterrupted"
    run_experiment(config, reference)

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from memberscope.cli import run; run()", "run",
         str(config_path), "--out", str(killed), "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = killed / "checkpoints" / "cnn_DP-Adam.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    time.sleep(0.2)  # into the next epoch
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    state = load_checkpoint(checkpoint, fingerprint=config.fingerprint(), label="cnn, DP-Adam")
    assert not state["finished"]

    with pytest.raises(InputError, match="already holds a run; pass --resume"):
        run_experiment(config, killed)
    summary = run_experiment(config, killed, resume=True)
    assert [v.epoch for v in summary.variants] == [3, 3]
    assert summary.variants[1].epsilon is not None and summary.variants[1].epsilon > 0
    _assert_same_run(reference, killed)
    # Resuming a finished run changes nothing.
    run_experiment(config, killed, resume=True)
    _assert_same_run(reference, killed)


def test_full_disk_keeps_earlier_results_and_the_run_resumes(
        tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_toml(_config_text(data, epochs=3, every=1, dp=False))
    reference = tmp_path / "reference"
    run_experiment(config, reference)

    real_write = os.write
    appends = {"count": 0}

    def full_disk_write(fd: int, payload: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("results.jsonl"):
            appends["count"] += 1
            if appends["count"] >= 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, payload)

    run_dir = tmp_path / "full"
    monkeypatch.setattr(os, "write", full_disk_write)
    with pytest.raises(RunWriteError) as caught:
        run_experiment(config, run_dir)
    monkeypatch.undo()
    message = str(caught.value)
    assert "No space left on device" in message and "--resume" in message
    assert str(run_dir / "results.jsonl") in message
    epochs = {r["metadata"]["epoch"] for r in read_jsonl(run_dir / "results.jsonl")}
    assert epochs == {1}
    run_experiment(config, run_dir, resume=True)
    _assert_same_run(reference, run_dir)


def test_cli_reports_a_full_disk_in_one_line(tmp_path: Path, data: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(_config_text(data, epochs=1, every=1, dp=False))

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("memberscope.store.append_jsonl", no_space)
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("memberscope run: error: could not write")
    assert "No space left on device" in error


def test_resume_with_another_config_is_refused(tmp_path: Path, data: Path) -> None:
    first = parse_toml(_config_text(data, epochs=1, dp=False))
    run_dir = tmp_path / "run"
    run_experiment(first, run_dir)
    changed = parse_toml(_config_text(data, epochs=1, dp=False, lr=0.01))
    with pytest.raises(CheckpointMismatchError,
                       match=r"another config; changed: training\.learning_rate: 0\.003 -> "
                             r"0\.01.*variants\[0\]\.learning_rate"):
        run_experiment(changed, run_dir, resume=True)
    with pytest.raises(CheckpointMismatchError, match="written by another config"):
        load_checkpoint(run_dir / "checkpoints" / "cnn.pt", fingerprint=changed.fingerprint(),
                        label="cnn")


def test_bad_dataset_path_and_shapes_give_clear_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(_config_text(tmp_path / "missing.npz", dp=False))
    assert main(["run", str(config), "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "missing.npz" in error and error.count("\n") == 1
    assert not (tmp_path / "a").exists()

    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=np.zeros((20, 5), np.float32), y_train=np.arange(20) % 2,
             x_test=np.zeros((10, 5), np.float32), y_test=np.arange(10) % 2)
    with pytest.raises(InputError, match=r"variants\[0\]\.model: model small_cnn needs images"):
        run_experiment(parse_toml(_config_text(flat, dp=False)), tmp_path / "b")

    tiny = tmp_path / "tiny_images.npz"
    np.savez(tiny, x_train=np.zeros((20, 4, 4, 1), np.float32), y_train=np.arange(20) % 2,
             x_test=np.zeros((10, 4, 4, 1), np.float32), y_test=np.arange(10) % 2)
    text = _config_text(tiny, dp=False).replace("num_conv = 1", "num_conv = 2")
    with pytest.raises(InputError, match=r"variants\[0\]\.model: input_shape \(4, 4, 1\) is "
                                         r"too small for 2 conv layers"):
        run_experiment(parse_toml(text), tmp_path / "c")

    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, x_train=np.zeros((20, 8, 8, 1), np.float32), y_train=np.arange(19) % 2,
             x_test=np.zeros((10, 8, 8, 1), np.float32), y_test=np.arange(10) % 2)
    with pytest.raises(InputError, match="ragged"):
        run_experiment(parse_toml(_config_text(ragged, dp=False)), tmp_path / "d")


def test_config_errors_exit_2_with_every_problem(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[dataset]\nname = "digits"\n[training]\nepochs = 0\n'
                      '[[variants]]\nlabel = "x"\noptimizer = "adamw2"\n')
    assert main(["run", str(config)]) == 2
    error = capsys.readouterr().err
    assert "training.epochs: must be >= 1" in error
    assert "variants[0].optimizer: unknown optimizer 'adamw2' (did you mean 'adamw'?)" in error
