"""Models, the trainer (determinism, DP, state round trip) and the hand-written-loop hook."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from memberscope.errors import InputError  # noqa: E402
from memberscope.monitor.torch import TorchMonitorHook  # noqa: E402
from memberscope.train.models import mlp, small_cnn  # noqa: E402
from memberscope.train.settings import DPSettings, TrainSettings  # noqa: E402
from memberscope.train.trainer import Trainer, as_model_input  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _images(n: int = 300, side: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is readable from the mean brightness of one quadrant."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, side, side, 1), dtype=np.float32) * 0.5
    half = side // 2
    for label, (r, c) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
        x[y == label, r:r + half, c:c + half] += 0.5
    return x, y


@pytest.mark.parametrize(("shape", "num_conv", "flat"), [
    ((32, 32, 3), 3, 2 * 2 * 32), ((32, 32, 3), 2, 6 * 6 * 32), ((28, 28, 1), 2, 5 * 5 * 32),
    ((28, 28, 1), 3, 1 * 1 * 32), ((8, 8, 1), 1, 3 * 3 * 32), ((40, 24, 3), 2, 8 * 4 * 32)])
def test_small_cnn_shapes_match_the_keras_codelab(shape: tuple[int, int, int], num_conv: int,
                                                  flat: int) -> None:
    model = small_cnn(shape, 10, num_conv)
    dense = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert dense[0].in_features == flat and dense[0].out_features == 64
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == num_conv and all(c.out_channels == 32 for c in convs)
    x = np.zeros((5, *shape), dtype=np.float32)
    assert model(as_model_input(x)).shape == (5, 10)


def _in_codelab_order(model: torch.nn.Sequential) -> torch.nn.Sequential:
    """The same layers (shared parameters), each block as Conv, activation, MaxPool."""
    layers, ordered, i = list(model), [], 0
    while i < len(layers):
        if isinstance(layers[i], torch.nn.Conv2d):
            first, second = layers[i + 1], layers[i + 2]
            pool, activation = ((first, second) if isinstance(first, torch.nn.MaxPool2d)
                                else (second, first))
            ordered += [layers[i], activation, pool]
            i += 3
        else:
            ordered.append(layers[i])
            i += 1
    return torch.nn.Sequential(*ordered)


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu", "sigmoid", "gelu"])
def test_pooling_before_the_activation_is_the_codelab_function(activation: str) -> None:
    torch.manual_seed(0)
    model = small_cnn((15, 13, 2), 4, 2, activation)
    reference = _in_codelab_order(model)
    x = torch.randn(6, 2, 15, 13, requires_grad=True)
    ours = model(x)
    (our_grad,) = torch.autograd.grad(ours.square().sum(), x)
    theirs = reference(x)
    (their_grad,) = torch.autograd.grad(theirs.square().sum(), x)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(our_grad, their_grad)
    pools_first = isinstance(model[1], torch.nn.MaxPool2d)
    assert pools_first == (activation != "gelu")  # GELU is not monotone: codelab order


def test_codelab_cnn_parameter_count() -> None:
    # Keras' summary of the codelab's 3-layer CIFAR-10 model: 896 + 9248 + 9248 + 8256 + 650.
    assert sum(p.numel() for p in small_cnn((32, 32, 3), 10, 3).parameters()) == 28298


def test_too_small_inputs_and_bad_arguments_are_refused() -> None:
    with pytest.raises(InputError, match=r"too small for 3 conv layers.*leaving 0x0"):
        small_cnn((8, 8, 1), 10, 3)
    with pytest.raises(InputError, match="input_shape must be"):
        small_cnn((8, 8), 10, 1)
    with pytest.raises(InputError, match="unknown activation 'rleu'"):
        small_cnn((8, 8, 1), 10, 1, activation="rleu")
    assert mlp(7, 3, hidden=(5,))(torch.zeros(2, 7)).shape == (2, 3)


def _train(settings: TrainSettings, seed: int = 0) -> Trainer:
    x, y = _images()
    torch.manual_seed(seed)
    trainer = Trainer(small_cnn((12, 12, 1), 4, 1), x, y, settings, device="cpu")
    trainer.fit()
    return trainer


def _weights(trainer: Trainer) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in trainer.model.parameters()]


def test_training_learns_and_is_deterministic_under_a_seed() -> None:
    settings = TrainSettings(epochs=3, batch_size=20, learning_rate=0.01, seed=1)
    first, second = _train(settings), _train(settings)
    for a, b in zip(_weights(first), _weights(second), strict=True):
        np.testing.assert_array_equal(a, b)
    other = _train(TrainSettings(epochs=3, batch_size=20, learning_rate=0.01, seed=2))
    assert any(not np.array_equal(a, b)
               for a, b in zip(_weights(first), _weights(other), strict=True))
    x, y = _images(seed=5)
    accuracy = np.mean(first.predict(as_model_input(x)).argmax(1) == y)
    assert accuracy > 0.9


@pytest.mark.parametrize("mode", ["direct", "hooks", "ew"])
def test_dp_training_reports_growing_epsilon(mode: str) -> None:
    dp = DPSettings(noise_multiplier=1.0, max_grad_norm=1.0, grad_sample_mode=mode)
    trainer = Trainer(small_cnn((12, 12, 1), 4, 1), *_images(), TrainSettings(
        epochs=2, batch_size=30, dp=dp), device="cpu")
    assert trainer.epsilon() == 0.0
    trainer.train_epoch()
    after_one = trainer.epsilon()
    trainer.train_epoch()
    after_two = trainer.epsilon()
    assert after_one is not None and after_two is not None
    assert 0 < after_one < after_two
    # The accountant saw one step per expected batch: 300 / 30 per epoch.
    assert sum(n for _, _, n in trainer.accountant.history) == 20


@pytest.mark.parametrize("dp", [None, DPSettings(noise_multiplier=1.0)], ids=["plain", "dp"])
def test_a_trainer_changes_no_process_state(monkeypatch: pytest.MonkeyPatch,
                                            dp: DPSettings | None) -> None:
    # Threads and the allocator are tuned at the edges (memberscope._runtime), never here.
    from memberscope import _runtime

    monkeypatch.setattr(_runtime, "_applied", False)
    x, y = _images(40)
    model = small_cnn((12, 12, 1), 4, 1)
    def tuning_environment() -> dict[str, str]:  # torch itself may set TORCHINDUCTOR_* ones
        return {k: v for k, v in os.environ.items()
                if k.startswith(("OMP_", "MKL_", "OPENBLAS_", "MALLOC_", "MEMBERSCOPE_"))}

    threads, rng, environment = torch.get_num_threads(), torch.get_rng_state(), \
        tuning_environment()
    trainer = Trainer(model, x, y, TrainSettings(epochs=1, batch_size=10, dp=dp), device="cpu")
    trainer.train_epoch()
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)
    assert tuning_environment() == environment
    assert _runtime._applied is False


def test_target_epsilon_is_met() -> None:
    dp = DPSettings(target_epsilon=2.0, accountant="rdp")
    trainer = _train(TrainSettings(epochs=2, batch_size=30, dp=dp))
    assert trainer.epsilon() == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("dp", [None, DPSettings(noise_multiplier=0.7)])
def test_state_round_trip_through_weights_only_load_continues_identically(
        dp: DPSettings | None) -> None:
    settings = TrainSettings(epochs=3, batch_size=25, seed=4, dp=dp)
    straight = _train(settings)
    x, y = _images()
    torch.manual_seed(0)
    first = Trainer(small_cnn((12, 12, 1), 4, 1), x, y, settings, device="cpu")
    first.train_epoch()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch.manual_seed(123)  # other initial weights: the state must overwrite them
    resumed = Trainer(small_cnn((12, 12, 1), 4, 1), x, y, settings, device="cpu")
    resumed.load_state_dict(state)
    resumed.fit()
    for a, b in zip(_weights(straight), _weights(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.epsilon() == straight.epsilon()


def test_hook_audits_a_hand_written_loop_every_k_epochs() -> None:
    x, y = _images(400)
    x_test, y_test = _images(200, seed=9)
    torch.manual_seed(0)
    model = small_cnn((12, 12, 1), 4, 1)
    optimizer = torch.optim.Adam(model.parameters(), 0.01)
    seen: list[int] = []
    hook = TorchMonitorHook(model, members=(x, y), nonmembers=(x_test, y_test),
                            epochs_per_report=2, attacks=["threshold", "lr"],
                            slices=["entire", "class"], verbose=False,
                            model_label="hand", member_sample=200, fpr_targets=(0.01, 0.1),
                            on_result=lambda r: seen.append(r.rows[0].metadata["epoch"]))
    inputs, targets = as_model_input(x), torch.as_tensor(y)
    for epoch in range(1, 5):
        for start in range(0, 400, 40):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs[start:start + 40]),
                                                     targets[start:start + 40])
            loss.backward()
            optimizer.step()
        result = hook.on_epoch_end(epoch, note="x")
        assert (result is None) == (epoch % 2 == 1)
    assert seen == [2, 4]
    assert len(hook.member_index) == 200
    rows = list(hook.results)
    assert {r.metadata["epoch"] for r in rows} == {2, 4}
    row = next(r for r in rows if r.slice == "entire_dataset" and r.metadata["epoch"] == 4)
    assert row.n_members == 200 and row.n_nonmembers == 200
    assert row.metadata["model"] == "hand" and row.metadata["note"] == "x"
    assert row.metadata["test_accuracy"] > 0.8
    assert row.metadata["inference_seconds"] >= 0
    assert model.training  # the hook restores training mode


def test_hook_refuses_mismatched_pairs() -> None:
    model = small_cnn((12, 12, 1), 4, 1)
    x, y = _images(50)
    with pytest.raises(InputError, match="members: y must be"):
        TorchMonitorHook(model, members=(x, y[:10]), nonmembers=(x, y))


def test_hook_checks_every_argument_before_training() -> None:
    model = small_cnn((12, 12, 1), 4, 1)
    pair = _images(50)
    with pytest.raises(InputError, match=r"unknown attack 'rmai' \(did you mean 'rmia'"):
        TorchMonitorHook(model, members=pair, nonmembers=pair, attacks=["threshold", "rmai"])
    with pytest.raises(InputError, match="attack 'lira' needs reference models"):
        TorchMonitorHook(model, members=pair, nonmembers=pair, attacks=["lira"])
    with pytest.raises(InputError, match=r"unknown audit option 'alpah' \(did you mean 'alpha'"):
        TorchMonitorHook(model, members=pair, nonmembers=pair, alpah=0.01)
    with pytest.raises(InputError, match=r"member_sample must be an integer >= 1; got 0\.5"):
        TorchMonitorHook(model, members=pair, nonmembers=pair, member_sample=0.5)
    with pytest.raises(InputError, match=r"model must be a torch\.nn\.Module; got tuple"):
        TorchMonitorHook(pair, members=pair, nonmembers=pair)


def test_hook_takes_one_hot_labels_and_the_old_every_with_a_warning() -> None:
    model = small_cnn((12, 12, 1), 4, 1)
    x, y = _images(60)
    with pytest.warns(DeprecationWarning, match="'every' is deprecated"):
        hook = TorchMonitorHook(model, members=(x, np.eye(4)[y]), nonmembers=(x, y), every=3)
    assert hook.monitor.epochs_per_report == 3
    np.testing.assert_array_equal(hook.monitor.member_labels, y)


def _train_by_hand(hook_on: bool) -> list[np.ndarray]:
    """Two epochs of a loop that shuffles with torch's global RNG, audited or not."""
    x, y = _images(200)
    torch.manual_seed(11)
    model = small_cnn((12, 12, 1), 4, 1)
    optimizer = torch.optim.SGD(model.parameters(), 0.05)
    hook = TorchMonitorHook(model, members=(x, y), nonmembers=_images(100, seed=4),
                            epochs_per_report=1, attacks=["threshold"], slices=["entire"],
                            fpr_targets=(0.1,), verbose=False) if hook_on else None
    inputs, targets = as_model_input(x), torch.as_tensor(y)
    for epoch in (1, 2):
        for batch in torch.randperm(200).split(50):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
        if hook is not None:
            hook.on_epoch_end(epoch)
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_hook_leaves_training_unchanged() -> None:
    for a, b in zip(_train_by_hand(False), _train_by_hand(True), strict=True):
        np.testing.assert_array_equal(a, b)


def test_hook_prints_one_line_per_audit(capsys: pytest.CaptureFixture[str]) -> None:
    model = small_cnn((12, 12, 1), 4, 1)
    pair = _images(60)
    hook = TorchMonitorHook(model, members=pair, nonmembers=_images(60, seed=2),
                            epochs_per_report=2, attacks=["threshold"], slices=["entire"],
                            model_label="hand", fpr_targets=(0.1,))
    for epoch in (1, 2, 3):
        hook.on_epoch_end(epoch)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Privacy report for epoch 2 (hand, ")
    assert "threshold auc=" in lines[0]


def test_empty_poisson_batches_take_noise_only_steps() -> None:
    # 60 examples, expected batch 1: about a third of the steps draw an empty batch.
    x, y = _images(60)
    trainer = Trainer(small_cnn((12, 12, 1), 4, 1), x, y, TrainSettings(
        epochs=1, batch_size=1, dp=DPSettings(noise_multiplier=1.0)), device="cpu")
    before = _weights(trainer)
    stats = trainer.train_epoch()
    assert stats.examples < 60 or stats.examples > 60  # Poisson: not exactly one per step
    assert sum(n for _, _, n in trainer.accountant.history) == 60
    assert all(not np.array_equal(a, b)
               for a, b in zip(before, _weights(trainer), strict=True))


@pytest.mark.parametrize("mode", ["hooks", "ew", "functorch"])
def test_per_example_gradients_sum_to_the_batch_gradient(mode: str) -> None:
    # Guards the layout: Opacus' conv grad samplers are wrong on channels_last activations.
    rng = np.random.default_rng(0)
    x = rng.random((16, 14, 14, 3), dtype=np.float32)
    y = rng.integers(0, 5, 16)
    torch.manual_seed(0)
    trainer = Trainer(small_cnn((14, 14, 3), 5, 2), x, y, TrainSettings(
        epochs=1, batch_size=16, dp=DPSettings(noise_multiplier=0.0, grad_sample_mode=mode)),
        device="cpu")
    reference = small_cnn((14, 14, 3), 5, 2)
    reference.load_state_dict(trainer.model.state_dict())
    torch.nn.functional.cross_entropy(reference(as_model_input(x)), torch.as_tensor(y)).backward()
    trainer.optimizer.zero_grad()
    trainer.loss_fn(trainer.module(trainer.x), trainer.y).backward()
    # float32 sums in different orders: within 1e-4 of the largest gradient entry on any CPU.
    scale = max(float(p.grad.abs().max()) for p in reference.parameters())
    for param, expected in zip(trainer.model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(param.grad_sample.sum(0) / 16, expected.grad,
                                   rtol=1e-4, atol=1e-4 * scale)


def test_predict_on_no_examples_is_refused_and_keeps_the_training_mode() -> None:
    from memberscope.train.trainer import predict_logits

    model = small_cnn((12, 12, 1), 4, 1)
    model.train()
    x = as_model_input(np.zeros((3, 12, 12, 1), dtype=np.float32))
    with pytest.raises(InputError, match="cannot predict on 0 examples"):
        predict_logits(model, x, np.array([], dtype=np.int64))
    assert model.training
    torch.set_num_threads(2)  # the parallel-batch path gives the same logits as one thread
    parallel = predict_logits(model, x, batch_size=1)
    torch.set_num_threads(1)
    np.testing.assert_array_equal(parallel, predict_logits(model, x, batch_size=1))
    assert model.training
