"""One seeding scheme for everything random in memberscope: named streams of a base seed.

An experiment has one ``seed``; every random choice draws from its own *stream*, named by a
path of keys under that seed: ``("model", "2 layers")`` for a variant's initial weights,
``(slice, attack)`` for one audit row, ``(j,)`` for reference model j. The stream of
``(seed, *keys)`` is ``numpy.random.SeedSequence([seed, *keys])``, with each string key
replaced by the first 8 bytes of its UTF-8 SHA-256 (little-endian) so that names work as
keys. So:

* streams are independent of one another, whatever their number or the order they are used
  in, and equal on every platform and Python version;
* adding a stream changes no other stream;
* ``numpy.random.default_rng([seed, j])``, the scheme reference training always used, *is*
  the stream ``(j,)``, so reference models, their splits and their cache keys are unchanged.

:func:`stream_seed` gives an integer (for torch, scikit-learn or a nested base seed),
:func:`stream_rng` a numpy ``Generator``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from memberscope.errors import InputError

Key = int | str


def _entropy(seed: int, keys: tuple[Key, ...]) -> list[int]:
    values = []
    for position, value in enumerate((seed, *keys)):
        if isinstance(value, str):
            values.append(int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:8],
                                         "little"))
        elif isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
            values.append(int(value))
        else:
            what = "seed" if position == 0 else f"key {position}"
            raise InputError(f"{what} of a random stream must be a non-negative int"
                             f"{'' if position == 0 else ' or a str'}; got {value!r}")
    return values


def stream_sequence(seed: int, *keys: Key) -> np.random.SeedSequence:
    """The ``SeedSequence`` of the stream named ``keys`` under ``seed``."""
    return np.random.SeedSequence(_entropy(seed, keys))


def stream_seed(seed: int, *keys: Key) -> int:
    """A seed in [0, 2**32) for the stream named ``keys`` under ``seed``.

    >>> stream_seed(0, "model", "2 layers") == stream_seed(0, "model", "2 layers")
    True
    """
    return int(stream_sequence(seed, *keys).generate_state(1)[0])


def stream_rng(seed: int, *keys: Key) -> np.random.Generator:
    """A numpy ``Generator`` drawing the stream named ``keys`` under ``seed``."""
    return np.random.default_rng(stream_sequence(seed, *keys))
