"""Thin framework callbacks over :class:`memberscope.train.monitor.PrivacyMonitor`.

Each framework lives in its own module, imported only when asked for, so
``import memberscope.integrations`` pulls in no framework:

- :mod:`memberscope.integrations.keras` — ``PrivacyMetrics``, a Keras 3 callback (any backend),
  a drop-in for the TF Privacy codelab's callback (``pip install 'memberscope[keras]'``).
- :mod:`memberscope.integrations.lightning` — ``PrivacyMonitorCallback`` for Lightning
  (``pip install 'memberscope[lightning]'``).
"""
