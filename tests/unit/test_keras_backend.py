"""Choosing a Keras backend that is installed, without importing keras."""

from __future__ import annotations

import json
import os

import pytest

from memberscope.monitor import keras_backend


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    return tmp_path


def _installed(monkeypatch, *names):
    monkeypatch.setattr(keras_backend, "installed_backends",
                        lambda: [b for b in keras_backend.BACKEND_MODULES if b in names])


def test_the_environment_variable_is_always_honoured(keras_home, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    _installed(monkeypatch, "torch")
    assert keras_backend.choose_keras_backend() == "jax"
    assert os.environ["KERAS_BACKEND"] == "jax"


def test_tensorflow_is_kept_where_it_is_installed(keras_home, monkeypatch):
    _installed(monkeypatch, "tensorflow", "torch")
    assert keras_backend.choose_keras_backend() == "tensorflow"
    assert "KERAS_BACKEND" not in os.environ  # Keras' own default stands


def test_an_installed_backend_replaces_a_configured_missing_one(keras_home, monkeypatch):
    (keras_home / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    _installed(monkeypatch, "torch")
    assert keras_backend.configured_backend() == ("tensorflow", str(keras_home / "keras.json"))
    assert keras_backend.choose_keras_backend() == "torch"
    assert os.environ["KERAS_BACKEND"] == "torch"


def test_the_configured_backend_is_kept_when_installed(keras_home, monkeypatch):
    (keras_home / "keras.json").write_text(json.dumps({"backend": "jax"}))
    _installed(monkeypatch, "tensorflow", "jax")
    assert keras_backend.choose_keras_backend() == "jax"
    assert "KERAS_BACKEND" not in os.environ


def test_the_problem_message_names_backend_source_and_remedy(keras_home, monkeypatch):
    _installed(monkeypatch, "torch")
    message = keras_backend.backend_problem(ModuleNotFoundError("No module named 'tensorflow'"))
    assert message == ("Keras is installed but its backend 'tensorflow' (from Keras' default) "
                       "cannot be loaded: ModuleNotFoundError: No module named 'tensorflow'. "
                       "Install 'tensorflow' or set KERAS_BACKEND to an installed one (torch)")
