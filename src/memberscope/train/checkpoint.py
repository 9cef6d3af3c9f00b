"""Checkpoints: a trainer's state plus the config fingerprint, written atomically.

Saved with ``torch.save`` into memory and then through :func:`memberscope._io.atomic_write_bytes`
(temp file, fsync, rename), so a crash or a full disk leaves the previous checkpoint whole.
Loaded with ``torch.load(weights_only=True)``: only tensors and plain containers, never pickled
objects; the accountant's history is stored as plain lists.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from memberscope._io import atomic_write_bytes
from memberscope.errors import InputError, SchemaError

CHECKPOINT_SCHEMA_VERSION = 1


class CheckpointMismatchError(InputError):
    """A checkpoint was written by another config or another model variant."""


def save_checkpoint(path: str | Path, trainer_state: dict[str, Any], *, fingerprint: str,
                    label: str, finished: bool = False) -> Path:
    """Write ``trainer_state`` (from ``Trainer.state_dict()``) to ``path`` atomically."""
    import torch

    document = {"schema_version": CHECKPOINT_SCHEMA_VERSION, "fingerprint": fingerprint,
                "label": label, "finished": finished, "trainer": trainer_state}
    buffer = io.BytesIO()
    torch.save(document, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path, *, fingerprint: str, label: str) -> dict[str, Any]:
    """Read a checkpoint, refusing one from another config (``fingerprint``) or variant.

    Returns the document: ``trainer`` (for ``Trainer.load_state_dict``), ``finished``, ….
    """
    import pickle

    import torch

    path = Path(path)
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise SchemaError(f"checkpoint {path} cannot be read safely: {exc}") from exc
    if not isinstance(document, dict) or "schema_version" not in document:
        raise SchemaError(f"checkpoint {path} is not a memberscope checkpoint")
    if document["schema_version"] != CHECKPOINT_SCHEMA_VERSION:
        raise SchemaError(f"checkpoint {path} has schema_version {document['schema_version']}; "
                          f"this version reads {CHECKPOINT_SCHEMA_VERSION}")
    if document.get("fingerprint") != fingerprint:
        raise CheckpointMismatchError(
            f"checkpoint {path} was written by another config (fingerprint "
            f"{str(document.get('fingerprint'))[:12]}…, this config {fingerprint[:12]}…); "
            "resume with the config the run was started with, or start a new run directory")
    if document.get("label") != label:
        raise CheckpointMismatchError(f"checkpoint {path} belongs to variant "
                                      f"{document.get('label')!r}, not {label!r}")
    return document
