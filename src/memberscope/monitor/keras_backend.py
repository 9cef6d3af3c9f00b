"""Which Keras 3 backend would run, and choosing an installed one — without importing keras.

Keras picks its backend when first imported: ``KERAS_BACKEND``, else the ``backend`` of
``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``; Keras writes "tensorflow" there on its
first import), else TensorFlow. With that backend missing, ``import keras`` fails with
"No module named 'tensorflow'" deep inside Keras; these helpers say so plainly and let a script
pick a backend that is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

# Keras 3 backends, in the order a script should prefer them, and the module each needs.
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def keras_config_path() -> Path:
    """Where Keras reads its ``keras.json``."""
    home = os.environ.get("KERAS_HOME")
    if home:
        return Path(home) / "keras.json"
    base = Path.home() if os.access(Path.home(), os.W_OK) else Path("/tmp")
    return base / ".keras" / "keras.json"


def configured_backend() -> tuple[str, str]:
    """The backend Keras would use, and where that choice comes from (for messages)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "the KERAS_BACKEND environment variable"
    path = keras_config_path()
    try:
        backend = json.loads(path.read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    if isinstance(backend, str) and backend:
        return backend, str(path)
    return "tensorflow", "Keras' default"


def installed_backends() -> list[str]:
    """The Keras backends whose package is installed, in preference order."""
    return [name for name, module in BACKEND_MODULES.items()
            if importlib.util.find_spec(module) is not None]


def choose_keras_backend() -> str:
    """Set ``KERAS_BACKEND`` to an installed backend unless the configured one is installed.

    Call before anything imports keras. ``KERAS_BACKEND``, when set, is always honoured.
    Returns the backend Keras will use.
    """
    backend, source = configured_backend()
    if source == "the KERAS_BACKEND environment variable":
        return backend
    installed = installed_backends()
    if backend in installed or not installed:
        return backend
    os.environ["KERAS_BACKEND"] = installed[0]
    return installed[0]


def backend_problem(error: BaseException) -> str:
    """A message for ``import keras`` failing with ``error`` although keras is installed."""
    backend, source = configured_backend()
    installed = installed_backends()
    advice = (f"set KERAS_BACKEND to an installed one ({', '.join(installed)})" if installed
              else "install one: pip install torch (or jax, or tensorflow)")
    return (f"Keras is installed but its backend {backend!r} (from {source}) cannot be "
            f"loaded: {type(error).__name__}: {error}. Install {backend!r} or {advice}")
