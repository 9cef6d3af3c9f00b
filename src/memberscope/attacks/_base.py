"""What an attack is: a per-example signal, and optionally a per-slice scoring step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.errors import InputError
from memberscope.null_reference import FoldPooling
from memberscope.outputs import ModelOutputs
from memberscope.significance import RankedScores


@dataclass(frozen=True)
class SliceScores:
    """One slice's attack scores (n,) and, where they are exchangeable under H0 only within
    groups, those groups: ``strata`` (n,) int, e.g. the cross-validation fold that scored each
    example (fold models differ, so scores of different folds are not comparable under H0).
    ``ranked``, where the scorer sorted each stratum's scores anyway: {stratum: those scores
    (in example order), ranked}, so the tests that need them ranked do not sort again."""

    scores: np.ndarray
    strata: np.ndarray | None = None
    ranked: Mapping[int, RankedScores] | None = None


SignalFunction = Callable[[ModelOutputs, Any, Mapping[str, Any]], np.ndarray]
SliceScorer = Callable[[np.ndarray, np.ndarray, int, Mapping[str, Any]],
                       "np.ndarray | SliceScores"]
OptionCheck = Callable[[Mapping[str, Any]], None]


class AttackWarning(UserWarning):
    """An attack ran, but its scores need a caveat (e.g. a variance it could not estimate).

    ``audit`` records each one in ``AuditResult.notes`` (and ``result.json``'s ``notes``)."""


@dataclass(frozen=True)
class Attack:
    """A membership inference attack; every attack's scores are "higher = more likely member".

    ``signal(outputs, reference, options)`` computes, once for all examples, either the final
    (n,) scores or an (n, d) feature matrix. When ``score_slice`` is set, it turns the signal
    rows and membership of one slice into (n_slice,) scores — trained attacks fit their model
    here, on that slice only, with ``seed`` — or a :class:`SliceScores` naming the strata
    within which alone the scores are exchangeable under H0 (a scorer that fits several models
    must, or its p-values are not valid). ``check_options`` checks the options merged over
    ``defaults`` before any work, raising :class:`InputError` naming the attack and option.
    ``reference_models`` says how many reference models the attack needs, per mode.
    ``fold_dependence``, for an attack that pools the scores of several fold models (its
    options then hold ``n_folds`` and ``max_train_per_side``): how strongly its folds' AUCs
    are correlated under H0, relative to a linear attacker's, as (training examples per
    side, dependence) points measured at several sizes (:class:`FoldPooling`); None for
    scores exchangeable under H0.
    """

    name: str
    description: str
    needs: str
    signal: SignalFunction
    score_slice: SliceScorer | None = None
    needs_reference: bool = False
    min_per_side: int = 1
    defaults: Mapping[str, Any] = field(default_factory=dict)
    check_options: OptionCheck | None = None
    reference_models: str = ""
    fold_dependence: tuple[tuple[float, float], ...] | None = None

    def null_pooling(self, options: Mapping[str, Any] | None = None) -> FoldPooling | None:
        """How this attack's scores pool fold models under ``options`` (merged over the
        defaults), for its spread under H0; None when its scores are exchangeable."""
        if self.fold_dependence is None:
            return None
        merged = {**self.defaults, **(options or {})}
        return FoldPooling(int(merged["n_folds"]), int(merged["max_train_per_side"]),
                           self.fold_dependence)

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` merged over the defaults, checked before any work is done."""
        merged = {**self.defaults, **options}
        if self.check_options is not None:
            self.check_options(merged)
        return merged

    def scores_for_slice(self, signal: np.ndarray, membership: np.ndarray, seed: int,
                         options: Mapping[str, Any]) -> SliceScores:
        """Scores (n_slice,) of one slice from its rows of ``signal``, with their strata."""
        if self.score_slice is None:
            return SliceScores(signal)
        scored = self.score_slice(signal, membership, seed, {**self.defaults, **options})
        return scored if isinstance(scored, SliceScores) else SliceScores(np.asarray(scored))


def check_option_names(attack: str, options: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Raise naming the attack when ``options`` holds a key not in ``valid``."""
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InputError(f"{attack}: unknown option(s) {unknown}; valid: {sorted(valid)}")


def check_int_option(attack: str, options: Mapping[str, Any], key: str, minimum: int) -> None:
    """Raise unless ``options[key]`` is an integer >= ``minimum``."""
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{attack}: option {key!r} must be an integer >= {minimum}; "
                         f"got {value!r}")


def check_number_option(attack: str, options: Mapping[str, Any], key: str, *,
                        above: float | None = None, at_least: float | None = None) -> None:
    """Raise unless ``options[key]`` is a finite number > ``above`` / >= ``at_least``."""
    value = options[key]
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.number) and bool(
        np.isfinite(value))
    if ok and above is not None:
        ok = value > above
    if ok and at_least is not None:
        ok = value >= at_least
    if not ok:
        bound = f"> {above:g}" if above is not None else f">= {at_least:g}"
        raise InputError(f"{attack}: option {key!r} must be a number {bound}; got {value!r}")

