"""The one exception hierarchy of memberscope.

Every error subclasses a builtin, so a plain ``except ValueError`` still works::

    MemberscopeError (Exception)
    ├── InputError (ValueError)            bad arrays, shapes, values, files
    │   ├── UnknownNameError               an attack/slice/executor name that does not exist
    │   └── SchemaError                    a saved file of another schema or a corrupt one
    ├── ConfigError (ValueError)           every problem of a config, reported at once
    ├── DownloadError (OSError)            a dataset download failed (network, HTTP status)
    │   └── ChecksumError                  a downloaded or cached file has the wrong digest
    └── MissingExtraError (ImportError)    an optional dependency is not installed
        └── MissingBackendError            it is, but cannot run without its own backend
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class MemberscopeError(Exception):
    """Base class of every error memberscope raises on purpose."""


class InputError(MemberscopeError, ValueError):
    """An argument or input file holds something memberscope cannot use."""


class UnknownNameError(InputError):
    """A registry lookup by name failed; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(valid)
        super().__init__(unknown_name_message(kind, name, valid))


class SchemaError(InputError):
    """A saved file is not of a schema this version can read."""


class ConfigError(MemberscopeError, ValueError):
    """A config holds one or more problems; ``problems`` lists each with its dotted path."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n  ".join(self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in config:\n  {lines}")


class DownloadError(MemberscopeError, OSError):
    """A download could not be completed; a partial file is kept only for resuming."""


class ChecksumError(DownloadError):
    """A file's digest differs from the published one; it is renamed aside, never deleted."""


class MissingExtraError(MemberscopeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{module}' package: pip install 'memberscope[{extra}]'"
        )


class MissingBackendError(MissingExtraError):
    """An optional dependency is installed but cannot load its backend (Keras without
    TensorFlow, JAX or torch); the message names the backend and how to choose another."""

    def __init__(self, message: str) -> None:
        super(MissingExtraError, self).__init__(message)


def unknown_name_message(kind: str, name: str, valid: Sequence[str]) -> str:
    """Say that ``name`` is not a valid ``kind``, suggest the closest and list all valid names."""
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}"


def require(module: str, extra: str, feature: str) -> object:
    """Import an optional module or raise :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, feature) from exc
