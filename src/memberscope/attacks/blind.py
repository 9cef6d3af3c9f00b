"""The blind attack: tells members from non-members by their inputs (and labels) alone.

It never sees the model. Where it beats chance, members and non-members differ *before* any
model sees them (another source, date, crop, pre-processing or class balance), and every
attack on the model inherits that difference: such a split cannot show memorisation (Das,
Zhang & Tramèr 2024, "Blind baselines beat membership inference attacks for foundation
models"). It runs through the trained attacks' machinery (:func:`cross_validated_scores`):
stratified k-fold cross-validation with balanced training folds, within-fold percentiles,
per-fold rank tests, so its p-value and Holm verdict mean what the other rows' mean.

Features come from :func:`input_summary` (fast and generic, any per-example shape), or from
the caller: ``attack_options={"blind": {"features": f}}`` with ``f`` a callable
``f(inputs) -> (n, d)`` (embeddings, bag of words, lengths, dates) or a precomputed (n, d)
array. The label, one-hot, is appended to either, so a difference in class balance counts.
The classifier is a ridge-regularised linear discriminant: one pass over the training fold,
an order of magnitude cheaper than a logistic regression at these sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from memberscope.attacks._base import (
    Attack,
    SliceScores,
    check_int_option,
    check_option_names,
)
from memberscope.attacks.trained import cross_validated_scores, single_threaded_blas
from memberscope.errors import InputError
from memberscope.outputs import ExampleInputs, ModelOutputs

RAW_VALUES = 32
"""Examples of at most this many values are described by the values themselves (tabular)."""
SAMPLED_VALUES = 192
"""About how many values of each larger example the summary reads (whole rows of it, at
least :data:`MIN_ROWS`): a CIFAR-10 image's 2 rows of 96, a Fashion-MNIST image's 6 of 28."""
MIN_ROWS = 2
CELLS = 16
"""Cells of the coarse layout grid, over all channels."""
MAX_ONE_HOT_CLASSES = 64
BLOCK_ROWS = 4096
_RIDGE = 1e-3

BLIND_DEFAULTS: dict[str, Any] = {"features": None, "n_folds": 3, "max_train_per_side": 1000}


# --- the default featurizer -----------------------------------------------------------------


def input_summary(inputs: ExampleInputs) -> np.ndarray:
    """A few dozen numbers per example that describe its inputs, whatever their shape.

    An example of at most :data:`RAW_VALUES` values (a table row) is described by its values.
    A larger one, shape (s_1, …, s_k), is read as a grid of s_1 rows with channels last
    when the last axis has at most 4 entries (images: (H, W, C)). A fixed, evenly spaced
    set of whole rows (about :data:`SAMPLED_VALUES` values, at least 2 rows) is read, and
    summarised by: each channel's mean and standard deviation; the smallest and largest
    value; the channel means over a coarse grid of about :data:`CELLS` cells (where things
    are: crops, borders, layout); and the mean absolute difference of neighbours along the
    first row read (sharpness, noise, compression). Reading a few whole rows keeps memory access
    contiguous and the cost small: 2 of a CIFAR-sized image's 32 rows. What it cannot see:
    a difference confined to the rows it skips, or one in content rather than in these
    statistics (which class of shoe, how hard an example is): see ``docs/split-guard.md``.

    Parameters
    ----------
    inputs : ExampleInputs
        n examples of any per-example shape, numeric.

    Returns
    -------
    (n, d) float64
        d = the number of values per example (at most 32), else 2·C + 3 + the cells' count
        (21 for 32×32×3 and for 28×28 images).

    Raises
    ------
    InputError
        Where a value it reads is NaN or infinite, naming the array and row.
    """
    layout = _Layout.of(inputs.example_shape)
    features = np.empty((inputs.n, layout.n_features))
    summary = None if layout.raw else _BlockSummary(layout, min(BLOCK_ROWS, inputs.n))
    # One BLAS thread: the products are small, and with another process busy on the other
    # core a threaded product waits at every barrier (the featurizer took 0.25 s instead of
    # 0.05 s on 60,000 CIFAR-sized images).
    with single_threaded_blas():
        for part, rows, start in inputs.blocks(BLOCK_ROWS):
            # Copy the rows read (contiguous runs), then convert: converting a strided view
            # directly was 3x slower.
            read = np.ascontiguousarray(part.array[(rows, *layout.read)])
            read = read.reshape(len(read), -1)
            block_features = features[start:start + len(read)]
            if summary is None:
                block_features[...] = read
            else:
                summary.write(read, block_features)
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise InputError(
            f"{inputs.row_name(int(np.argmax(bad)))} holds NaN or infinite values; the "
            "blind check's default featurizer needs finite numbers (or pass "
            "attack_options={'blind': {'features': ...}} that handle them)")
    return features


class _Layout:
    """How one example's values are read and summarised (computed once per shape)."""

    def __init__(self, shape: tuple[int, ...], read: tuple[slice, ...], rows: int,
                 columns: int, channels: int) -> None:
        self.shape, self.read = shape, read
        self.rows, self.columns, self.channels = rows, columns, channels
        self.n_values = rows * columns * channels
        self.raw = read == ()
        self.pooling = None if self.raw else _pooling_matrix(rows, columns, channels)
        cells = 0 if self.pooling is None else self.pooling.shape[1] - channels
        self.n_features = self.n_values if self.raw else 2 * channels + 3 + cells

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> _Layout:
        size = math.prod(shape)
        if size <= RAW_VALUES:
            return cls(shape, (), 1, size, 1)
        grid_shape = shape if shape else (1,)
        channels = grid_shape[-1] if len(grid_shape) >= 2 and grid_shape[-1] <= 4 else 1
        n_rows = grid_shape[0]
        per_row = size // n_rows
        wanted = min(n_rows, max(MIN_ROWS, SAMPLED_VALUES // per_row))
        step = -(-n_rows // wanted)
        read = (slice(step // 2, None, step),)
        sampled_rows = len(range(step // 2, n_rows, step))
        return cls(shape, read, sampled_rows, per_row // channels, channels)


class _BlockSummary:
    """Summarises the values read of a block of examples at a time, in buffers reused from
    block to block (a fresh array of a block's size costs its page faults every time).

    Each block: the values (b, values read) as float32; their products with the pooling
    matrix (each channel's mean, then the cells' means) and, squared, with its channel
    columns; the smallest and largest value in the input's own dtype (a uint8 pass is 4x
    cheaper); the mean absolute difference of neighbours along the first row read (along the
    values read, for 1-d examples). Where values sit far from zero against their spread, each
    channel's median over the first example is subtracted before squaring, so variances do
    not cancel in float32 (they do not depend on it).
    """

    def __init__(self, layout: _Layout, max_rows: int) -> None:
        assert layout.pooling is not None
        self.layout = layout
        channels = layout.channels
        # A view, not a contiguous copy: BLAS sums a single row's product with it in
        # another order (a one-example block's variance differed in its last bit).
        self.channel_pooling = layout.pooling[:, :channels]
        # Neighbours along the first row read; along all values read for 1-d examples.
        self.line = layout.columns * channels if layout.columns > 1 else layout.n_values
        self.values = np.empty((max_rows, layout.n_values), dtype=np.float32)
        self.pooled = np.empty((max_rows, layout.pooling.shape[1]), dtype=np.float32)
        self.squares = np.empty((max_rows, channels), dtype=np.float32)
        self.steps = np.empty((max_rows, self.line - channels), dtype=np.float32)
        self.offset: np.ndarray | None = None
        self.first = True

    def write(self, read: np.ndarray, out: np.ndarray) -> None:
        """Summarise ``read`` (b, values read), any numeric dtype, into ``out`` (b,
        n_features) float64."""
        layout, channels, b = self.layout, self.layout.channels, len(read)
        assert layout.pooling is not None
        values, pooled = self.values[:b], self.pooled[:b]
        np.copyto(values, read, casting="unsafe")
        if self.first:
            self.offset, self.first = _channel_offset(values[0], channels), False
        np.matmul(values, layout.pooling, out=pooled)  # channel means, then cell means
        out[:, :channels] = pooled[:, :channels]
        out[:, 2 * channels + 3:] = pooled[:, channels:]
        out[:, 2 * channels] = read.min(axis=1)
        out[:, 2 * channels + 1] = read.max(axis=1)
        means = pooled[:, :channels]
        if self.offset is not None:
            np.subtract(values, self.offset, out=values)
            means = means - self.offset[:channels]
        steps = self.steps[:b]
        np.subtract(values[:, channels:self.line], values[:, :self.line - channels], out=steps)
        np.abs(steps, out=steps)
        out[:, 2 * channels + 2] = steps.mean(axis=1)
        np.square(values, out=values)
        squares = np.matmul(values, self.channel_pooling, out=self.squares[:b])
        out[:, channels:2 * channels] = np.sqrt(np.maximum(squares - means ** 2, 0.0))


def _channel_offset(first: np.ndarray, channels: int) -> np.ndarray | None:
    """(values read,) float32: each channel's median over the first example's values read
    ``first``, repeated; None where values sit near zero against their spread (pixels,
    scaled features), and E[x²] − E[x]² loses nothing to float32."""
    by_channel = first.reshape(-1, channels)
    per_channel = np.median(by_channel, axis=0)
    if np.abs(per_channel).max() <= 16 * (float(by_channel.std()) + 1e-12):
        return None
    return np.tile(per_channel, len(first) // channels).astype(np.float32)


def _pooling_matrix(rows: int, columns: int, channels: int) -> np.ndarray:
    """(rows·columns·channels, channels + cells·channels) float32 averaging weights: each
    channel's mean, then each channel's mean over each cell of a coarse grid."""
    cells_per_channel = max(1, CELLS // channels)
    grid_rows = min(rows, max(1, round(math.sqrt(cells_per_channel))) if columns > 1
                    else cells_per_channel)
    grid_columns = min(columns, max(1, cells_per_channel // grid_rows))
    row_cell = np.arange(rows) * grid_rows // rows
    column_cell = np.arange(columns) * grid_columns // columns
    cell = (row_cell[:, None] * grid_columns + column_cell[None, :]).reshape(-1)
    n_cells = grid_rows * grid_columns
    weights = np.zeros((rows * columns, channels, channels + n_cells * channels),
                       dtype=np.float32)
    for channel in range(channels):
        weights[:, channel, channel] = 1.0 / (rows * columns)
        counts = np.bincount(cell, minlength=n_cells)
        weights[np.arange(rows * columns), channel, channels + cell * channels + channel] = (
            1.0 / counts[cell])
    return weights.reshape(rows * columns * channels, -1)


# --- the attack -----------------------------------------------------------------------------


def blind_features(outputs: ModelOutputs, reference: Any,
                   options: Mapping[str, Any]) -> np.ndarray:
    """The blind attack's signal: features (n, d) of each example's inputs, then its label
    one-hot (up to :data:`MAX_ONE_HOT_CLASSES` classes). Never reads the model's outputs.

    ``options["features"]``: None (the default featurizer on ``outputs.inputs``), a callable
    receiving all inputs (n, …) and returning (n, d), or a precomputed (n, d) array.
    """
    given = options.get("features")
    if given is not None and not callable(given):
        features = checked_features(given, outputs.n, "attack_options['blind']['features']")
    elif outputs.inputs is None:
        raise InputError(
            "blind needs the examples' inputs and there are none: give inputs_train and "
            "inputs_test (ModelOutputs.from_train_test, or the audit .npz), "
            "ModelOutputs(inputs=...), or attack_options={'blind': {'features': (n, d)}}")
    elif given is None:
        features = input_summary(outputs.inputs)
    else:
        features = checked_features(given(outputs.inputs.to_array()), outputs.n,
                                    "the blind features callable's result")
    labels = outputs.labels
    if labels is None or labels.max() + 1 > MAX_ONE_HOT_CLASSES:
        return features
    n, d = features.shape
    with_labels = np.empty((n, d + int(labels.max()) + 1))
    with_labels[:, :d] = features
    with_labels[:, d:] = 0.0
    with_labels[np.arange(n), d + labels] = 1.0
    return with_labels


def checked_features(value: Any, n: int, name: str) -> np.ndarray:
    """``value`` as finite float64 features (n, d), or an error naming ``name``."""
    array = np.asarray(value)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or len(array) != n:
        raise InputError(f"{name} must be (n, d) with n = {n} (one row per audited example, "
                         f"members then non-members); got shape {array.shape}")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        raise InputError(f"{name} has dtype {array.dtype}; expected numbers")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputError(f"{name} holds NaN or infinite values (first at row "
                         f"{int(np.argmax(bad))})")
    return array


class LinearDiscriminant:
    """Fisher's linear discriminant with a small ridge, on standardised features.

    Direction w = (S + λ·tr(S)/d · I)⁻¹ (μ₁ − μ₀) for the pooled within-class covariance S;
    the score is w·x, through a sigmoid so the cross-validation reads it as P(member) (only
    its order matters: scores become within-fold percentiles).
    """

    classes_ = np.array([False, True])

    def fit(self, features: np.ndarray, membership: np.ndarray) -> LinearDiscriminant:
        """Fit on ``features`` (n, d) and boolean ``membership`` (n,) holding both classes."""
        members, nonmembers = features[membership], features[~membership]
        mean_members, mean_nonmembers = members.mean(axis=0), nonmembers.mean(axis=0)
        centred = np.vstack([members - mean_members, nonmembers - mean_nonmembers])
        scatter = centred.T @ centred / max(len(features) - 2, 1)
        ridge = _RIDGE * max(float(np.trace(scatter)) / len(scatter), 1e-12)
        self.coef_ = np.linalg.solve(scatter + ridge * np.eye(len(scatter)),
                                     mean_members - mean_nonmembers)
        self.intercept_ = -float(self.coef_ @ (mean_members + mean_nonmembers)) / 2
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, 2) sigmoid of the discriminant: non-member, member."""
        member = 0.5 * (1.0 + np.tanh(0.5 * (features @ self.coef_ + self.intercept_)))
        return np.column_stack([1 - member, member])


def _score_slice(features: np.ndarray, membership: np.ndarray, seed: int,
                 options: Mapping[str, Any]) -> SliceScores:
    return cross_validated_scores(features, membership, seed, lambda _seed: LinearDiscriminant(),
                                  n_folds=int(options["n_folds"]),
                                  max_train_per_side=int(options["max_train_per_side"]))


def _check_options(options: Mapping[str, Any]) -> None:
    check_option_names("blind", options, BLIND_DEFAULTS)
    check_int_option("blind", options, "n_folds", 2)
    check_int_option("blind", options, "max_train_per_side", 2)
    features = options["features"]
    if features is not None and not callable(features):
        array = np.asarray(features)
        if array.ndim not in (1, 2) or array.dtype == object or not (
                np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise InputError("blind: option 'features' must be a callable f(inputs) -> (n, d) "
                             f"or a numeric (n, d) array; got {type(features).__name__} of "
                             f"shape {array.shape} and dtype {array.dtype}")


# A linear attacker pooling fold models like lr: its folds' dependence under H0 is taken as
# lr's (calibrated for lr by benchmarks/chance_bands.py, not separately for this one).
BLIND_ATTACK = Attack(
    "blind", "blind baseline: a linear discriminant on the inputs and labels, never the model",
    "inputs (inputs_train/inputs_test) or features", blind_features, _score_slice,
    min_per_side=3, defaults=BLIND_DEFAULTS, check_options=_check_options,
    fold_dependence=((67, 0.82), (2000, 1.0)))
