"""Drop-in layers for code written against other membership-inference libraries.

``memberscope.compat.tf_privacy`` mirrors TensorFlow Privacy's membership-inference API
(``run_attacks``, ``AttackInputData``, ``SlicingSpec``, the privacy-report plots) over
:func:`memberscope.audit`. Nothing here is imported by ``import memberscope``.
"""
