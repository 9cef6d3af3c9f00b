"""One seeding scheme: named streams of a base seed, stable and independent."""

from __future__ import annotations

import numpy as np
import pytest

from memberscope._seeding import stream_rng, stream_seed
from memberscope.errors import InputError
from memberscope.train.settings import TrainSettings


def test_streams_are_pinned_so_audit_seeds_stay_stable() -> None:
    # The seed of one audit row (slice, attack): changing it changes every published figure.
    assert stream_seed(0, "entire_dataset", "threshold") == 952056405
    assert stream_seed(0, "entire_dataset", "threshold") != stream_seed(0, "class=0", "threshold")
    assert stream_seed(0, "model", "2 layers") != stream_seed(1, "model", "2 layers")


def test_integer_streams_are_numpys_seed_sequences_of_seed_and_keys() -> None:
    # What reference training always used: its splits and model seeds did not change.
    state = np.random.SeedSequence([7, 3]).generate_state(1)[0]
    assert stream_seed(7, 3) == int(state)
    np.testing.assert_array_equal(stream_rng(7, 3).permutation(20),
                                  np.random.default_rng([7, 3]).permutation(20))
    np.testing.assert_array_equal(stream_rng(7).random(3), np.random.default_rng(7).random(3))


@pytest.mark.parametrize("keys, message", [
    ((-1,), "seed of a random stream must be a non-negative int; got -1"),
    ((0, 1.5), "key 1 of a random stream must be a non-negative int or a str; got 1.5"),
    ((0, True), "key 1 .* got True"),
])
def test_bad_seeds_and_keys_are_named(keys: tuple, message: str) -> None:
    with pytest.raises(InputError, match=message):
        stream_seed(*keys)


def test_train_settings_refuse_a_negative_seed() -> None:
    with pytest.raises(InputError, match=r"TrainSettings.seed: must be >= 0; got -1"):
        TrainSettings(epochs=1, seed=-1)
    assert TrainSettings(epochs=1, seed=np.int64(3)).seed == 3
