"""Seeded index helpers: a stratified train/test split and a balanced member sample."""

from __future__ import annotations

import numpy as np

from memberscope._validation import as_label_array, check_probability
from memberscope.errors import InputError


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into train and test, the same fraction of every class in test.

    Parameters
    ----------
    labels : array of int, shape (n,)
        Class label of each example.
    test_fraction : float
        Fraction of each class put in the test split, in (0, 1); rounded per class.
    seed : int
        Seed of the permutation; the same seed gives the same split on every platform.

    Returns
    -------
    train, test : ndarray of int64
        Sorted, disjoint indices covering ``range(n)``.

    >>> train, test = stratified_split(np.array([0, 0, 1, 1]), 0.5, seed=0)
    >>> sorted(np.r_[train, test].tolist())
    [0, 1, 2, 3]
    """
    labels = as_label_array("labels", labels)
    fraction = check_probability("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    test_parts = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_test = round(fraction * len(members))
        test_parts.append(rng.permutation(members)[:n_test])
    test = np.sort(np.concatenate(test_parts)).astype(np.int64)
    in_test = np.zeros(len(labels), dtype=bool)
    in_test[test] = True
    train = np.flatnonzero(~in_test).astype(np.int64)
    if len(train) == 0 or len(test) == 0:
        raise InputError(
            f"test_fraction={fraction} leaves {len(train)} train and {len(test)} test examples "
            f"of {len(labels)}; both need at least one"
        )
    return train, test


def balanced_member_sample(n_members: int, n_nonmembers: int, seed: int = 0) -> np.ndarray:
    """Pick a fixed random subset of members as large as the non-members, for audits.

    Auditing ``min(n_members, n_nonmembers)`` members against the non-members balances the
    attack's prior and, with a fixed seed, audits the same members at every epoch.

    Parameters
    ----------
    n_members : int
        Number of members (training examples) available.
    n_nonmembers : int
        Number of non-members the audit uses.
    seed : int
        Seed of the choice.

    Returns
    -------
    ndarray of int64, shape (min(n_members, n_nonmembers),)
        Sorted indices into the members.

    >>> balanced_member_sample(6, 2, seed=0).shape
    (2,)
    """
    for name, value in (("n_members", n_members), ("n_nonmembers", n_nonmembers)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}")
    size = min(int(n_members), int(n_nonmembers))
    chosen = np.random.default_rng(seed).choice(int(n_members), size=size, replace=False)
    return np.sort(chosen).astype(np.int64)
