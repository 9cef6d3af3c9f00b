"""The attack registry: every attack by name, higher score = more likely member.

Attacks are listed explicitly here (no registration by import side effect); users can add
their own with :func:`register_attack`.
"""

from __future__ import annotations

from memberscope.attacks._base import Attack, AttackWarning, SliceScores
from memberscope.attacks.blind import BLIND_ATTACK
from memberscope.attacks.reference import REFERENCE_ATTACKS
from memberscope.attacks.threshold import THRESHOLD_ATTACKS
from memberscope.attacks.trained import TRAINED_ATTACKS, attack_features
from memberscope.errors import InputError, UnknownNameError
from memberscope.null_reference import FoldPooling

_REGISTRY: dict[str, Attack] = {a.name: a for a in (*THRESHOLD_ATTACKS, *TRAINED_ATTACKS,
                                                *REFERENCE_ATTACKS, BLIND_ATTACK)}


def register_attack(attack: Attack, *, replace: bool = False) -> None:
    """Add ``attack`` to the registry under ``attack.name``."""
    if attack.name in _REGISTRY and not replace:
        raise InputError(f"an attack named {attack.name!r} is already registered; "
                         "pass replace=True to override it")
    _REGISTRY[attack.name] = attack


def get_attack(name: str) -> Attack:
    """The attack registered as ``name``; an unknown name lists the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("attack", name, list(_REGISTRY)) from None


def list_attacks() -> list[Attack]:
    """All registered attacks, in registry order."""
    return list(_REGISTRY.values())


def null_pooling(name: str) -> FoldPooling | None:
    """How the attack ``name`` pools fold models under its default options, for the spread
    of its results under H0 (:meth:`Attack.null_pooling`); None for an attack whose scores
    are exchangeable, and for a name not registered here (rows of files may name attacks
    this process does not know: they are taken as exchangeable)."""
    attack = _REGISTRY.get(name)
    return None if attack is None else attack.null_pooling()


__all__ = ["Attack", "AttackWarning", "SliceScores", "attack_features", "get_attack",
           "list_attacks", "null_pooling", "register_attack"]
