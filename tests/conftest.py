"""Suite-wide test settings.

Hypothesis runs derandomized under CI (the ``CI`` environment variable is set there): the same
examples on every machine and every run, so a red CI means a real regression, never a lucky draw.
Locally it explores new examples each run; ``HYPOTHESIS_PROFILE=ci`` reproduces CI.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
