"""``memberscope attacks``: list every registered attack and what it needs."""

from __future__ import annotations

import argparse
from typing import Any

from memberscope.cli._table import format_table


def register(subparsers: Any) -> None:
    """Add the ``attacks`` subcommand."""
    parser = subparsers.add_parser("attacks", help="list the available attacks")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print one line per attack: name, what it needs, description."""
    from memberscope.attacks import list_attacks

    rows = [(a.name, a.needs + (" + reference models" if a.needs_reference else ""),
             a.description) for a in list_attacks()]
    print(format_table(["attack", "needs", "description"], rows))
    minimums = [(a.name, a.reference_models) for a in list_attacks() if a.reference_models]
    if minimums:
        print("\nReference models needed, at least (trained on complementary halves, as "
              "`memberscope reference train` does):")
        for name, text in minimums:
            print(f"  {name}: {text}")
    print("\nEvery attack scores 'higher = more likely member'.")
    return 0
