"""The TF Privacy privacy-report codelab's pattern, with memberscope's Keras callback.

Train the codelab's small CNN with 2 and with 3 conv layers, audit membership leakage every
2 epochs (threshold + logistic-regression attacks, entire dataset + per class), and collect
every result labelled with model and epoch. Runs on any Keras 3 backend: KERAS_BACKEND when
set, else Keras' configured backend when it is installed, else the first installed of
tensorflow, jax and torch.

    python examples/keras_codelab_callback.py                  # Fashion-MNIST subset, ~minutes
    python examples/keras_codelab_callback.py --dataset digits # tiny, seconds
    python examples/keras_codelab_callback.py --train-size 60000 --epochs 20   # the full thing

Fashion-MNIST is read from Debian's dataset-fashion-mnist package
(/usr/share/datasets/fashion-mnist); without it the script falls back to scikit-learn's digits.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
import warnings
from pathlib import Path

from memberscope.monitor.keras_backend import choose_keras_backend

choose_keras_backend()  # before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402

from memberscope.metrics import LowResolutionWarning  # noqa: E402
from memberscope.monitor.keras import PrivacyMetrics  # noqa: E402
from memberscope.results import ResultsCollection  # noqa: E402

# Per-class slices hold a few hundred non-members: TPR at FPR 0.001 is unresolvable there and
# memberscope says so once per slice; the table below does not use it.
warnings.filterwarnings("ignore", category=LowResolutionWarning)

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip) as a numpy array: magic, dims as big-endian int32, then uint8 data."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(dataset: str, train_size: int, test_size: int, seed: int):
    """(x_train, y_train), (x_test, y_test) scaled to [0, 1] with a channel axis."""
    if dataset == "fashion-mnist" and not FASHION_MNIST.is_dir():
        print(f"note: {FASHION_MNIST} not found (apt-get install dataset-fashion-mnist); "
              "using scikit-learn digits instead")
        dataset = "digits"
    if dataset == "fashion-mnist":
        x_train = read_idx(FASHION_MNIST / "train-images-idx3-ubyte.gz")
        y_train = read_idx(FASHION_MNIST / "train-labels-idx1-ubyte.gz")
        x_test = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
        y_test = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
        scale = 255.0
    else:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = x.reshape(-1, 8, 8)
        order = np.random.default_rng(seed).permutation(len(y))
        half = len(y) // 2
        x_train, y_train, x_test, y_test = (x[order[:half]], y[order[:half]],
                                            x[order[half:]], y[order[half:]])
        scale = 16.0
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(y_train))[:train_size]
    test = rng.permutation(len(y_test))[:test_size]

    def prepare(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / scale)[..., None]

    return ((prepare(x_train[train]), y_train[train].astype(np.int64)),
            (prepare(x_test[test]), y_test[test].astype(np.int64)))


def small_cnn(input_shape: tuple[int, ...], num_classes: int, num_conv: int) -> keras.Model:
    """The codelab's model: num_conv × (Conv 32 3×3 + max-pool), Dense 64, logits.

    Convolutions are unpadded as in the codelab, except where the image is already
    smaller than 4×4 (three conv layers on 8×8 digits): those pad to keep its size.
    """
    layers: list = [keras.Input(input_shape)]
    size = min(input_shape[:2])
    for _ in range(num_conv):
        padding = "valid" if size >= 4 else "same"
        size = size - 2 if padding == "valid" else size
        layers.append(keras.layers.Conv2D(32, 3, padding=padding, activation="relu"))
        if size >= 2:
            layers.append(keras.layers.MaxPooling2D())
            size //= 2
    layers += [keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
               keras.layers.Dense(num_classes)]
    return keras.Sequential(layers)


def set_threads(threads: int | None) -> None:
    """On a busy CPU, torch's intra-op threads contend and training slows down ~10×
    (measured here: 45 vs 410 images/s for the 2-conv model at load 9 on 2 cores)."""
    if keras.backend.backend() != "torch":
        return
    import torch

    if threads is None and os.getloadavg()[0] > (os.cpu_count() or 1):
        threads = 1
        print("note: the CPU is busy; using 1 torch thread (--threads N to override)")
    if threads is not None:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["fashion-mnist", "digits"], default="fashion-mnist")
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--epochs-per-report", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("keras-codelab-out"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--member-sample", type=int, default=None,
                        help="members to audit (default: as many as the test set, balanced; "
                             "the codelab audits all of them: pass --member-sample 0)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: 1 when the machine is busy, else torch's)")
    args = parser.parse_args()
    set_threads(args.threads)

    (x_train, y_train), (x_test, y_test) = load(args.dataset, args.train_size, args.test_size,
                                                args.seed)
    member_sample = len(y_test) if args.member_sample is None else (args.member_sample or None)
    results_path = args.out / "results.jsonl"
    results_path.unlink(missing_ok=True)
    all_results = ResultsCollection()
    started = time.perf_counter()
    for num_conv in (2, 3):
        keras.utils.set_random_seed(args.seed)
        model = small_cnn(x_train.shape[1:], 10, num_conv)
        model.compile(optimizer=keras.optimizers.Adam(0.001),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        # The codelab's callback, from memberscope: attacks every k epochs, results labelled.
        callback = PrivacyMetrics(args.epochs_per_report, f"{num_conv} layers",
                                  members=(x_train, y_train), nonmembers=(x_test, y_test),
                                  results_path=results_path, member_sample=member_sample,
                                  seed=args.seed)
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                  validation_data=(x_test, y_test), callbacks=[callback], shuffle=True,
                  verbose=2)
        for result in callback.attack_results:
            all_results.add(result)

    print(f"\n{'model':<9} {'epoch':>5} {'train acc':>9} {'test acc':>8} "
          f"{'AUC thr':>7} {'AUC lr':>7} {'adv thr':>7}")
    for model_label in all_results.values("model"):
        for epoch in all_results.filter(model=model_label).values("epoch"):
            rows = all_results.filter(model=model_label, epoch=epoch, slice="entire_dataset")
            by_attack = {row.attack: row for row in rows}
            meta = rows.rows[0].metadata
            print(f"{model_label:<9} {epoch:>5} {meta['train_accuracy']:>9.3f} "
                  f"{meta['test_accuracy']:>8.3f} {by_attack['threshold'].auc:>7.3f} "
                  f"{by_attack['lr'].auc:>7.3f} {by_attack['threshold'].advantage:>7.3f}")
    worst = all_results.worst_slice("auc")
    print(f"\nmost vulnerable: {worst.metadata['model']}, epoch {worst.metadata['epoch']}, "
          f"{worst.slice}, {worst.attack} attack: AUC {worst.auc:.3f}")
    print(f"results: {results_path}  (memberscope.store.load_results reads it)")
    print(f"total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
