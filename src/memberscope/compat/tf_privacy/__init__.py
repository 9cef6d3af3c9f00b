"""TF Privacy's membership-inference API, computed by memberscope.

Code written for ``tensorflow_privacy.privacy.privacy_tests.membership_inference_attack``
runs with only that import prefix replaced by ``memberscope.compat.tf_privacy``::

    from memberscope.compat.tf_privacy import membership_inference_attack as mia
    from memberscope.compat.tf_privacy.data_structures import AttackInputData, SlicingSpec
    from memberscope.compat.tf_privacy import privacy_report

The submodules mirror TF Privacy's: ``membership_inference_attack`` (``run_attacks``),
``data_structures`` (inputs, specs, results) and ``privacy_report`` (the two figures).
Every number comes from :func:`memberscope.audit`, so memberscope's definitions hold where
they deliberately differ from TF Privacy (exact losses, PPV, advantage, a valid ε bound);
``docs/migrating-from-tf-privacy.md`` lists them. Each result keeps its memberscope row
(``SingleAttackResult.row``) and audit (``AttackResults.audit_result``) for everything
TF Privacy does not report: TPR at low FPR, the ε lower bound, skipped slices with reasons.
"""

__all__ = ["data_structures", "membership_inference_attack", "privacy_report"]
