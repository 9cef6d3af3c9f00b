"""`memberscope demo` (what `make demo` runs), on its no-torch path: audit saved outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from memberscope.cli import main
from memberscope.experiment import demo


def _tiny_outputs(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, loss_train=rng.exponential(0.5, 200), loss_test=rng.exponential(1.0, 200),
             labels_train=rng.integers(0, 2, 200), labels_test=rng.integers(0, 2, 200))
    return path


def test_demo_without_torch_audits_saved_outputs(tmp_path, monkeypatch, capsys) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    monkeypatch.setattr(demo, "save_digits_outputs", _tiny_outputs)  # the real one trains an MLP
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert "torch is not installed" in capsys.readouterr().out
    rows = json.loads((tmp_path / "audit" / "result.json").read_text())["rows"]
    assert {r["attack"] for r in rows} == {"threshold", "lr"}
