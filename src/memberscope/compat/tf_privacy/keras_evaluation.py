"""TF Privacy's Keras helpers on Keras 3, any backend: attack a model, or every epoch.

``run_attack_on_keras_model`` predicts on members and non-members and calls
``run_attacks``; ``MembershipInferenceCallback`` does so at the end of every epoch, logs the
metrics, keeps each epoch's :class:`AttackResults` (``attack_results``, ready for the privacy
report) and, with TensorFlow installed, writes them to TensorBoard. Predictions go through
``model.predict``, which every Keras backend (torch, jax, tensorflow) runs without gradients.
For audits every k epochs with memberscope's own results file and report, see
:class:`memberscope.monitor.keras.PrivacyMetrics`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from memberscope import signals
from memberscope.compat.tf_privacy import membership_inference_attack as mia
from memberscope.compat.tf_privacy.data_structures import (
    AttackInputData,
    AttackResults,
    AttackType,
    PrivacyReportMetadata,
    SlicingSpec,
    get_flattened_attack_metrics,
)
from memberscope.compat.tf_privacy.utils import log_loss
from memberscope.errors import InputError, MissingBackendError, MissingExtraError
from memberscope.monitor.keras_backend import backend_problem

_FEATURE = "memberscope.compat.tf_privacy.keras_evaluation"
_PROBABILITY_TOLERANCE = 1e-3


def _import_keras() -> Any:
    if importlib.util.find_spec("keras") is None:
        raise MissingExtraError("keras", "keras", _FEATURE)
    try:
        return importlib.import_module("keras")
    except Exception as exc:  # keras is there: its backend failed
        raise MissingBackendError(backend_problem(exc)) from exc


_keras: Any = _import_keras()
logger = logging.getLogger(__name__)


def _predict(model: Any, data: Any, batch_size: int) -> np.ndarray:
    return np.asarray(model.predict(data, batch_size=batch_size, verbose=0), dtype=np.float64)


def calculate_losses(model: Any, data: Any, labels: Any, is_logit: bool = False,
                     batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The model's class probabilities (n, C) on ``data`` and each example's cross-entropy
    (n,) against integer ``labels``; ``is_logit``: the model outputs logits (the loss is then
    computed from them exactly)."""
    outputs = _predict(model, data, batch_size)
    loss = log_loss(np.asarray(labels), outputs, from_logits=is_logit)
    probs = signals.softmax(outputs) if is_logit else outputs
    return probs, loss


def _is_distribution(outputs: np.ndarray) -> bool:
    return bool(outputs.ndim == 2 and (outputs >= 0).all()
                and np.allclose(outputs.sum(axis=1), 1.0, atol=_PROBABILITY_TOLERANCE))


def run_attack_on_keras_model(model: Any, in_train: tuple[Any, Any], out_train: tuple[Any, Any],
                              slicing_spec: SlicingSpec | None = None,
                              attack_types: Iterable[AttackType] = (AttackType.THRESHOLD_ATTACK,),
                              is_logit: bool = False, batch_size: int = 32,
                              **run_attacks_options: Any) -> AttackResults:
    """Attack ``model``: ``in_train`` = (members' inputs, labels), ``out_train`` = (non-members'
    inputs, labels); ``is_logit``: the model outputs logits rather than probabilities.
    ``run_attacks_options`` go to :func:`run_attacks` (``privacy_report_metadata``, ``seed`` …).
    """
    sides: dict[str, Any] = {}
    for side, (data, labels) in (("train", in_train), ("test", out_train)):
        outputs = _predict(model, data, batch_size)
        loss = log_loss(np.asarray(labels), outputs, from_logits=is_logit)
        kind = "logits" if is_logit or not _is_distribution(outputs) else "probs"
        if kind == "logits" and not is_logit:
            logger.warning("the model's outputs on the %s set are not probabilities (rows must "
                           "be >= 0 and sum to 1); they are read as logits", side)
        sides.update({f"{kind}_{side}": outputs, f"labels_{side}": np.asarray(labels),
                      f"loss_{side}": loss})
    if ("logits_train" in sides) != ("logits_test" in sides):
        for side in ("train", "test"):  # both sides in one field, as the attacks need
            if f"probs_{side}" in sides:
                sides[f"logits_{side}"] = sides.pop(f"probs_{side}")
    return mia.run_attacks(AttackInputData(**sides), slicing_spec=slicing_spec,
                           attack_types=attack_types, **run_attacks_options)


class MembershipInferenceCallback(_keras.callbacks.Callback):
    """Keras callback: attack the model at the end of every epoch.

    Parameters
    ----------
    in_train, out_train : (inputs, labels)
        Members (training data) and non-members (held out).
    slicing_spec, attack_types, is_logit, batch_size
        As in :func:`run_attack_on_keras_model`.
    tensorboard_dir : str, optional
        Write each metric to TensorBoard under ``DIR/MI`` (needs TensorFlow for
        ``tf.summary``; with ``tensorboard_merge_classifiers``, one run per attack type).

    Each epoch's results are kept in ``attack_results`` (an ``AttackResults`` whose
    ``privacy_report_metadata.epoch_num`` is the 1-based epoch).
    """

    def __init__(self, in_train: tuple[Any, Any], out_train: tuple[Any, Any],
                 slicing_spec: SlicingSpec | None = None,
                 attack_types: Iterable[AttackType] = (AttackType.THRESHOLD_ATTACK,),
                 tensorboard_dir: str | Path | None = None,
                 tensorboard_merge_classifiers: bool = False, is_logit: bool = False,
                 batch_size: int = 32) -> None:
        super().__init__()
        self._in_train, self._out_train = in_train, out_train
        self._slicing_spec = slicing_spec
        self._attack_types = tuple(attack_types)
        self._is_logit, self._batch_size = is_logit, batch_size
        self._merge = tensorboard_merge_classifiers
        self._writers = _tensorboard_writers(tensorboard_dir, self._attack_types, self._merge)
        self.attack_results: list[AttackResults] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Attack the model and log, keep and (optionally) write the metrics."""
        results = run_attack_on_keras_model(
            self.model, self._in_train, self._out_train, self._slicing_spec,
            self._attack_types, self._is_logit, self._batch_size,
            privacy_report_metadata=PrivacyReportMetadata(epoch_num=epoch + 1))
        self.attack_results.append(results)
        types, slices, metrics, values = get_flattened_attack_metrics(results)
        for attack, slice_name, metric, value in zip(types, slices, metrics, values,
                                                     strict=True):
            logger.info("epoch %d, %s, %s, %s: %.4f", epoch + 1, slice_name, attack, metric,
                        value)
        if self._writers is not None:
            _write_tensorboard(self._writers, epoch, types, slices, metrics, values, self._merge)


def _tensorboard_writers(directory: str | Path | None, attack_types: tuple[AttackType, ...],
                         merge: bool) -> Any:
    if directory is None:
        return None
    if importlib.util.find_spec("tensorflow") is None:
        raise InputError("tensorboard_dir needs TensorFlow (tf.summary writes the events); "
                         "install tensorflow, or use attack_results / memberscope's report")
    import tensorflow as tf

    root = Path(directory) / "MI"
    if merge:
        return {t.name: tf.summary.create_file_writer(str(root / t.name)) for t in attack_types}
    return tf.summary.create_file_writer(str(root))


def _write_tensorboard(writers: Any, epoch: int, types: list[str], slices: list[str],
                       metrics: list[str], values: list[float], merge: bool) -> None:
    import tensorflow as tf

    for attack, slice_name, metric, value in zip(types, slices, metrics, values, strict=True):
        writer = writers[attack] if merge else writers
        tag = f"{slice_name}/{metric}" if merge else f"{slice_name}/{attack}/{metric}"
        with writer.as_default():
            tf.summary.scalar(tag, value, step=epoch)
        writer.flush()


__all__ = ["MembershipInferenceCallback", "calculate_losses", "run_attack_on_keras_model"]
