"""Trained attacks: a classifier on per-example features, out-of-fold scores for every example.

Each slice gets its own attacker. Stratified k-fold cross-validation gives every example a score
from a model that did not see it. Within each training fold the majority side is subsampled to
the minority's size (balanced training, so the attacker cannot win by predicting the majority),
and to at most ``max_train_per_side`` examples per side to bound the time on large slices.
Everything is deterministic under ``seed``.

The fold of each score is returned with it: under H0 the held-out scores of one fold (one
model, fit on other data) are exchangeable, scores of different folds are not, so the p-value
compares scores within folds only.

The stored score is the example's mid-rank among its fold's held-out scores, scaled to (0, 1)
(``fold_percentiles``), not the fold model's raw P(member). Each fold model has its own
calibration, and pooling raw probabilities of different models put the pooled AUC below 0.5
under no signal (rf: 0.494 on slices of ~300 per side; Forman & Scholz 2010). Within-fold
percentiles share one scale: the pooled AUC is then close to the size-weighted mean of the
within-fold AUCs, each unbiased under H0, and the within-fold order (hence the p-value) is
unchanged.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from memberscope import signals
from memberscope._validation import layer_sizes
from memberscope.attacks._base import (
    Attack,
    SliceScores,
    check_int_option,
    check_number_option,
    check_option_names,
)
from memberscope.errors import InputError
from memberscope.outputs import ModelOutputs
from memberscope.significance import RankedScores

TOP_K_PROBABILITIES = 10


def attack_features(outputs: ModelOutputs, reference: Any = None,
                    options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Features (n, d) for trained attacks.

    With a distribution: the top-k log-probabilities sorted descending (label-free), the loss,
    the true-class logit-scaled confidence, the entropy, and correctness. With loss only: loss.
    """
    loss = outputs.loss_values
    if not outputs.has_distribution:
        return loss[:, None].copy()
    probs = outputs.probabilities
    if outputs.logits is not None:
        log_probs = signals.log_softmax(outputs.logits)
    else:
        log_probs = np.log(np.maximum(probs, np.finfo(np.float64).tiny))
    k = min(TOP_K_PROBABILITIES, log_probs.shape[1])
    top = -np.sort(-log_probs, axis=1)[:, :k]
    scaled = signals.logit_scaled_confidence(outputs.known_labels, logits=outputs.logits,
                                             probs=probs)
    # Clip so a few saturated rows cannot dominate a linear model's scale.
    columns = [np.maximum(top, -50.0), np.minimum(loss, 50.0)[:, None],
               np.clip(scaled, -50.0, 50.0)[:, None], signals.entropy(probs)[:, None],
               outputs.is_correct[:, None].astype(np.float64)]
    return np.hstack(columns)


def _balanced_subsample(index: np.ndarray, membership: np.ndarray, cap: int,
                        rng: np.random.Generator) -> np.ndarray:
    members = index[membership[index]]
    nonmembers = index[~membership[index]]
    size = min(len(members), len(nonmembers), cap)
    return np.concatenate([rng.choice(members, size, replace=False),
                           rng.choice(nonmembers, size, replace=False)])


def _fold_ids(membership: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold id (0..n_folds-1) of each example."""
    folds = np.empty(len(membership), dtype=np.int64)
    for side in (membership, ~membership):
        index = rng.permutation(np.flatnonzero(side))
        folds[index] = np.arange(len(index)) % n_folds
    return folds


def cross_validated_scores(features: np.ndarray, membership: np.ndarray, seed: int,
                           make_model: Callable[[int], Any], *, n_folds: int,
                           max_train_per_side: int) -> SliceScores:
    """Out-of-fold P(member) for every row of ``features`` (n, d), with each row's fold."""
    # These fits are small; multi-threaded BLAS only adds synchronisation, and under load
    # from other processes it made LR fits ~10x slower here.
    with single_threaded_blas():
        return _cross_validated_scores(features, membership, seed, make_model,
                                       n_folds=n_folds, max_train_per_side=max_train_per_side)


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """A context in which BLAS (and OpenMP) run on one thread, restored on exit: for small
    products, where threads only add synchronisation (and wait on each other whenever
    another process holds a core)."""
    return _blas_controller().limit(limits=1)


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries, found once: the search reads
    /proc/self/maps and cost ~4 ms per slice."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class _Standardizer:
    """Per-column centring and scaling to unit variance (ddof 0); constant columns keep
    scale 1. What sklearn's StandardScaler does, without its validation cost per fold."""

    def __init__(self, features: np.ndarray) -> None:
        self.mean = features.mean(axis=0)
        scale = features.std(axis=0)
        self.scale = np.where(scale > 10 * np.finfo(np.float64).eps * np.abs(self.mean)
                              + np.finfo(np.float64).tiny, scale, 1.0)

    def standardised(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (m, d), a copy the caller owns, centred and scaled in place."""
        rows -= self.mean
        rows /= self.scale
        return rows


def _cross_validated_scores(features: np.ndarray, membership: np.ndarray, seed: int,
                            make_model: Callable[[int], Any], *, n_folds: int,
                            max_train_per_side: int) -> SliceScores:
    rng = np.random.default_rng(seed)
    folds = _fold_ids(membership, n_folds, rng)
    percentiles = np.empty(len(membership))
    ranked: dict[int, RankedScores] = {}
    for fold in range(n_folds):
        held_out = np.flatnonzero(folds == fold)
        train = _balanced_subsample(np.flatnonzero(folds != fold), membership,
                                    max_train_per_side, rng)
        # np.take: a third of the time of indexing rows by a mask or an index array.
        training = np.take(features, train, axis=0)
        scaler = _Standardizer(training)
        model = make_model(int(rng.integers(2**31 - 1)))
        neighbours = getattr(model, "n_neighbors", None)
        if neighbours is not None and neighbours > len(train):
            raise InputError(
                f"n_neighbors={neighbours} but a training fold of this slice holds only "
                f"{len(train)} examples; lower the option n_neighbors or use larger slices")
        model.fit(scaler.standardised(training), membership[train])
        member_column = list(model.classes_).index(True)
        probabilities = model.predict_proba(
            scaler.standardised(np.take(features, held_out, axis=0)))
        if len(held_out):
            ranked[fold] = fold_percentiles(probabilities[:, member_column])
            percentiles[held_out] = ranked[fold].in_example_order()
    return SliceScores(percentiles, folds, ranked)


def fold_percentiles(scores: np.ndarray) -> RankedScores:
    """One fold's out-of-fold ``scores`` (n,) as their mid-ranks scaled to (0, 1):
    (rank − 1/2) / n, ranked by the sort that found them (the paired tests on them then
    need no sort of their own).

    Tied scores share the mean of their 1-based ranks (``scipy.stats.rankdata``'s, ~4x
    faster on 20,000 scores), so the fold's order and ties are kept and only the scale
    changes: every fold's percentiles share one scale.
    """
    order = np.argsort(scores)
    ordered = scores[order]
    starts_group = np.ones(len(scores), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], len(scores))
    mid_ranks = ((starts + 1 + ends) / 2)[np.cumsum(starts_group) - 1]
    return RankedScores((mid_ranks - 0.5) / len(scores), order)


def _scorer(make_model: Callable[[int, Mapping[str, Any]], Any]) -> Any:
    def score_slice(features: np.ndarray, membership: np.ndarray, seed: int,
                    options: Mapping[str, Any]) -> SliceScores:
        return cross_validated_scores(
            features, membership, seed, lambda s: make_model(s, options),
            n_folds=int(options["n_folds"]), max_train_per_side=int(options["max_train_per_side"]))

    return score_slice


class NewtonLogisticRegression:
    """L2-regularised logistic regression fit by Newton's method (IRLS).

    With a dozen features Newton converges in ~6-10 steps of one (d × d) solve each, an order of
    magnitude faster than a general-purpose quasi-Newton solver, and the optimum is unique, so
    the fit is deterministic. Objective: mean log-loss + ``l2 / (2 n)`` ||w||² (intercept free),
    scikit-learn's ``LogisticRegression(C=1/l2)``; against its "newton-cholesky" solver, at equal
    AUC, one fit takes 0.5× the time on 10,000 rows and 0.06× on 1,300 (the class slices' folds)
    (``benchmarks/lr_solver.py``, ``docs/lr-solver.md``).
    """

    def __init__(self, l2: float = 1.0, max_iter: int = 50, tol: float = 1e-8) -> None:
        self.l2, self.max_iter, self.tol = l2, max_iter, tol
        self.classes_ = np.array([False, True])

    def fit(self, features: np.ndarray, membership: np.ndarray) -> NewtonLogisticRegression:
        """Fit on ``features`` (n, d) and boolean ``membership`` (n,)."""
        design = np.hstack([features, np.ones((len(features), 1))])
        target = membership.astype(np.float64)
        penalty = np.full(design.shape[1], self.l2 / len(design))
        penalty[-1] = 0.0
        weights = np.zeros(design.shape[1])
        for _ in range(self.max_iter):
            prob = _sigmoid(design @ weights)
            gradient = design.T @ (prob - target) / len(design) + penalty * weights
            curvature = np.maximum(prob * (1 - prob), 1e-10)
            hessian = (design.T * curvature) @ design / len(design) + np.diag(penalty + 1e-10)
            step = np.linalg.solve(hessian, gradient)
            weights -= step
            if np.max(np.abs(step)) < self.tol:
                break
        self.coef_, self.intercept_ = weights[:-1], weights[-1]
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, 2) probabilities of non-member and member."""
        member = _sigmoid(features @ self.coef_ + self.intercept_)
        return np.column_stack([1 - member, member])


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))


def _logistic_regression(seed: int, options: Mapping[str, Any]) -> Any:
    return NewtonLogisticRegression(l2=float(options["l2"]))


def _mlp(seed: int, options: Mapping[str, Any]) -> Any:
    from sklearn.neural_network import MLPClassifier

    # Early stopping judges on a 10% validation split: on small slices that is a few dozen
    # examples, and with patience 5 at step 1e-3 it stopped some fits before they learnt
    # anything (loss-only, 400 examples: AUC 0.28-0.72 over 20 seeds). Patience 10 at 3e-3
    # gave 0.69-0.72 there.
    return MLPClassifier(hidden_layer_sizes=layer_sizes("mlp", options["hidden_layer_sizes"]),
                         alpha=1e-3, batch_size="auto",
                         learning_rate_init=3e-3, max_iter=60, early_stopping=True,
                         n_iter_no_change=10, random_state=seed)


def _random_forest(seed: int, options: Mapping[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=int(options["n_estimators"]), max_depth=8,
                                  min_samples_leaf=10, max_features="sqrt", n_jobs=1,
                                  random_state=seed)


def _knn(seed: int, options: Mapping[str, Any]) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=int(options["n_neighbors"]),
                                algorithm="kd_tree")


def _option_check(attack: str, defaults: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], None]:
    """Check a trained attack's options (merged over ``defaults``) before any fit."""

    def check(options: Mapping[str, Any]) -> None:
        check_option_names(attack, options, defaults)
        check_int_option(attack, options, "n_folds", 2)
        check_int_option(attack, options, "max_train_per_side", 1)
        if "l2" in options:
            check_number_option(attack, options, "l2", at_least=0.0)
        for key in ("n_estimators", "n_neighbors"):
            if key in options:
                check_int_option(attack, options, key, 1)
        if "hidden_layer_sizes" in options:
            layer_sizes(attack, options["hidden_layer_sizes"])

    return check


def _trained(name: str, description: str, make_model: Callable[[int, Mapping[str, Any]], Any],
             fold_dependence: tuple[tuple[float, float], ...], **defaults: Any) -> Attack:
    options = {"n_folds": 3, "max_train_per_side": 5000, **defaults}
    return Attack(name, description, "logits/probs (or loss)", attack_features,
                  _scorer(make_model), min_per_side=3, defaults=options,
                  check_options=_option_check(name, options), fold_dependence=fold_dependence)


# fold_dependence: (training examples per side, the correlation of two folds' AUCs under H0
# relative to a linear attacker's), from the spread of pooled AUCs on no-signal codelab-like
# outputs (benchmarks/chance_bands.py --calibrate; null_reference explains the model).
TRAINED_ATTACKS = (
    _trained("lr", "logistic regression on output features", _logistic_regression,
             ((67, 0.82), (2000, 1.0)), l2=1.0),
    _trained("mlp", "multi-layer perceptron on output features", _mlp,
             ((67, 0.23), (200, 0.29), (667, 0.61)),
             max_train_per_side=3000, hidden_layer_sizes=(64, 32)),
    _trained("rf", "random forest on output features", _random_forest,
             ((67, 0.70), (2000, 0.72)), max_train_per_side=3000, n_estimators=50),
    _trained("knn", "k-nearest neighbours on output features", _knn,
             ((67, 0.55), (2000, 0.67)), max_train_per_side=2000, n_neighbors=25),
)


def fit_attack_model(name: str, features: np.ndarray, membership: np.ndarray, *,
                     seed: int = 0, options: Mapping[str, Any] | None = None
                     ) -> Callable[[np.ndarray], np.ndarray]:
    """Fit the model of trained attack ``name`` once on ``features`` (n, d) and boolean
    ``membership`` (n,), standardised as in the attack; returns P(member) of new rows.

    For code that trains an attacker itself (TF Privacy's ``models`` API); the attacks fit
    one such model per cross-validation fold.
    """
    attack = {a.name: a for a in TRAINED_ATTACKS}.get(name)
    if attack is None:
        raise InputError(f"{name!r} is not a trained attack; those are "
                         f"{', '.join(a.name for a in TRAINED_ATTACKS)}")
    merged = attack.validate_options(options or {})
    scaler = _Standardizer(features)
    model = _MODELS[name](seed, merged).fit(
        scaler.standardised(np.array(features, dtype=np.float64)), membership)
    member_column = list(model.classes_).index(True)

    def predict(rows: np.ndarray) -> np.ndarray:
        standardised = scaler.standardised(np.array(rows, dtype=np.float64))
        return np.asarray(model.predict_proba(standardised)[:, member_column])

    return predict


_MODELS = {"lr": _logistic_regression, "mlp": _mlp, "rf": _random_forest, "knn": _knn}
