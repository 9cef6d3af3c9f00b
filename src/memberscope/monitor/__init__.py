"""Audit a model every ``epochs_per_report`` epochs while it trains.

:mod:`memberscope.monitor.core` holds the framework-agnostic ``PrivacyMonitor``; each framework's
thin adapter lives in its own module, imported only when asked for, so
``import memberscope.monitor`` pulls in no framework:

- :mod:`memberscope.monitor.torch` — ``TorchMonitorHook`` for a hand-written PyTorch loop.
- :mod:`memberscope.monitor.keras` — ``PrivacyMetrics``, a Keras 3 callback (any backend),
  a drop-in for the TF Privacy codelab's callback (``pip install 'memberscope[keras]'``).
- :mod:`memberscope.monitor.lightning` — ``PrivacyMonitorCallback`` for Lightning
  (``pip install 'memberscope[lightning]'``).
- :mod:`memberscope.monitor.keras_backend` — which Keras backend would load, and choosing an
  installed one before keras is imported.
"""
