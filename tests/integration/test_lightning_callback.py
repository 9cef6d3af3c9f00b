"""The Lightning callback on a tiny CNN over digits: epochs, logging, sink, DataLoaders."""

from __future__ import annotations

import csv
import importlib
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import load_digits

from memberscope.audit import audit
from memberscope.errors import InputError, MissingExtraError
from memberscope.outputs import ModelOutputs
from memberscope.store import load_results

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")
PrivacyMonitorCallback = pytest.importorskip(
    "memberscope.monitor.lightning").PrivacyMonitorCallback

pytestmark = [
    pytest.mark.lightning,
    pytest.mark.filterwarnings("ignore::memberscope.LowResolutionWarning"),
    # Lightning's advice about worker processes and log frequency on a tiny CPU run.
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:The number of training batches:UserWarning"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
    # The hooks called by hand below run outside a Trainer, where self.log only warns.
    pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning"),
]

EPOCHS = 4
EVERY = 2


class TinyCNN(pl.LightningModule):
    """The codelab's small_cnn at 8x8 (conv 3x3 + max-pool, dense 64, logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(16 * 3 * 3, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_index):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.003)


class SoftmaxCNN(TinyCNN):
    """The same network ending in a softmax: forward returns probabilities."""

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def _digits(n_members: int = 400, n_nonmembers: int = 300):
    x, y = load_digits(return_X_y=True)
    x = torch.as_tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.as_tensor(y)
    order = torch.as_tensor(np.random.default_rng(0).permutation(len(y)))
    members, nonmembers = order[:n_members], order[n_members:n_members + n_nonmembers]
    return (x[members], y[members]), (x[nonmembers], y[nonmembers])


def _loader(pair, shuffle=False):
    dataset = torch.utils.data.TensorDataset(*pair)
    return torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=shuffle)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Fit once with two callbacks — tensors and DataLoaders — every 2 of 4 epochs."""
    pl.seed_everything(0, verbose=False)
    members, nonmembers = _digits()
    out = tmp_path_factory.mktemp("lightning")
    common = dict(epochs_per_report=EVERY, model_label="tiny", member_sample=200, seed=3,
                  verbose=False)
    on_tensors = PrivacyMonitorCallback(members, nonmembers, results_path=out / "results.jsonl",
                                        batch_size=128, **common)
    on_loaders = PrivacyMonitorCallback(_loader(members), _loader(nonmembers),
                                        log_prefix="privacy_loader", **common)
    model = TinyCNN()
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1,
                         logger=pl.loggers.CSVLogger(out, name="logs"),
                         callbacks=[on_tensors, on_loaders], enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         log_every_n_steps=1)
    trainer.fit(model, _loader(members, shuffle=True))
    return model, trainer, on_tensors, on_loaders, out


def test_rows_carry_epochs_model_and_valid_metrics(trained):
    _, _, callback, _, _ = trained
    rows = callback.results.rows
    assert sorted({r.metadata["epoch"] for r in rows}) == [2, 4]
    assert len(callback.attack_results) == EPOCHS // EVERY
    assert {r.metadata["model"] for r in rows} == {"tiny"}
    for epoch in (2, 4):
        slices = {r.slice for r in callback.results.filter(epoch=epoch)}
        assert slices == {"entire_dataset", *(f"class={k}" for k in range(10))}
    for row in rows:
        assert 0.0 <= row.metadata["train_accuracy"] <= 1.0
        assert 0.0 <= row.metadata["test_accuracy"] <= 1.0
        assert 0.0 <= row.auc <= 1.0
    entire = callback.results.filter(slice="entire_dataset", attack="threshold").rows
    assert [(r.n_members, r.n_nonmembers) for r in entire] == [(200, 300), (200, 300)]
    assert entire[-1].metadata["test_accuracy"] > 0.5  # chance is 0.1


def test_final_audit_equals_auditing_the_trained_modules_outputs(trained):
    """Oracle: the forward pass by hand after training, audited, gives the same rows."""
    model, _, callback, _, _ = trained
    (x_train, y_train), (x_test, y_test) = _digits()
    index = callback.monitor.member_index
    model.eval()

    def logits(x: torch.Tensor) -> np.ndarray:
        # In the callback's batches: other batch shapes may pick other float32 kernels.
        size = callback.batch_size
        return torch.cat([model(x[i:i + size]) for i in range(0, len(x), size)]).numpy()

    with torch.no_grad():
        outputs = ModelOutputs.from_train_test(
            logits_train=logits(x_train[index]), logits_test=logits(x_test),
            labels_train=y_train[index].numpy(), labels_test=y_test.numpy())
    expected = [*audit(outputs, attacks=["threshold"], slices=["entire", "class"], seed=3).rows,
                *audit(outputs, attacks=["lr"], slices=["entire"], seed=3).rows]
    last = callback.attack_results[-1]
    for row in expected:
        assert last.row(row.slice, row.attack).auc == pytest.approx(row.auc, abs=1e-9)


def test_dataloaders_give_the_same_audit_as_tensors(trained):
    _, _, on_tensors, on_loaders, _ = trained
    assert len(on_loaders.results) == len(on_tensors.results)
    for a, b in zip(on_tensors.results, on_loaders.results, strict=True):
        assert (a.slice, a.attack, a.n_members) == (b.slice, b.attack, b.n_members)
        # Batches of 64 vs 128 may round logits differently on some CPUs' kernels; allow a
        # few of the 200 x 300 member/non-member pairs (1.7e-5 each) to swap order.
        assert b.auc == pytest.approx(a.auc, abs=5e-5)
        assert b.metadata["train_accuracy"] == a.metadata["train_accuracy"]


def test_entire_dataset_metrics_reach_the_logger(trained):
    _, trainer, callback, _, _ = trained
    final = callback.results.filter(slice="entire_dataset", epoch=4)
    for row in final:
        logged = trainer.callback_metrics[f"privacy/{row.attack}_auc"]
        assert float(logged) == pytest.approx(row.auc, abs=1e-6)
        assert float(trainer.callback_metrics[f"privacy/{row.attack}_advantage"]) == \
            pytest.approx(row.advantage, abs=1e-6)
    with open(trainer.logger.experiment.metrics_file_path) as handle:
        logged_rows = [r for r in csv.DictReader(handle) if r.get("privacy/threshold_auc")]
    assert [int(r["epoch"]) for r in logged_rows] == [1, 3]  # Lightning's 0-based epochs
    threshold = callback.results.filter(slice="entire_dataset", attack="threshold")
    assert [float(r["privacy/threshold_auc"]) for r in logged_rows] == \
        pytest.approx([r.auc for r in threshold], abs=1e-6)


def test_sink_file_holds_every_row(trained):
    _, _, callback, _, out = trained
    loaded = load_results(out / "results.jsonl")
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in callback.results]


def _epoch_end(callback, module, epoch):
    trainer = SimpleNamespace(current_epoch=epoch - 1, is_global_zero=True)
    callback.on_train_epoch_end(trainer, module)


def test_a_shuffled_loader_is_read_in_dataset_order():
    """The training loader (shuffle=True) audits as the same examples given in order."""
    members, nonmembers = _digits(100, 100)
    module = TinyCNN()
    rows = []
    for loader in (_loader(members, shuffle=True), _loader(members)):
        callback = PrivacyMonitorCallback(loader, _loader(nonmembers), epochs_per_report=1,
                                          attacks=["threshold"], slices=["entire"],
                                          member_sample=40, verbose=False)
        for epoch in (1, 2):
            _epoch_end(callback, module, epoch)
        rows.append([(r.auc, r.metadata["train_accuracy"]) for r in callback.results])
    assert rows[0] == rows[1]


def test_a_loader_whose_examples_change_is_refused_at_construction():
    members, nonmembers = _digits(100, 100)
    sampler = torch.utils.data.WeightedRandomSampler(torch.ones(100), 100)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*members),
                                         batch_size=32, sampler=sampler)
    with pytest.raises(InputError, match="members: the DataLoader draws its examples with a "
                                         "WeightedRandomSampler"):
        PrivacyMonitorCallback(loader, _loader(nonmembers))


def test_misspelt_names_fail_at_construction_even_with_loaders():
    members, nonmembers = _digits(50, 50)
    with pytest.raises(InputError, match=r"unknown attack 'lira2' \(did you mean 'lira'"):
        PrivacyMonitorCallback(_loader(members), _loader(nonmembers), attacks=["lira2"])
    with pytest.raises(InputError, match=r"unknown slice 'entrie' \(did you mean 'entire'"):
        PrivacyMonitorCallback(_loader(members), _loader(nonmembers), slices="entrie,class")
    with pytest.raises(InputError, match="member_sample must be >= 1; got 0"):
        PrivacyMonitorCallback(_loader(members), _loader(nonmembers), member_sample=0)


def test_bad_loader_labels_fail_at_setup_before_any_epoch():
    members, nonmembers = _digits(50, 50)
    bad = (members[0], -members[1] - 1)
    callback = PrivacyMonitorCallback(_loader(bad), _loader(nonmembers))
    with pytest.raises(InputError, match="members labels must be >= 0; row 0 is -"):
        callback.setup(SimpleNamespace(is_global_zero=True), TinyCNN(), "fit")


def _weights_after_training(callbacks, seed=7):
    pl.seed_everything(seed, verbose=False)
    members, _ = _digits(200, 100)
    model = TinyCNN()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False,
                         callbacks=callbacks, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(model, _loader(members, shuffle=True))
    return [p.detach().clone() for p in model.parameters()]


def test_training_is_the_same_with_and_without_the_callback():
    """The monitor's inference (DataLoader passes included) leaves torch's global RNG as it
    was, so the shuffling of the next epochs, and the weights, are unchanged."""
    members, nonmembers = _digits(200, 100)
    without = _weights_after_training([])
    watched = _weights_after_training([PrivacyMonitorCallback(
        _loader(members, shuffle=True), _loader(nonmembers), epochs_per_report=1,
        attacks=["threshold"], slices=["entire"], verbose=False)])
    for a, b in zip(without, watched, strict=True):
        assert torch.equal(a, b)


def test_prints_one_line_per_audit_and_every_still_works(capsys):
    members, nonmembers = _digits(60, 60)
    with pytest.warns(DeprecationWarning, match="'every' is deprecated; use 'epochs_per_report'"):
        callback = PrivacyMonitorCallback(members, nonmembers, every=2, model_label="tiny",
                                          attacks=["threshold"], slices=["entire"])
    assert callback.epochs_per_report == 2
    module = TinyCNN()
    for epoch in (1, 2, 3):
        _epoch_end(callback, module, epoch)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Privacy report for epoch 2 (tiny, ")


def test_probabilities_with_from_logits_false_match_logits_and_restore_train_mode():
    members, nonmembers = _digits(100, 100)
    module = TinyCNN()
    softmax_module = SoftmaxCNN()
    softmax_module.load_state_dict(module.state_dict())
    rows = []
    for net, from_logits in ((module, True), (softmax_module, False)):
        callback = PrivacyMonitorCallback(members, nonmembers, epochs_per_report=1,
                                          attacks=["threshold"], slices=["entire"],
                                          from_logits=from_logits, verbose=False,
                                          extra_metadata=lambda trainer, m: {"epsilon": 1.5})
        net.train()
        _epoch_end(callback, net, 1)
        assert net.training
        rows.append(callback.results.rows[0])
    assert rows[1].auc == pytest.approx(rows[0].auc, abs=1e-3)
    assert rows[0].metadata["epsilon"] == 1.5


def test_bad_arguments_are_refused_naming_them():
    members, nonmembers = _digits(50, 50)
    with pytest.raises(InputError, match="members: x has 50 rows but y has 49"):
        PrivacyMonitorCallback((members[0], members[1][:-1]), nonmembers)
    with pytest.raises(InputError, match="nonmembers must be a pair"):
        PrivacyMonitorCallback(members, 3)
    with pytest.raises(InputError, match="nonmembers is an iterator, which one pass would use"):
        PrivacyMonitorCallback(members, iter(_loader(nonmembers)))
    with pytest.raises(InputError, match="epochs_per_report must be >= 1 epoch; got 0"):
        PrivacyMonitorCallback(members, nonmembers, epochs_per_report=0)
    with pytest.raises(InputError, match=r"batch_size must be an integer >= 1; got 1\.5"):
        PrivacyMonitorCallback(members, nonmembers, batch_size=1.5)


def test_missing_lightning_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.delitem(sys.modules, "memberscope.monitor.lightning")
    with pytest.raises(MissingExtraError, match=r"pip install 'memberscope\[lightning\]'"):
        importlib.import_module("memberscope.monitor.lightning")


def test_records_the_sampled_members_losses_at_each_audit(trained):
    model, _, callback, on_loaders, _ = trained
    (x_train, y_train), _ = _digits()
    index = callback.monitor.member_index
    traces = callback.loss_traces
    assert traces.epochs.tolist() == [2, 4] and traces.losses.shape == (200, 2)
    np.testing.assert_array_equal(traces.example_index, index)
    model.eval()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(x_train[index]), y_train[index],
                                                 reduction="none").numpy()
    np.testing.assert_allclose(traces.losses[:, -1], loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(on_loaders.loss_traces.losses, traces.losses, rtol=1e-4,
                               atol=1e-5)


def test_trace_every_epoch_records_between_audits_too():
    pl.seed_everything(0, verbose=False)
    members, nonmembers = _digits(150, 100)
    callback = PrivacyMonitorCallback(members, nonmembers, epochs_per_report=2,
                                      attacks=["threshold"], slices=["entire"],
                                      trace_every_epoch=True, verbose=False)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False,
                         callbacks=[callback], enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(TinyCNN(), _loader(members, shuffle=True))
    assert callback.loss_traces.epochs.tolist() == [1, 2, 3]
    assert [r.metadata["epoch"]
            for r in callback.results.filter(attack="threshold").rows] == [2]
