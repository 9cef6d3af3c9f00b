"""Slices: named subsets of the examples on which every attack is evaluated separately.

Labels (a contract): ``entire_dataset``, ``class=K``, ``loss_percentile=A-B``,
``correctly_classified=True|False``, ``custom:NAME`` (a boolean mask) or ``custom:NAME=V``
(one slice per value of a group vector).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from memberscope.errors import InputError, UnknownNameError
from memberscope.outputs import ModelOutputs

SLICE_KINDS = ("entire", "class", "loss_percentile", "correctness", "custom")
_ALIASES = {"entire_dataset": "entire", "correctly_classified": "correctness",
            "loss": "loss_percentile", "classes": "class"}
LOSS_BUCKETS = 10


@dataclass(frozen=True, eq=False)
class Slice:
    """A named subset: ``mask`` (n,) bool selects its examples."""

    name: str
    mask: np.ndarray


@dataclass(frozen=True)
class UnavailableSlice:
    """A slice kind that cannot be built from these outputs, and why (recorded as skipped)."""

    name: str
    reason: str


def parse_slice_kinds(kinds: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise slice kinds given as ``"entire,class"`` or a list; unknown names raise."""
    items = kinds.split(",") if isinstance(kinds, str) else list(kinds)
    parsed = []
    for item in items:
        name = _ALIASES.get(item.strip(), item.strip())
        if name not in SLICE_KINDS:
            raise UnknownNameError("slice", item.strip(), SLICE_KINDS)
        if name not in parsed:
            parsed.append(name)
    if not parsed:
        raise InputError("slices is empty; give at least one of " + ", ".join(SLICE_KINDS))
    return tuple(parsed)


def build_slices(outputs: ModelOutputs, kinds: Sequence[str] = ("entire", "class"), *,
                 custom: Mapping[str, np.ndarray] | None = None,
                 loss_buckets: int = LOSS_BUCKETS) -> list[Slice | UnavailableSlice]:
    """Every slice of the requested kinds, in a stable order.

    ``custom`` maps NAME to a (n,) bool mask (one slice ``custom:NAME``) or to a (n,) vector
    of group values (one slice ``custom:NAME=V`` per value). Loss percentiles are over all
    examples, members and non-members together.
    """
    kinds = parse_slice_kinds(kinds)
    slices: list[Slice | UnavailableSlice] = []
    n = outputs.n
    for kind in kinds:
        if kind == "entire":
            slices.append(Slice("entire_dataset", np.ones(n, dtype=bool)))
        elif kind == "class":
            if outputs.labels is None:
                slices.append(UnavailableSlice(
                    "class", "needs labels; the outputs hold loss without labels"))
                continue
            for label in np.unique(outputs.labels):
                slices.append(Slice(f"class={int(label)}", outputs.labels == label))
        elif kind == "loss_percentile":
            slices.extend(_loss_slices(outputs.loss_values, loss_buckets))
        elif kind == "correctness":
            if not outputs.has_distribution:
                slices.append(UnavailableSlice(
                    "correctly_classified", "needs logits or probs; the outputs hold only loss"))
                continue
            for value in (True, False):
                slices.append(Slice(f"correctly_classified={value}", outputs.is_correct == value))
        elif kind == "custom" and not custom:
            raise InputError("slice kind 'custom' needs custom groups (custom={'name': mask})")
    for name, groups in (custom or {}).items():
        slices.extend(_custom_slices(name, groups, n))
    return slices


def _loss_slices(loss: np.ndarray, buckets: int) -> list[Slice]:
    step = 100 // buckets
    # Rank-based buckets so heavy ties cannot leave a bucket empty by construction.
    ranks = np.argsort(np.argsort(loss, kind="stable"), kind="stable")
    bucket = (ranks * buckets) // len(loss)
    return [Slice(f"loss_percentile={b * step}-{(b + 1) * step}", bucket == b)
            for b in range(buckets)]


def _custom_slices(name: str, groups: np.ndarray, n: int) -> list[Slice]:
    values = np.asarray(groups)
    if values.shape != (n,):
        raise InputError(f"custom slice {name!r} must have shape ({n},); got {values.shape}")
    if values.dtype == bool:
        return [Slice(f"custom:{name}", values)]
    if values.dtype == object:
        raise InputError(f"custom slice {name!r} has dtype object; use numbers or strings")
    return [Slice(f"custom:{name}={value}", values == value) for value in np.unique(values)]
