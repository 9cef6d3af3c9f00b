"""The demo's digits fallback is the quickstart with digits-sized models."""

from __future__ import annotations

from memberscope.experiment.config import parse_toml
from memberscope.experiment.demo import digits_config, quickstart_text


def test_digits_fallback_config_is_valid_and_keeps_the_experiment() -> None:
    quickstart = parse_toml(quickstart_text())
    digits = parse_toml(digits_config(quickstart_text()))
    assert quickstart.dataset.name == "fashion_mnist" and digits.dataset.name == "digits"
    assert [v.label for v in digits.variants] == ["MLP", "1 layer", "1 layer, DP-Adam"]
    assert digits.variants[2].training.dp == quickstart.variants[2].training.dp
    assert digits.audit == quickstart.audit
    assert digits.epochs_per_report == quickstart.epochs_per_report
