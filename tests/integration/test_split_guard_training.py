"""The split guard during training: the PyTorch hook and ``memberscope run`` pass the inputs
they hold and a control model (issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from memberscope.experiment.config import parse_toml  # noqa: E402
from memberscope.experiment.runner import run_experiment  # noqa: E402
from memberscope.monitor.torch import TorchMonitorHook  # noqa: E402
from memberscope.rundir import control_checkpoint_path  # noqa: E402
from memberscope.store import load_results  # noqa: E402
from memberscope.train.models import small_cnn  # noqa: E402

pytestmark = [pytest.mark.torch,
              pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")]


def _images(rng: np.random.Generator, n: int, brightness: float = 0.0
            ) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.6 + brightness
    for label in range(3):
        x[y == label, :, label * 8 // 3:(label + 1) * 8 // 3] += 0.4
    return x, y


def test_the_torch_hook_checks_the_split_with_its_inputs_and_a_control_model():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    members, nonmembers = _images(rng, 300), _images(rng, 300, brightness=0.15)
    model = small_cnn((8, 8, 1), 3, num_conv=1)
    control = small_cnn((8, 8, 1), 3, num_conv=1)
    hook = TorchMonitorHook(model, members=members, nonmembers=nonmembers,
                            attacks=["threshold"], slices=["entire"], epochs_per_report=1,
                            member_sample=200, control_model=control, verbose=False)
    assert hook.monitor.inputs is not None and hook.monitor.inputs.parts[0].array is members[0]
    result = hook.on_epoch_end(1)
    assert result is not None and result.split_guard is not None
    guard = result.split_guard
    assert guard.verdict == "shifted" and guard.blind_auc > 0.9  # brighter non-members
    assert guard.control_source == "control model" and guard.control_auc is not None
    assert result.row("entire_dataset", "blind").n_members == 200
    assert result.row("entire_dataset", "threshold").beyond_split_guard == "blind+control"
    channels_first = TorchMonitorHook(model, members=(members[0].transpose(0, 3, 1, 2),
                                                      members[1]),
                                      nonmembers=(nonmembers[0].transpose(0, 3, 1, 2),
                                                  nonmembers[1]),
                                      attacks=["threshold"], slices=["entire"],
                                      channels_first=True, verbose=False)
    assert channels_first.monitor.inputs is not None
    assert channels_first.monitor.inputs.example_shape == (8, 8, 1)


def test_a_run_with_a_control_model_trains_it_alongside_and_audits_with_it(tmp_path: Path):
    rng = np.random.default_rng(1)
    x, y = _images(rng, 900)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=x[:600], y_train=y[:600], x_test=x[600:], y_test=y[600:])
    config = parse_toml(f"""
name = "guarded"
seed = 3
[dataset]
name = "{data}"
nonmembers = "train"
max_train = 200
max_test = 200
[training]
epochs = 2
epochs_per_report = 1
batch_size = 20
learning_rate = 0.003
threads = 1
[audit]
attacks = ["threshold"]
slices = ["entire"]
[audit.split_guard]
control = true
[[variants]]
label = "cnn"
num_conv = 1
""")
    run_experiment(config, tmp_path / "run")
    collection = load_results(tmp_path / "run")
    assert [g.metadata["epoch"] for g in collection.split_guards] == [1, 2]
    for guard in collection.split_guards:
        assert guard.blind_auc is not None and guard.control_source == "control model"
        assert guard.verdict == "same-distribution"  # one pool, held-out training images
    assert control_checkpoint_path(tmp_path / "run", "cnn").exists()
    threshold = [r for r in collection.rows if r.attack == "threshold"]
    assert {r.beyond_split_guard for r in threshold} == {"blind+control"}
    assert "split_guard" in (tmp_path / "run" / "config.toml").read_text()
    too_small = parse_toml((tmp_path / "run" / "config.toml").read_text()
                           .replace("max_test = 200", "max_test = 350"))
    with pytest.raises(ValueError, match=r"audit.split_guard.control: a control model trains "
                                         r"on as many examples as the members \(200\).*"
                                         r"leaves 50"):
        run_experiment(too_small, tmp_path / "other")


@pytest.mark.lightning
def test_the_lightning_callback_evaluates_a_control_model():
    pl = pytest.importorskip("lightning.pytorch")
    from memberscope.monitor.lightning import PrivacyMonitorCallback

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_index):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    (x_in, y_in), (x_out, y_out) = _images(rng, 200), _images(rng, 200)
    members = (torch.as_tensor(x_in), torch.as_tensor(y_in))
    callback = PrivacyMonitorCallback(members, (torch.as_tensor(x_out), torch.as_tensor(y_out)),
                                      attacks=["threshold"], slices=["entire"],
                                      epochs_per_report=1, control_model=Tiny(), verbose=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*members),
                                         batch_size=50)
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(Tiny(), loader)
    guard = callback.attack_results[-1].split_guard
    assert guard is not None and guard.verdict == "same-distribution"
    assert guard.blind_auc is not None and guard.control_source == "control model"
