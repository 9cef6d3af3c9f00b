"""The ``memberscope`` command line: a thin layer over the library, ``main(argv) -> int``.

Each subcommand lives in its own module here with ``register(subparsers)``, which sets the
parser's ``handler(args) -> int``. Heavy imports happen inside handlers, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from memberscope.errors import MemberscopeError

COMMAND_MODULES = ("audit", "attacks", "run", "report", "risk", "reference", "demo")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NOTHING_MEASURED = 3  # `audit`: every requested attack was skipped on every slice;
# `risk`: no example has enough recorded epochs


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    from memberscope._version import __version__

    parser = argparse.ArgumentParser(
        prog="memberscope",
        description="Measure how much a model leaks membership of its training data.")
    parser.add_argument("--version", action="version", version=f"memberscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"memberscope.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input, 3 nothing measured)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except (MemberscopeError, ValueError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        print(f"memberscope {args.command}: error: {message}", file=sys.stderr)
        is_input = isinstance(exc, ValueError | FileNotFoundError | FileExistsError
                              | NotADirectoryError | IsADirectoryError)
        return EXIT_BAD_INPUT if is_input else EXIT_FAILURE


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
