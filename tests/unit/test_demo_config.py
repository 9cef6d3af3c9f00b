"""The demo's digits fallback is the quickstart with digits-sized models."""

from __future__ import annotations

from pathlib import Path

import pytest

from memberscope.experiment.config import parse_toml
from memberscope.experiment.demo import digits_config, quickstart_text


def test_digits_fallback_config_is_valid_and_keeps_the_experiment() -> None:
    quickstart = parse_toml(quickstart_text())
    digits = parse_toml(digits_config(quickstart_text()))
    assert quickstart.dataset.name == "fashion_mnist" and digits.dataset.name == "digits"
    # digits' 899 training images cannot hold the quickstart's members and non-members; its
    # own test split is a stratified random half, as good a source of non-members
    assert quickstart.dataset.nonmembers == "train" and digits.dataset.nonmembers == "test"
    assert [v.label for v in digits.variants] == ["MLP", "1 layer", "1 layer, DP-Adam"]
    assert digits.variants[2].training.dp == quickstart.variants[2].training.dp
    assert digits.audit == quickstart.audit
    assert digits.epochs_per_report == quickstart.epochs_per_report


def test_demo_parses_its_arguments(monkeypatch, tmp_path, capsys) -> None:
    from memberscope.cli import demo
    from memberscope.cli import main as cli_main

    ran: list[Path] = []
    monkeypatch.setattr(demo, "handle", lambda args: ran.append(args.out) or 0)
    assert cli_main(["demo"]) == 0 and cli_main(["demo", "--out", str(tmp_path / "x")]) == 0
    assert ran == [Path("demo-out"), tmp_path / "x"]
    with pytest.raises(SystemExit) as caught:
        cli_main(["demo", "--help"])
    assert caught.value.code == 0 and "--out" in capsys.readouterr().out
    for argv in (["somewhere"], ["--out", "a", "b"], ["--outt", "a"]):
        with pytest.raises(SystemExit) as caught:
            cli_main(["demo", *argv])
        assert caught.value.code == 2
        capsys.readouterr()
    assert ran == [Path("demo-out"), tmp_path / "x"]
