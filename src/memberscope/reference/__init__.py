"""Reference (shadow) models: training them at scale, locally or on Ray.

Their outputs, ``ReferenceOutputs``, are core data and live in :mod:`memberscope.outputs`.
Training (torch) and executors (process pool, Ray) live in :mod:`memberscope.reference.training`
and :mod:`memberscope.reference.executors` and import their frameworks lazily.
"""
