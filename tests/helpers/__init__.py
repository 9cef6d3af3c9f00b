"""Helpers shared by tests (and a benchmark), imported as ``tests.helpers.NAME``.

pytest puts the repository root on ``sys.path`` (``pythonpath`` in pyproject.toml); a benchmark
that uses them runs as ``python -m benchmarks.NAME`` from the root.

- ``data``: files in the official dataset formats and a local HTTP server.
- ``reference``: a numpy stand-in for the torch reference trainer.
- ``ray_trainers``: trainers the Ray tests ship to workers by value (no ``tests`` import there).
- ``report_synth``: synthetic audit results and run directories for the report tests.
"""
