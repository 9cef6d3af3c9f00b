"""TF Privacy's membership-inference API, computed by memberscope.

Code written for ``tensorflow_privacy.privacy.privacy_tests.membership_inference_attack``
runs with only that import prefix replaced by ``memberscope.compat.tf_privacy``::

    from memberscope.compat.tf_privacy import membership_inference_attack as mia
    from memberscope.compat.tf_privacy.data_structures import AttackInputData, SlicingSpec
    from memberscope.compat.tf_privacy import privacy_report

The submodules mirror TF Privacy's: ``membership_inference_attack`` (``run_attacks``),
``data_structures`` (inputs, specs, results), ``dataset_slicing``, ``models`` (trained
attackers), ``advanced_mia`` (LiRA and offset scores from shadow models), ``plotting`` and
``privacy_report`` (figures, matplotlib imported lazily), ``keras_evaluation`` (Keras 3, any
backend); ``utils`` and ``epsilon_lower_bound`` stand for the two modules of
``tensorflow_privacy.privacy.privacy_tests`` the API uses. Every number of ``run_attacks``
comes from :func:`memberscope.audit`, so memberscope's definitions hold where they
deliberately differ from TF Privacy (exact losses, PPV, advantage, a valid ε bound);
``docs/migrating-from-tf-privacy.md`` lists them. Each result keeps its memberscope row
(``SingleAttackResult.row``) and audit (``AttackResults.audit_result``) for everything
TF Privacy does not report: TPR at low FPR, p-values, skipped slices with reasons.
"""

__all__ = ["advanced_mia", "data_structures", "dataset_slicing", "epsilon_lower_bound",
           "keras_evaluation", "membership_inference_attack", "models", "plotting",
           "privacy_report", "utils"]
