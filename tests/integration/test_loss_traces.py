"""Loss traces recorded by the real trainer and runner: what the trainer records, the
run directory's traces/ files read back through memberscope.rundir, and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from tests.integration.test_run_experiment import _config_text, _dataset  # noqa: E402
from tests.integration.test_train_torch import _one_thread  # noqa: E402, F401 (autouse)

from memberscope import rundir  # noqa: E402
from memberscope.experiment import runner  # noqa: E402
from memberscope.experiment.config import parse_toml  # noqa: E402
from memberscope.experiment.runner import run_experiment  # noqa: E402
from memberscope.store import read_jsonl  # noqa: E402
from memberscope.train.models import small_cnn  # noqa: E402
from memberscope.train.settings import DPSettings, TrainSettings  # noqa: E402
from memberscope.train.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.torch


def _digits(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[:n, :, :, None] / 16).astype(np.float32), digits.target[:n]


def _per_example_loss(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from memberscope.train.trainer import as_model_input

    with torch.no_grad():
        logits = model(as_model_input(x))
        return torch.nn.functional.cross_entropy(logits, torch.as_tensor(y),
                                                 reduction="none").numpy()


def test_trainer_records_the_loss_each_step_computed() -> None:
    # One batch per epoch: epoch e's recorded loss is the loss of the weights before its one
    # step (the small CNN has no dropout or batch norm, so training mode changes nothing).
    x, y = _digits(120)
    torch.manual_seed(0)
    trainer = Trainer(small_cnn((8, 8, 1), 10, 1), x, y,
                      TrainSettings(epochs=3, batch_size=120), device="cpu")
    expected = []
    for _ in range(3):
        expected.append(_per_example_loss(trainer.model, x, y))
        trainer.train_epoch()
    trace = trainer.loss_trace
    assert trace.shape == (120, 3) and trace.dtype == np.float32
    np.testing.assert_allclose(trace, np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(trace[:, 0], trace[:, 2])  # it trained


def test_poisson_batches_leave_entries_missing_and_the_rest_finite() -> None:
    x, y = _digits(200)
    torch.manual_seed(0)
    trainer = Trainer(small_cnn((8, 8, 1), 10, 1), x, y,
                      TrainSettings(epochs=4, batch_size=20, dp=DPSettings(noise_multiplier=1.0)),
                      device="cpu")
    trainer.fit()
    trace = trainer.loss_trace
    missing = np.isnan(trace)
    # Sample rate 0.1 over 10 steps: an example misses an epoch with probability 0.9^10.
    assert 0.25 < missing.mean() < 0.45
    assert np.isfinite(trace[~missing]).all() and (trace[~missing] >= 0).all()


def test_without_recording_the_trace_is_all_missing_and_restore_checks_its_shape() -> None:
    x, y = _digits(50)
    trainer = Trainer(small_cnn((8, 8, 1), 10, 1), x, y, TrainSettings(epochs=2),
                      device="cpu", record_losses=False)
    trainer.fit()
    assert trainer.loss_trace.shape == (50, 2) and np.isnan(trainer.loss_trace).all()
    with pytest.raises(ValueError, match=r"loss trace must be \(50, epochs\).*\(49, 2\)"):
        trainer.restore_loss_trace(np.zeros((49, 2)))


def _traces(run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for traces in rundir.run_traces(run_dir):
        out[traces.model] = {"losses": traces.losses, "epochs": traces.epochs,
                             "example_index": traces.example_index, "labels": traces.labels}
    return out


def _rows(run_dir: Path) -> list[dict]:
    timings = {"inference_seconds", "audit_seconds", "epoch_seconds", "images_per_second"}
    return [{**r, "metadata": {k: v for k, v in r["metadata"].items() if k not in timings}}
            for r in read_jsonl(run_dir / "results.jsonl")]


def test_the_runner_writes_traces_that_read_back_through_rundir(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "tiny.npz", n_train=300, n_test=150)
    config = parse_toml(_config_text(data, epochs=5, every=5))
    run_experiment(config, tmp_path / "run")
    labels = np.load(data)["y_train"]
    found = rundir.run_traces(tmp_path / "run")
    assert [t.model for t in found] == ["cnn", "cnn, DP-Adam"]
    assert sorted(p.name for p in (tmp_path / "run" / "traces").iterdir()) == \
        ["cnn.npz", "cnn_DP-Adam.npz"]
    for traces in found:
        assert traces.losses.shape == (300, 5) and traces.losses.dtype == np.float32
        assert traces.epochs.tolist() == [1, 2, 3, 4, 5]
        np.testing.assert_array_equal(traces.example_index, np.arange(300))
        np.testing.assert_array_equal(traces.labels, labels)
    plain, dp = found
    assert not np.isnan(plain.losses).any()  # every example in every epoch
    assert np.isnan(dp.losses).any()  # Poisson sampling
    # The members' loss falls as the model learns them.
    assert np.nanmean(plain.losses[:, -1]) < np.nanmean(plain.losses[:, 0])
    # Each audit row carries the trace-risk summary of that epoch.
    rows = [r for r in read_jsonl(tmp_path / "run" / "results.jsonl") if r["kind"] == "row"]
    summaries = {r["metadata"]["model"]: r["metadata"]["trace_risk"] for r in rows}
    assert summaries["cnn"]["method"] == "iqr" and summaries["cnn"]["n_scored"] == 300
    expected = plain.risk("iqr")
    assert summaries["cnn"]["max"] == pytest.approx(float(np.nanmax(expected)))


def test_a_run_killed_after_writing_traces_resumes_to_identical_traces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The worst moment: epoch 3's traces are on disk but its checkpoint is not, so the
    # resumed run must drop that column and train epoch 3 again.
    data = _dataset(tmp_path / "tiny.npz", n_train=200, n_test=100)
    config = parse_toml(_config_text(data, epochs=4, every=2))
    reference = tmp_path / "uninterrupted"
    run_experiment(config, reference)

    real_save = runner.save_checkpoint

    def save_then_die(path, state, **kwargs):
        if kwargs["label"] == "cnn, DP-Adam" and state["epoch"] == 3:
            raise KeyboardInterrupt  # as a kill would stop it
        return real_save(path, state, **kwargs)

    killed = tmp_path / "killed"
    monkeypatch.setattr(runner, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, killed)
    monkeypatch.undo()
    assert rundir.read_traces(rundir.traces_path(killed, "cnn, DP-Adam")).epochs.tolist() == \
        [1, 2, 3]
    run_experiment(config, killed, resume=True)
    expected, got = _traces(reference), _traces(killed)
    assert expected.keys() == got.keys() == {"cnn", "cnn, DP-Adam"}
    for model, arrays in expected.items():
        for key, array in arrays.items():
            np.testing.assert_array_equal(got[model][key], array)  # bit for bit, NaN included
    assert _rows(killed) == _rows(reference)


def test_resume_without_the_traces_file_leaves_the_lost_epochs_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _dataset(tmp_path / "tiny.npz", n_train=120, n_test=60)
    config = parse_toml(_config_text(data, epochs=3, every=3, dp=False))
    real_save = runner.save_checkpoint

    def save_then_die(path, state, **kwargs):
        real_save(path, state, **kwargs)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    monkeypatch.setattr(runner, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, run_dir)
    monkeypatch.undo()
    rundir.traces_path(run_dir, "cnn").unlink()
    run_experiment(config, run_dir, resume=True)
    losses = rundir.read_traces(rundir.traces_path(run_dir, "cnn")).losses
    assert losses.shape == (120, 3)
    assert np.isnan(losses[:, :2]).all() and np.isfinite(losses[:, 2]).all()


@pytest.mark.parametrize("every_epoch", [False, True])
def test_the_torch_hook_records_the_audited_members_losses(every_epoch: bool) -> None:
    from memberscope.monitor.torch import TorchMonitorHook
    from memberscope.train.trainer import predict_logits

    x, y = _digits(300)
    torch.manual_seed(0)
    trainer = Trainer(small_cnn((8, 8, 1), 10, 1), x[:200], y[:200],
                      TrainSettings(epochs=4, batch_size=50), device="cpu")
    hook = TorchMonitorHook(trainer.model, members=(x[:200], y[:200]),
                            nonmembers=(x[200:], y[200:]), epochs_per_report=2,
                            attacks=["threshold"], slices=["entire"], member_sample=100,
                            verbose=False, trace_every_epoch=every_epoch)
    expected = {}
    index = hook.member_index
    for epoch in range(1, 5):
        trainer.train_epoch()
        hook.on_epoch_end(epoch)
        logits = predict_logits(trainer.model, trainer.x, index)
        expected[epoch] = torch.nn.functional.cross_entropy(
            torch.as_tensor(logits), torch.as_tensor(y[index]), reduction="none").numpy()
    traces = hook.loss_traces
    epochs = [1, 2, 3, 4] if every_epoch else [2, 4]
    assert traces.epochs.tolist() == epochs and traces.losses.shape == (100, len(epochs))
    np.testing.assert_array_equal(traces.example_index, index)
    np.testing.assert_array_equal(traces.labels, y[index])
    np.testing.assert_allclose(traces.losses, np.stack([expected[e] for e in epochs], axis=1),
                               rtol=1e-5, atol=1e-6)
    assert [r.metadata["epoch"] for r in hook.results.filter(attack="threshold").rows] == [2, 4]
