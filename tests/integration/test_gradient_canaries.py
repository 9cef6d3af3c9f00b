"""White-box gradient canaries in DP training (issue 13): they go through the real clipping
path, a correct run audits to ε̂ ≤ ε, and a run with broken clipping or secretly reduced noise
audits to ε̂ > the claimed ε."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from memberscope.train.dp import direct_clipping  # noqa: E402
from memberscope.train.dp.canaries import (  # noqa: E402
    CanaryBatch,
    GradientCanaries,
    audit_white_box,
    canary_scores,
    ideal_observations,
    plan_gradient_canaries,
)
from memberscope.train.dp.sparse_examples import SparseExamples  # noqa: E402
from memberscope.train.models import mlp  # noqa: E402
from memberscope.train.settings import CanarySettings, DPSettings, TrainSettings  # noqa: E402
from memberscope.train.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.torch

N, D, CLASSES = 1000, 10, 3
DELTA = 1e-5
CLAIMED_EPSILON = 2.0


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    return x, (x @ rng.normal(size=(D, CLASSES))).argmax(1)


def _trainer(mode: str = "auto", *, epochs: int = 4, m: int = 1000,
             optimizer: str = "sgd") -> Trainer:
    torch.manual_seed(0)
    x, y = _data()
    settings = TrainSettings(
        epochs=epochs, batch_size=50, learning_rate=0.2 if optimizer == "sgd" else 1e-3,
        optimizer=optimizer, seed=3,
        dp=DPSettings(target_epsilon=CLAIMED_EPSILON, delta=DELTA, grad_sample_mode=mode,
                      accountant="rdp", canaries=CanarySettings(m=m, seed=4)))
    return Trainer(mlp(D, CLASSES, hidden=(128,)), x, y, settings, device="cpu")


def _audit(trainer: Trainer) -> tuple[float, float, float]:
    """The white-box bounds: assumption-free (approx_dp, steinke), then Gaussian-assumption."""
    bounds = audit_white_box(trainer.canaries, delta=DELTA)
    return (bounds["approx_dp"].epsilon, bounds["steinke"].epsilon,
            bounds["gaussian_fdp"].epsilon)


# --- the clipping path --------------------------------------------------------------------


@pytest.mark.parametrize("gradient_norm", [10.0, 0.25])
def test_canaries_are_clipped_with_the_batch_in_direct_mode(gradient_norm):
    torch.manual_seed(0)
    model = mlp(D, CLASSES, hidden=(8,))
    params = [p for p in model.parameters() if p.requires_grad]
    total = sum(p.numel() for p in params)
    plan = plan_gradient_canaries([p.numel() for p in params], 20, seed=1,
                                  gradient_norm=gradient_norm)
    canaries = GradientCanaries(params, plan, sample_rate=1.0, noise_multiplier=1.0,
                                max_grad_norm=1.0, expected_batch_size=10, seed=0)
    x, y = _data()
    clipper = direct_clipping.ClippedGradients(model)

    def clipped_grads(batch: CanaryBatch | None) -> torch.Tensor:
        with clipper.recording():
            loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x[:10])),
                                                     torch.as_tensor(y[:10]), reduction="sum")
        loss.backward()
        norms = clipper.clip_and_sum(1.0, None if batch is None else batch.extra_examples)
        k = 0 if batch is None else len(batch)
        assert norms.shape == (10 + k,)
        torch.testing.assert_close(norms[10:], torch.full((k,), gradient_norm))
        return torch.cat([p.grad.reshape(-1) for p in params])

    without = clipped_grads(None)
    batch = canaries.draw()
    with_canaries = clipped_grads(batch)
    expected = torch.zeros(total)
    sampled = plan.coordinates[batch.sampled]
    assert len(sampled) == plan.included.sum() > 0  # rate 1: every included canary
    expected[sampled] = min(gradient_norm, 1.0 / (1 + 1e-6 / gradient_norm))
    torch.testing.assert_close(with_canaries - without, expected, atol=1e-5, rtol=0)


def test_canaries_spread_over_parameters_are_sampled_placed_and_read_where_they_sit():
    # 100 canaries do not fit the largest parameter (80 entries): they spread over all four,
    # so each step's gradients come as one sparse tensor per parameter holding a sampled one.
    torch.manual_seed(0)
    params = [p for p in mlp(D, CLASSES, hidden=(8,)).parameters() if p.requires_grad]
    starts = np.cumsum([0] + [p.numel() for p in params])
    plan = plan_gradient_canaries([p.numel() for p in params], 100, seed=3, gradient_norm=7.0)
    canaries = GradientCanaries(params, plan, sample_rate=0.3, noise_multiplier=1.0,
                                max_grad_norm=2.0, expected_batch_size=10, seed=5)
    assert len({int(np.searchsorted(starts, c, side="right")) for c in plan.coordinates}) == 4
    times_sampled = np.zeros(plan.m)
    for step in range(200):
        batch = canaries.draw()
        assert np.all(np.diff(batch.sampled) > 0) and plan.included[batch.sampled].all()
        flat = torch.zeros(len(batch), int(starts[-1]))
        for param, gradients in batch.extra_examples.items():
            index = next(i for i, candidate in enumerate(params) if candidate is param)
            flat[:, starts[index]:starts[index + 1]] = gradients.to_dense().reshape(len(batch), -1)
        expected = torch.zeros_like(flat)
        expected[np.arange(len(batch)), plan.coordinates[batch.sampled]] = 7.0
        torch.testing.assert_close(flat, expected)
        times_sampled[batch.sampled] += 1
        for index, param in enumerate(params):  # a gradient whose values say where they sit
            param.grad = torch.arange(param.numel(), dtype=torch.float32).view_as(param) \
                + float(starts[index] + step)
        canaries.observe()
    rate = times_sampled[plan.included] / 200
    assert abs(rate.mean() - 0.3) < 0.015 and rate.min() > 0.15
    assert times_sampled[~plan.included].sum() == 0
    gradients, _ = canaries.history()
    np.testing.assert_allclose(gradients, (plan.coordinates[None] + np.arange(200)[:, None])
                               * 10 / 2.0)


def test_sparse_extra_examples_clip_like_their_dense_form():
    # Canaries reach clip_and_sum as SparseExamples; their dense form is the oracle.
    torch.manual_seed(0)
    model = mlp(D, CLASSES, hidden=(8,))
    params = [p for p in model.parameters() if p.requires_grad]
    rng = np.random.default_rng(2)
    extra = {}
    for param in params[:3]:
        dense = torch.zeros(6, *param.shape)
        flat = dense.view(6, -1)
        for row in range(6):  # rows of 0-3 nonzeros, some coordinates shared across rows
            for column in rng.choice(min(4, param.numel()), size=rng.integers(0, 4)):
                flat[row, column] = float(rng.normal() * 3)
        extra[param] = dense
    x, y = _data()
    clipper = direct_clipping.ClippedGradients(model)

    def clipped(examples: dict) -> tuple[torch.Tensor, torch.Tensor]:
        with clipper.recording():
            loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x[:10])),
                                                     torch.as_tensor(y[:10]), reduction="sum")
        loss.backward()
        norms = clipper.clip_and_sum(1.0, examples)
        return norms, torch.cat([p.grad.reshape(-1) for p in params])

    dense_norms, dense_grads = clipped(extra)
    sparse = {}
    for param, dense in extra.items():
        rows, columns = torch.nonzero(dense.reshape(6, -1), as_tuple=True)
        sparse[param] = SparseExamples(6, rows, columns, dense.reshape(6, -1)[rows, columns],
                                       tuple(param.shape))
        torch.testing.assert_close(sparse[param].to_dense(), dense, rtol=0, atol=0)
    sparse_norms, sparse_grads = clipped(sparse)
    torch.testing.assert_close(sparse_norms, dense_norms)
    torch.testing.assert_close(sparse_grads, dense_grads)


def test_sparse_extra_examples_alone_land_at_their_logical_positions_in_channels_last():
    # A step of canaries only (empty Poisson batch) in a channels_last conv weight: the
    # gradients start as zeros in the parameter's layout; offsets are logical positions.
    from memberscope.train.models import small_cnn

    model = small_cnn((8, 8, 3), 3, num_conv=1).to(memory_format=torch.channels_last)
    weight = model[0].weight
    assert not weight.is_contiguous()
    columns = torch.tensor([5, 77, 200])
    values = torch.tensor([3.0, -0.5, 2.0])
    examples = SparseExamples(3, None, columns, values, tuple(weight.shape))
    clipper = direct_clipping.ClippedGradients(model)
    norms = clipper.clip_and_sum(1.0, {weight: examples})
    torch.testing.assert_close(norms, values.abs())
    expected = torch.zeros(weight.numel())
    expected[columns] = values / torch.clamp(values.abs() + 1e-6, min=1.0)
    torch.testing.assert_close(weight.grad.reshape(-1), expected)
    torch.testing.assert_close(examples.to_dense().sum(0).reshape(-1)[columns], values)


def test_canaries_are_clipped_by_opacus_in_hooks_mode():
    # The same run in direct and hooks mode releases the same gradients at the canaries:
    # in hooks mode the canaries' rows join grad_sample and Opacus clips them.
    direct, hooks = _trainer("direct", epochs=1, m=50), _trainer("hooks", epochs=1, m=50)
    direct.fit()
    hooks.fit()
    direct_y, _ = direct.canaries.history()
    hooks_y, _ = hooks.canaries.history()
    np.testing.assert_allclose(direct_y, hooks_y, atol=2e-3)
    assert direct_y.max() > 0.9  # sampled canaries show up as about +1 (one clipped canary)


def test_history_and_generator_survive_a_checkpoint():
    first = _trainer(epochs=2, m=100)
    first.train_epoch()
    state = first.state_dict()  # a snapshot: training on does not change it
    first.train_epoch()
    resumed = _trainer(epochs=2, m=100)
    resumed.load_state_dict(state)
    resumed.train_epoch()
    np.testing.assert_array_equal(first.canaries.history()[0], resumed.canaries.history()[0])


# --- validity and bug detection -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["direct", "hooks"])
def test_correct_dp_run_audits_below_the_claimed_epsilon(mode):
    trainer = _trainer(mode)
    trainer.fit()
    assert trainer.epsilon() == pytest.approx(CLAIMED_EPSILON, rel=0.02)
    assert all(0 <= bound <= CLAIMED_EPSILON for bound in _audit(trainer))


def test_disabled_clipping_is_caught(monkeypatch):
    monkeypatch.setattr(direct_clipping, "clipping_factors",
                        lambda norms, max_grad_norm: torch.ones_like(norms))
    trainer = _trainer("direct")
    trainer.fit()
    assert all(bound > CLAIMED_EPSILON for bound in _audit(trainer))


def test_noise_secretly_divided_by_ten_is_caught():
    trainer = _trainer("direct")
    optimizer = trainer.optimizer
    honest_add_noise = optimizer.add_noise

    def add_less_noise() -> None:
        claimed = optimizer.noise_multiplier
        optimizer.noise_multiplier = claimed / 10
        try:
            honest_add_noise()
        finally:
            optimizer.noise_multiplier = claimed  # what the accountant reads

    optimizer.add_noise = add_less_noise
    trainer.fit()
    assert trainer.epsilon() == pytest.approx(CLAIMED_EPSILON, rel=0.02)
    assert all(bound > CLAIMED_EPSILON for bound in _audit(trainer))


# --- scores -------------------------------------------------------------------------------


def test_likelihood_ratio_beats_the_sum_on_ideal_canaries():
    included = np.random.default_rng(0).random(1000) < 0.5
    observations = ideal_observations(1000, included, sample_rate=0.02, noise_multiplier=0.8,
                                      steps=500, seed=1)
    auc = {}
    for score in ("sum", "likelihood_ratio"):
        values = canary_scores(observations, score, sample_rate=0.02, noise_multiplier=0.8)
        ranks = values.argsort().argsort()
        auc[score] = (ranks[included].mean() - (included.sum() - 1) / 2) / (~included).sum()
    assert auc["likelihood_ratio"] > auc["sum"] + 0.03 > 0.55


def test_canary_state_survives_the_run_checkpoint_file(tmp_path):
    from memberscope.train.checkpoint import load_checkpoint, save_checkpoint

    first = _trainer(epochs=2, m=100)
    first.train_epoch()
    path = save_checkpoint(tmp_path / "cnn.pt", first.state_dict(), fingerprint="f", label="cnn")
    first.train_epoch()
    resumed = _trainer(epochs=2, m=100)
    resumed.load_state_dict(load_checkpoint(path, fingerprint="f", label="cnn")["trainer"])
    resumed.train_epoch()
    np.testing.assert_array_equal(first.canaries.history()[0], resumed.canaries.history()[0])
    for mine, theirs in zip(first.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(mine, theirs)
