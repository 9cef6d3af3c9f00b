"""TF Privacy's slices: which examples of each side a :class:`SingleSliceSpec` selects.

A slice keeps the members (``*_train``) and non-members (``*_test``) that satisfy its
condition: a class (for multi-label data, every example carrying that class), a range of
loss percentiles over both sides pooled (bounds included; multi-label losses summed over the
classes), the correctness of the prediction, or a group value of custom group vectors.
``run_attacks`` turns these masks into memberscope slices; :func:`get_slice` cuts an
:class:`AttackInputData` down to one slice, as TF Privacy's does.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

from memberscope.compat.tf_privacy.data_structures import (
    AttackInputData,
    SingleSliceSpec,
    SlicingFeature,
    SlicingSpec,
)
from memberscope.errors import InputError

logger = logging.getLogger(__name__)

#: More slices of one kind than this are refused (a continuous value was likely passed).
MAX_NUM_OF_SLICES = 1000
_PER_EXAMPLE = ("logits", "probs", "labels", "loss", "entropy", "sample_weight")


def get_single_slice_specs(slicing_spec: SlicingSpec,
                           num_classes: int | None = None) -> list[SingleSliceSpec]:
    """Every slice of ``slicing_spec``, in TF Privacy's order: the entire dataset, classes,
    loss percentiles, correctness, custom groups. ``by_class=True`` needs ``num_classes``."""
    specs = [SingleSliceSpec()] if slicing_spec.entire_dataset else []
    selection = slicing_spec.class_selection()
    if selection is True:
        if not num_classes:
            raise InputError("SlicingSpec.by_class=True needs the number of classes "
                             "(num_classes); give labels")
        if not 0 <= num_classes <= MAX_NUM_OF_SLICES:
            raise InputError(f"too many classes to slice by: {num_classes} (at most "
                             f"{MAX_NUM_OF_SLICES})")
        specs += [SingleSliceSpec(SlicingFeature.CLASS, c) for c in range(num_classes)]
    elif selection:
        specs += [SingleSliceSpec(SlicingFeature.CLASS, c) for c in selection]
    if slicing_spec.by_percentiles:
        specs += [SingleSliceSpec(SlicingFeature.PERCENTILE, (low, low + 10))
                  for low in range(0, 100, 10)]
    if slicing_spec.by_classification_correctness:
        specs += [SingleSliceSpec(SlicingFeature.CORRECTLY_CLASSIFIED, value)
                  for value in (True, False)]
    for train_groups, test_groups in zip(slicing_spec.all_custom_train_indices or (),
                                         slicing_spec.all_custom_test_indices or (),
                                         strict=True):
        groups = np.intersect1d(np.unique(train_groups), np.unique(test_groups))
        if groups.size > MAX_NUM_OF_SLICES:
            raise InputError(f"too many custom groups to slice by: {groups.size} (at most "
                             f"{MAX_NUM_OF_SLICES})")
        for group in groups:
            name = None
            if slicing_spec.custom_slices_names is not None:
                if group not in slicing_spec.custom_slices_names:
                    raise InputError(f"custom group {group!r} has no name in "
                                     f"custom_slices_names; named: "
                                     f"{sorted(slicing_spec.custom_slices_names)}")
                name = slicing_spec.custom_slices_names[group]
            specs.append(SingleSliceSpec(SlicingFeature.CUSTOM,
                                         (train_groups, test_groups, group, name)))
    return specs


def slice_masks(data: AttackInputData, slice_spec: SingleSliceSpec, *,
                loss_train: np.ndarray | None = None,
                loss_test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which members (n_train,) and non-members (n_test,) the slice keeps, as bool masks.

    ``loss_train``/``loss_test`` (per-example, summed over classes for multi-label data)
    save recomputing the losses for percentile slices.
    """
    n_train, n_test = data.get_train_size(), data.get_test_size()
    feature = slice_spec.feature
    if feature is None:
        return np.ones(n_train, bool), np.ones(n_test, bool)
    if feature is SlicingFeature.CLASS:
        return _class_masks(data, slice_spec.value)
    if feature is SlicingFeature.PERCENTILE:
        return _percentile_masks(data, slice_spec.value, loss_train, loss_test)
    if feature is SlicingFeature.CORRECTLY_CLASSIFIED:
        return _correctness_masks(data, bool(slice_spec.value))
    if feature is SlicingFeature.CUSTOM:
        train_groups, test_groups, group, _ = slice_spec.value
        for side, groups, size in (("train", train_groups, n_train),
                                   ("test", test_groups, n_test)):
            if np.shape(groups)[:1] != (size,):
                raise InputError(f"custom {side} groups must have one value per {side} example "
                                 f"({size}); got shape {np.shape(groups)}")
        return np.asarray(train_groups) == group, np.asarray(test_groups) == group
    raise InputError(f"unknown slice feature {feature!r}; valid: "
                     f"{', '.join(f.name for f in SlicingFeature)}")


def _class_masks(data: AttackInputData, value: Any) -> tuple[np.ndarray, np.ndarray]:
    if not data.has_labels:
        raise InputError("slicing by class needs labels_train and labels_test")
    if data.is_multilabel_data():
        if not 0 <= value < data.num_classes:
            raise InputError(f"class {value} is not one of the {data.num_classes} classes")
        return (np.asarray(data.labels_train)[:, value].astype(bool),
                np.asarray(data.labels_test)[:, value].astype(bool))
    return np.asarray(data.labels_train) == value, np.asarray(data.labels_test) == value


def _percentile_masks(data: AttackInputData, bounds: tuple[float, float],
                      loss_train: np.ndarray | None,
                      loss_test: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if loss_train is None or loss_test is None:
        loss_train, loss_test = data.get_loss_train(), data.get_loss_test()
        if loss_train is None or loss_test is None:
            raise InputError("slicing by loss percentiles needs losses: give loss_train and "
                             "loss_test, or labels with logits or probs")
        if data.is_multilabel_data():
            logger.info("For multilabel data, when slices by percentiles are requested, "
                        "losses are summed over the class axis before slicing.")
            loss_train, loss_test = np.sum(loss_train, axis=1), np.sum(loss_test, axis=1)
    pooled = np.concatenate([loss_train, loss_test])
    low, high = np.percentile(pooled, bounds)
    return ((low <= loss_train) & (loss_train <= high),
            (low <= loss_test) & (loss_test <= high))


def _correctness_masks(data: AttackInputData, correct: bool) -> tuple[np.ndarray, np.ndarray]:
    if data.is_multilabel_data():
        raise InputError("slicing by classification correctness is not defined for "
                         "multi-label data")
    masks = []
    for side in ("train", "test"):
        scores = getattr(data, f"logits_or_probs_{side}")
        labels = getattr(data, f"labels_{side}")
        if scores is None or labels is None:
            raise InputError("slicing by classification correctness needs labels with logits "
                             "or probs")
        masks.append((np.asarray(labels) == np.argmax(scores, axis=1)) == correct)
    return masks[0], masks[1]


def get_slice(data: AttackInputData, slice_spec: SingleSliceSpec,
              return_slice_indices: bool = False) -> AttackInputData:
    """``data`` cut down to the examples of ``slice_spec`` (a shallow copy for the entire
    dataset), with ``slice_spec`` and, with ``return_slice_indices``, the kept positions
    ``train_indices``/``test_indices`` set as attributes."""
    if slice_spec.entire_dataset:
        result = copy.copy(data)
    else:
        train_mask, test_mask = slice_masks(data, slice_spec)
        result = copy.copy(data)
        for name in _PER_EXAMPLE:
            for side, mask in (("train", train_mask), ("test", test_mask)):
                value = getattr(data, f"{name}_{side}")
                setattr(result, f"{name}_{side}", None if value is None else value[mask])
        result.multilabel_data = data.is_multilabel_data()
        if return_slice_indices:
            result.train_indices = np.flatnonzero(train_mask)  # type: ignore[attr-defined]
            result.test_indices = np.flatnonzero(test_mask)  # type: ignore[attr-defined]
    result.slice_spec = slice_spec  # type: ignore[attr-defined]
    return result


__all__ = ["MAX_NUM_OF_SLICES", "get_single_slice_specs", "get_slice", "slice_masks"]
