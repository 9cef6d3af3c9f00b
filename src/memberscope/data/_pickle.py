"""A restricted unpickler for the CIFAR-10 python batches: plain data and uint8 arrays only.

The official batch files are Python 2 pickles (protocol 2) of dicts whose keys are byte
strings and whose values are byte strings, lists of ints or byte strings, and numpy uint8
arrays. Such a pickle references exactly three globals, all for array reconstruction::

    numpy.core.multiarray._reconstruct   builds an empty array, filled by __setstate__
    numpy.ndarray                        the class passed to _reconstruct
    numpy.dtype                          called as dtype('u1', 0, 1), then __setstate__

Everything else is refused in ``find_class`` before it is imported, so a hostile pickle
(``os.system``, ``builtins.eval`` …) is never executed. The three admitted globals are
wrapped to accept only what numpy itself writes: ``_reconstruct(ndarray, (0,), b'b')`` and
``dtype('u1', 0, 1)``. After loading, the object graph is walked and anything but dicts,
lists, tuples, bytes, str, int, bool, None and uint8 arrays is refused.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from memberscope.errors import InputError

_ALLOWED_DTYPE_CODES = frozenset({"u1", b"u1"})
_PLAIN_TYPES = (bytes, str, int, bool, type(None))


def _reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` limited to the empty plain array numpy pickles start from."""
    if subtype is not np.ndarray:
        raise InputError(f"array reconstruction of {subtype!r} refused; only numpy.ndarray")
    if tuple(shape) != (0,):
        raise InputError(f"array reconstruction with shape {shape!r} refused; expected (0,)")
    return np.ndarray.__new__(np.ndarray, (0,), np.uint8)


def _dtype(code: Any, align: Any = 0, copy: Any = 1) -> np.dtype:
    """``numpy.dtype`` limited to unsigned bytes, the only dtype of the CIFAR-10 arrays."""
    if code not in _ALLOWED_DTYPE_CODES:
        raise InputError(f"dtype {code!r} refused; only 'u1' (uint8) arrays are allowed")
    # Always a fresh copy: BUILD then calls __setstate__ on it, which must never touch numpy's
    # shared uint8 descriptor, whatever ``copy`` the pickle asks for.
    return np.dtype("u1", align=bool(align), copy=True)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only numpy uint8 array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS)
            raise InputError(
                f"refusing to load global {module}.{name}: only {allowed} are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: the official files have none."""
        raise InputError("refusing a pickle with persistent ids")


def restricted_loads(data: bytes, *, source: str) -> Any:
    """Unpickle ``data`` (a Python 2 pickle, byte strings kept as bytes) with no code execution.

    Parameters
    ----------
    data : bytes
        The pickle.
    source : str
        Where it came from, for error messages.

    Raises
    ------
    InputError
        The pickle references anything but plain data and uint8 arrays, or is malformed.
    """
    try:
        loaded = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    except Exception as exc:  # malformed pickles raise many kinds of error
        raise InputError(f"{source} is not a valid pickle: {type(exc).__name__}: {exc}") from exc
    _check_plain(loaded, source)
    return loaded


def _check_plain(value: Any, source: str) -> None:
    """Refuse anything in ``value`` but plain containers, scalars and plain uint8 arrays."""
    stack = [value]
    seen: set[int] = set()  # memo references can make cycles
    while stack:
        item = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, np.ndarray):
            if type(item) is not np.ndarray or item.dtype != np.uint8 or item.dtype.fields:
                raise InputError(f"{source} holds an array of dtype {item.dtype}; expected uint8")
        elif not isinstance(item, _PLAIN_TYPES):
            raise InputError(f"{source} holds a {type(item).__name__}; expected plain data")
