"""Training with privacy monitoring. This package's ``__init__`` imports no framework:
``monitor`` is framework-agnostic; framework code lives in modules that import torch lazily."""
