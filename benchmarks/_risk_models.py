"""The trained models behind the loss-trace risk benchmarks (issue 18), and their cache.

Three settings, each a population of 10,000 images and models trained with the quickstart's
recipe (``examples/quickstart.toml``: the codelab's small CNN, Adam at learning rate 0.003,
batch 50, 36 epochs) on 5,000 of them:

- ``fmnist-2conv`` / ``fmnist-3conv``: the quickstart's own population (its 5,000 members and
  5,000 non-members, Fashion-MNIST padded to 32x32x1) and model (2 or 3 conv blocks).
- ``rgb32-3conv``: a CIFAR-10-shaped stand-in (CIFAR-10 itself is not on this machine):
  10,000 other seeded Fashion-MNIST training images padded to 32x32 and coloured, each with its
  own random foreground and background RGB colour (uniform in [0, 1]^3), so the input has
  CIFAR-10's shape (32x32x3, 10 classes) and the 3-conv codelab CNN sees colour as a nuisance.
  It has CIFAR-10's geometry, not its difficulty.

Per setting: 18 "pair" models trained on complementary balanced halves (pairs 2k, 2k+1), and,
for the Fashion-MNIST settings, the quickstart's own target (its seeded model and members,
trained through the same :class:`~memberscope.train.trainer.Trainer` as ``memberscope run``).
Any model can be the target of the others: leaving out its pair leaves 16 reference models in
which each example is "in" for exactly 8.

What is kept of each model (``benchmarks/results/cache/risk/<setting>/<model>.npz``):
``trace`` (n_members, 36) float32, the trainer's own loss trace (:attr:`Trainer.loss_trace`:
each member's loss in the training forward pass of its batch, before that batch's update);
and ``signal`` (S, n) float32, the logit-scaled confidence log(p_y / (1 - p_y)) of every
population example after the epochs in ``snapshot_epochs`` (every 3rd), from which LiRA and
the loss (softplus(-signal)) follow.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope._io import atomic_write_npz, load_npz
from memberscope._seeding import stream_rng, stream_seed

CACHE = Path(__file__).parent / "results" / "cache" / "risk"
QUICKSTART = Path(__file__).parent.parent / "examples" / "quickstart.toml"
CACHE_SCHEMA_VERSION = 1
EPOCHS = 36
SNAPSHOT_EPOCHS = tuple(range(3, EPOCHS + 1, 3))
PAIR_MODELS = 18
POPULATION = 10_000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One benchmark setting: which population, which model, which seeds."""

    name: str
    num_conv: int
    population: str  # "quickstart" or "rgb32"
    quickstart_label: str | None  # the quickstart variant trained as an extra target
    base_seed: int


SETTINGS = {
    "fmnist-2conv": Setting("fmnist-2conv", 2, "quickstart", "2 layers", 1802),
    "fmnist-3conv": Setting("fmnist-3conv", 3, "quickstart", "3 layers", 1803),
    "rgb32-3conv": Setting("rgb32-3conv", 3, "rgb32", None, 1833),
}


@dataclass(frozen=True)
class Population:
    """(n, H, W, C) images and labels; ``quickstart_members`` marks the quickstart's members
    (None for a population the quickstart does not use)."""

    x: np.ndarray
    y: np.ndarray
    quickstart_members: np.ndarray | None


def quickstart_config() -> Any:
    from memberscope.experiment.config import load_config

    return load_config(QUICKSTART)


def load_population(setting: Setting) -> Population:
    """The setting's 10,000 images: the quickstart's members then its non-members, or the
    coloured 32x32x3 stand-in."""
    if setting.population == "quickstart":
        from memberscope.experiment.runner import load_run_dataset

        data = load_run_dataset(quickstart_config())
        x = np.concatenate([data.x_train, data.x_test]).astype(np.float32)
        y = np.concatenate([data.y_train, data.y_test]).astype(np.int64)
        members = np.zeros(len(y), dtype=bool)
        members[:data.n_train] = True
        return Population(x, y, members)
    from memberscope.data import load_dataset

    data = load_dataset("fashion_mnist")
    rng = stream_rng(setting.base_seed, "rgb32-population")
    pick = np.sort(rng.choice(data.n_train, POPULATION, replace=False))
    gray = np.pad(data.x_train[pick], ((0, 0), (2, 2), (2, 2), (0, 0)))  # (n, 32, 32, 1)
    foreground = rng.random((POPULATION, 1, 1, 3), dtype=np.float32)
    background = rng.random((POPULATION, 1, 1, 3), dtype=np.float32)
    x = (background + (foreground - background) * gray).astype(np.float32)
    return Population(x, data.y_train[pick].astype(np.int64), None)


def pair_splits(setting: Setting) -> np.ndarray:
    """(18, n) bool: complementary balanced halves, pairs (2k, 2k+1)."""
    from memberscope.reference.training import balanced_splits

    return balanced_splits(PAIR_MODELS, POPULATION, seed=setting.base_seed)


def model_names(setting: Setting) -> list[str]:
    names = [f"pair{j:02d}" for j in range(PAIR_MODELS)]
    return (["quickstart"] if setting.quickstart_label else []) + names


def cache_path(setting: Setting, name: str) -> Path:
    return CACHE / setting.name / f"{name}.npz"


def train_model(setting: Setting, name: str, population: Population,
                progress: Path | None = None) -> dict[str, np.ndarray]:
    """Train one model of the setting (or load it from the cache); returns the cached arrays."""
    path = cache_path(setting, name)
    if path.exists():
        return load_npz(path)
    import torch

    from memberscope.experiment.runner import build_variant_model
    from memberscope.signals import logit_scaled_confidence
    from memberscope.train.models import build_model
    from memberscope.train.settings import TrainSettings
    from memberscope.train.trainer import Trainer, as_model_input, predict_logits

    torch.set_num_threads(1)
    if name == "quickstart":
        config = quickstart_config()
        variant = next(v for v in config.variants if v.label == setting.quickstart_label)
        member = population.quickstart_members
        assert member is not None
        model = build_variant_model(variant, population.x.shape[1:], 10,
                                    stream_seed(config.seed, "model", variant.label))
        settings = variant.training
    else:
        j = int(name.removeprefix("pair"))
        member = pair_splits(setting)[j]
        model = build_model("small_cnn", population.x.shape[1:], 10, num_conv=setting.num_conv,
                            seed=stream_seed(setting.base_seed, "weights", j))
        config = quickstart_config()
        recipe = config.variants[0].training
        settings = TrainSettings(epochs=recipe.epochs, batch_size=recipe.batch_size,
                                 learning_rate=recipe.learning_rate, optimizer=recipe.optimizer,
                                 seed=stream_seed(setting.base_seed, "batches", j) % 2**31)
    assert settings.epochs == EPOCHS
    member_index = np.flatnonzero(member)
    trainer = Trainer(model, population.x[member_index], population.y[member_index], settings,
                      device="cpu")
    everyone = as_model_input(population.x, "cpu")
    signals = []
    started = time.perf_counter()
    while trainer.epoch < settings.epochs:
        stats = trainer.train_epoch()
        if trainer.epoch in SNAPSHOT_EPOCHS:
            logits = predict_logits(trainer.model, everyone).astype(np.float64)
            signals.append(logit_scaled_confidence(population.y, logits=logits))
        if progress is not None:
            with progress.open("a") as out:
                out.write(f"{time.strftime('%H:%M:%S')} {setting.name} {name} epoch "
                          f"{trainer.epoch} loss {stats.loss:.4f} acc {stats.accuracy:.3f} "
                          f"{stats.seconds:.1f}s\n")
    arrays = {"schema_version": np.int64(CACHE_SCHEMA_VERSION), "member_index": member_index,
              "trace": trainer.loss_trace, "snapshot_epochs": np.array(SNAPSHOT_EPOCHS),
              "signal": np.stack(signals).astype(np.float32),
              "train_seconds": np.float64(time.perf_counter() - started)}
    atomic_write_npz(path, arrays)
    return arrays


@dataclass(frozen=True)
class TrainedSetting:
    """Every model of a setting, stacked: ``names`` (m,), ``membership`` (m, n) bool,
    ``signal`` (m, S, n) float64, ``traces`` list of (n_members_j, 36) float32 aligned with
    ``member_index[j]``, and the population's labels ``y``."""

    setting: Setting
    names: list[str]
    membership: np.ndarray
    signal: np.ndarray
    traces: list[np.ndarray]
    member_index: list[np.ndarray]
    snapshot_epochs: np.ndarray
    y: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)

    def references_for(self, name: str) -> np.ndarray:
        """Indices of the 16 pair models a target uses: all but its own pair (for the
        quickstart target: all but pair 0)."""
        if name == "quickstart":
            excluded = {"pair00", "pair01"}
        else:
            j = int(name.removeprefix("pair"))
            excluded = {f"pair{2 * (j // 2):02d}", f"pair{2 * (j // 2) + 1:02d}"}
        return np.array([i for i, other in enumerate(self.names)
                         if other.startswith("pair") and other not in excluded])


def load_setting(setting: Setting) -> TrainedSetting:
    """Every cached model of ``setting`` (raises FileNotFoundError when one is missing)."""
    population = load_population(setting)
    names = model_names(setting)
    arrays = [load_npz(cache_path(setting, name)) for name in names]
    membership = np.zeros((len(names), POPULATION), dtype=bool)
    for row, model in zip(membership, arrays, strict=True):
        row[model["member_index"]] = True
    return TrainedSetting(
        setting=setting, names=names, membership=membership,
        signal=np.stack([model["signal"] for model in arrays]).astype(np.float64),
        traces=[model["trace"] for model in arrays],
        member_index=[model["member_index"] for model in arrays],
        snapshot_epochs=arrays[0]["snapshot_epochs"], y=population.y)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="train and cache the risk benchmark models")
    parser.add_argument("setting", choices=sorted(SETTINGS))
    parser.add_argument("--models", default="all",
                        help="comma-separated model names (quickstart, pair00..pair17)")
    args = parser.parse_args()
    setting = SETTINGS[args.setting]
    population = load_population(setting)
    names = model_names(setting) if args.models == "all" else args.models.split(",")
    progress = CACHE / f"{setting.name}.progress"
    progress.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        train_model(setting, name, population, progress)
        with progress.open("a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} {setting.name} {name} cached\n")


if __name__ == "__main__":
    main()
