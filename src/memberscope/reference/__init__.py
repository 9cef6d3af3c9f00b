"""Reference (shadow) models: their per-example outputs, and training them at scale.

``ReferenceOutputs`` (numpy only) is imported here; training (torch) and executors (process
pool, Ray) live in :mod:`memberscope.reference.training` and
:mod:`memberscope.reference.executors` and import their frameworks lazily.
"""

from memberscope.reference.outputs import (
    REFERENCE_SCHEMA_VERSION,
    ReferenceOutputs,
    load_reference_npz,
    true_class_signals,
)

__all__ = ["REFERENCE_SCHEMA_VERSION", "ReferenceOutputs", "load_reference_npz",
           "true_class_signals"]
