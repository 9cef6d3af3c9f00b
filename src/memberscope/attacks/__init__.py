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


__all__ = ["Attack", "AttackWarning", "SliceScores", "attack_features", "get_attack",
           "list_attacks",
           "register_attack"]
