# The codelab's code is kept as written (imports between cells, typing.Tuple, an unused import):
# ruff: noqa: E402, E501, F401, I001, UP006, UP035
"""TensorFlow Privacy's two membership-inference codelabs, run on memberscope.

This is the privacy-report codelab's own code (Keras on TensorFlow), followed by the attack
analysis of TF Privacy's introductory MIA codelab on the last model trained (its
``run_attacks`` call on logits and losses, the summary, and ``plotting.plot_roc_curve`` of
the strongest attack), with three changes:

1. the import prefix ``tensorflow_privacy.privacy.privacy_tests.membership_inference_attack``
   is replaced by ``memberscope.compat.tf_privacy`` (nothing else in the attack or report
   code changes);
2. the data are Fashion-MNIST padded to 32×32 (CIFAR-10's geometry) from Debian's
   ``dataset-fashion-mnist`` package, through ``memberscope.data``, instead of
   ``tensorflow_datasets``' CIFAR-10;
3. fewer examples and epochs by default, so it runs in minutes on a CPU; the figures are
   saved as PNG files instead of shown inline.

Needs ``tensorflow`` (2.16 or later, i.e. Keras 3), ``matplotlib`` and memberscope::

    python examples/codelab_tf_privacy_compat.py          # 2,500 members / 1,000, 20 epochs
    python examples/codelab_tf_privacy_compat.py --train-size 50000 --test-size 10000 \\
        --epochs 50                                       # the codelab's size
"""

import argparse
import os
import time
from pathlib import Path

os.environ["KERAS_BACKEND"] = "tensorflow"  # the codelab is TensorFlow code

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--train-size", type=int, default=2500, help="members (multiple of 50)")
parser.add_argument("--test-size", type=int, default=1000, help="non-members")
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--epochs-per-report", type=int, default=2)
parser.add_argument("--out", type=Path, default=Path("codelab-tf-privacy-out"))
args = parser.parse_args()
started = time.perf_counter()

# --- The codelab: set-up ---------------------------------------------------------------------

import numpy as np
from typing import Tuple
from scipy import special
from sklearn import metrics
import tensorflow as tf
# Set verbosity.
tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
from sklearn.exceptions import ConvergenceWarning
import warnings
warnings.simplefilter(action="ignore", category=ConvergenceWarning)
warnings.simplefilter(action="ignore", category=FutureWarning)

from memberscope.compat.tf_privacy import membership_inference_attack as mia
from memberscope.compat.tf_privacy.data_structures import AttackInputData
from memberscope.compat.tf_privacy.data_structures import AttackResultsCollection
from memberscope.compat.tf_privacy.data_structures import AttackType
from memberscope.compat.tf_privacy.data_structures import PrivacyMetric
from memberscope.compat.tf_privacy.data_structures import PrivacyReportMetadata
from memberscope.compat.tf_privacy.data_structures import SlicingSpec
from memberscope.compat.tf_privacy import privacy_report
# (The codelab also runs `import tensorflow_privacy` for its DP optimizer, which the code
# below never uses.)

dataset = 'cifar10'
num_classes = 10
activation = 'relu'
num_conv = 3
batch_size=50
epochs_per_report = args.epochs_per_report  # codelab: 2
total_epochs = args.epochs                  # codelab: 50
lr = 0.001

# --- Loading the dataset (swapped: padded Fashion-MNIST instead of tfds' CIFAR-10) ----------

print('Loading the dataset.')
from memberscope.data import load_fashion_mnist

fashion = load_fashion_mnist()
rng = np.random.default_rng(0)
train_rows = rng.permutation(fashion.n_train)[:args.train_size]
test_rows = rng.permutation(fashion.n_test)[:args.test_size]
padding = ((0, 0), (2, 2), (2, 2), (0, 0))  # 28×28 -> 32×32, CIFAR-10's size
x_train = np.pad(fashion.x_train[train_rows], padding)  # float32 in [0, 1], as the codelab's
y_train_indices = fashion.y_train[train_rows][:, np.newaxis]
x_test = np.pad(fashion.x_test[test_rows], padding)
y_test_indices = fashion.y_test[test_rows][:, np.newaxis]

# Convert class vectors to binary class matrices.
y_train = tf.keras.utils.to_categorical(y_train_indices, num_classes)
y_test = tf.keras.utils.to_categorical(y_test_indices, num_classes)

input_shape = x_train.shape[1:]

assert x_train.shape[0] % batch_size == 0, "The tensorflow_privacy optimizer doesn't handle partial batches"

# --- The codelab: model, callback, training ------------------------------------------------


def small_cnn(input_shape: Tuple[int],
              num_classes: int,
              num_conv: int,
              activation: str = 'relu') -> tf.keras.models.Sequential:
  """The codelab's small CNN: num_conv × (Conv 32 3×3 + max-pool), Dense 64, logits."""
  model = tf.keras.models.Sequential()
  model.add(tf.keras.layers.Input(shape=input_shape))
  for _ in range(num_conv):
    model.add(tf.keras.layers.Conv2D(32, (3, 3), activation=activation))
    model.add(tf.keras.layers.MaxPooling2D())
  model.add(tf.keras.layers.Flatten())
  model.add(tf.keras.layers.Dense(64, activation=activation))
  model.add(tf.keras.layers.Dense(num_classes))
  model.compile(
      loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
      optimizer=tf.keras.optimizers.Adam(learning_rate=lr),
      metrics=['accuracy'])
  return model


model_2layers = small_cnn(
    input_shape, num_classes, num_conv=2, activation=activation)
model_3layers = small_cnn(
    input_shape, num_classes, num_conv=3, activation=activation)


class PrivacyMetrics(tf.keras.callbacks.Callback):
  def __init__(self, epochs_per_report, model_name):
    self.epochs_per_report = epochs_per_report
    self.model_name = model_name
    self.attack_results = []

  def on_epoch_end(self, epoch, logs=None):
    epoch = epoch+1

    if epoch % self.epochs_per_report != 0:
      return

    print(f'\nRunning privacy report for epoch: {epoch}\n')

    logits_train = self.model.predict(x_train, batch_size=batch_size)
    logits_test = self.model.predict(x_test, batch_size=batch_size)

    prob_train = special.softmax(logits_train, axis=1)
    prob_test = special.softmax(logits_test, axis=1)

    # Add metadata to generate a privacy report.
    privacy_report_metadata = PrivacyReportMetadata(
        # Show the validation accuracy on the plot
        # It's what you send to train_accuracy that gets plotted.
        accuracy_train=logs['val_accuracy'],
        accuracy_test=logs['val_accuracy'],
        epoch_num=epoch,
        model_variant_label=self.model_name)

    attack_results = mia.run_attacks(
        AttackInputData(
            labels_train=y_train_indices[:, 0],
            labels_test=y_test_indices[:, 0],
            probs_train=prob_train,
            probs_test=prob_test),
        SlicingSpec(entire_dataset=True, by_class=True),
        attack_types=(AttackType.THRESHOLD_ATTACK,
                      AttackType.LOGISTIC_REGRESSION),
        privacy_report_metadata=privacy_report_metadata)

    self.attack_results.append(attack_results)


all_reports = []

callback = PrivacyMetrics(epochs_per_report, "2 Layers")
history = model_2layers.fit(
      x_train,
      y_train,
      batch_size=batch_size,
      epochs=total_epochs,
      validation_data=(x_test, y_test),
      callbacks=[callback],
      shuffle=True)

all_reports.extend(callback.attack_results)

callback = PrivacyMetrics(epochs_per_report, "3 Layers")
history = model_3layers.fit(
      x_train,
      y_train,
      batch_size=batch_size,
      epochs=total_epochs,
      validation_data=(x_test, y_test),
      callbacks=[callback],
      shuffle=True)

all_reports.extend(callback.attack_results)

# --- The codelab: epoch plots and privacy vs utility ------------------------------------------

results = AttackResultsCollection(all_reports)

privacy_metrics = (PrivacyMetric.AUC, PrivacyMetric.ATTACKER_ADVANTAGE)
epoch_plot = privacy_report.plot_by_epochs(
    results, privacy_metrics=privacy_metrics)

privacy_metrics = (PrivacyMetric.AUC, PrivacyMetric.ATTACKER_ADVANTAGE)
utility_privacy_plot = privacy_report.plot_privacy_vs_accuracy(
    results, privacy_metrics=privacy_metrics)

for axis in utility_privacy_plot.axes:
  axis.set_xlabel('Validation accuracy')

# --- The introductory MIA codelab: attack the trained model, plot the ROC curve ----------------

model = model_3layers
print('Predict on train...')
logits_train = model.predict(x_train, batch_size=batch_size)
print('Predict on test...')
logits_test = model.predict(x_test, batch_size=batch_size)

print('Apply softmax to get probabilities from logits...')
prob_train = special.softmax(logits_train, axis=1)
prob_test = special.softmax(logits_test, axis=1)

print('Compute losses...')
cce = tf.keras.backend.categorical_crossentropy
constant = tf.keras.backend.constant

loss_train = cce(constant(y_train), constant(prob_train), from_logits=False).numpy()
loss_test = cce(constant(y_test), constant(prob_test), from_logits=False).numpy()

import memberscope.compat.tf_privacy.plotting as plotting

labels_train = np.argmax(y_train, axis=1)
labels_test = np.argmax(y_test, axis=1)

input = AttackInputData(
  logits_train = logits_train,
  logits_test = logits_test,
  loss_train = loss_train,
  loss_test = loss_test,
  labels_train = labels_train,
  labels_test = labels_test
)

# Run several attacks for different data slices
attacks_result = mia.run_attacks(input,
                                 SlicingSpec(
                                     entire_dataset = True,
                                     by_class = True,
                                     by_classification_correctness = True
                                 ),
                                 attack_types = [
                                     AttackType.THRESHOLD_ATTACK,
                                     AttackType.LOGISTIC_REGRESSION])

# Plot the ROC curve of the best classifier
fig = plotting.plot_roc_curve(
    attacks_result.get_result_with_max_auc().roc_curve)

# Print a user-friendly summary of the attacks
print(attacks_result.summary(by_slices = True))

# --- Not in the codelabs: save the figures, print what the figures show -----------------------

args.out.mkdir(parents=True, exist_ok=True)
epoch_plot.savefig(args.out / "epoch_plot.png", dpi=100)
utility_privacy_plot.savefig(args.out / "privacy_vs_accuracy.png", dpi=100)
fig.savefig(args.out / "roc_curve.png", dpi=100)
print(f"\n{'model':<9} {'epoch':>5} {'val acc':>7} {'attack':<20} {'AUC':>6} {'adv':>6}")
for report in all_reports:
  meta = report.privacy_report_metadata
  for single in report.single_attack_results:
    if single.slice_spec.entire_dataset:
      print(f"{meta.model_variant_label:<9} {meta.epoch_num:>5} {meta.accuracy_test:>7.3f} "
            f"{single.attack_type!s:<20} {single.get_auc():>6.3f} "
            f"{single.get_attacker_advantage():>6.3f}")
print("\nLast report:\n" + all_reports[-1].summary())
print(f"\nfigures: {args.out / 'epoch_plot.png'}, {args.out / 'privacy_vs_accuracy.png'}, "
      f"{args.out / 'roc_curve.png'}")
print(f"total time: {time.perf_counter() - started:.0f} s")
