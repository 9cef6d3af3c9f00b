"""Keep torch's global random state as it was while the monitor runs inference.

Iterating a DataLoader draws its base seed from torch's global generator (unless the loader
has its own), and a module may draw random numbers in its forward; either would change the
training that follows (measured: final accuracy 0.850 without the monitor, 0.845 with it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def torch_rng_untouched(device: Any = "cpu") -> Iterator[None]:
    """Run the block with torch's CPU generator (and ``device``'s, for a CUDA device) saved
    before and restored after."""
    import torch

    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        yield
