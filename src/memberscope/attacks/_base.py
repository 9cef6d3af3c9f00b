"""What an attack is: a per-example signal, and optionally a per-slice scoring step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.outputs import ModelOutputs


@dataclass(frozen=True)
class SliceScores:
    """One slice's attack scores (n,) and, where they are exchangeable under H0 only within
    groups, those groups: ``strata`` (n,) int, e.g. the cross-validation fold that scored each
    example (fold models differ, so scores of different folds are not comparable under H0)."""

    scores: np.ndarray
    strata: np.ndarray | None = None


SignalFunction = Callable[[ModelOutputs, Any, Mapping[str, Any]], np.ndarray]
SliceScorer = Callable[[np.ndarray, np.ndarray, int, Mapping[str, Any]],
                       "np.ndarray | SliceScores"]


@dataclass(frozen=True)
class Attack:
    """A membership inference attack; every attack's scores are "higher = more likely member".

    ``signal(outputs, reference, options)`` computes, once for all examples, either the final
    (n,) scores or an (n, d) feature matrix. When ``score_slice`` is set, it turns the signal
    rows and membership of one slice into (n_slice,) scores — trained attacks fit their model
    here, on that slice only, with ``seed`` — or a :class:`SliceScores` naming the strata
    within which alone the scores are exchangeable under H0 (a scorer that fits several models
    must, or its p-values are not valid).
    """

    name: str
    description: str
    needs: str
    signal: SignalFunction
    score_slice: SliceScorer | None = None
    needs_reference: bool = False
    min_per_side: int = 1
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def scores_for_slice(self, signal: np.ndarray, membership: np.ndarray, seed: int,
                         options: Mapping[str, Any]) -> SliceScores:
        """Scores (n_slice,) of one slice from its rows of ``signal``, with their strata."""
        if self.score_slice is None:
            return SliceScores(signal)
        scored = self.score_slice(signal, membership, seed, {**self.defaults, **options})
        return scored if isinstance(scored, SliceScores) else SliceScores(np.asarray(scored))
