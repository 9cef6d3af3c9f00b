"""Both TF Privacy codelabs' code runs on ``memberscope.compat.tf_privacy`` (Keras 3 on TensorFlow).

Runs ``examples/codelab_tf_privacy_compat.py`` (the codelab with only the TF Privacy import
prefix replaced, and padded Fashion-MNIST instead of CIFAR-10) on a few hundred examples, in a
subprocess so that TensorFlow's Keras backend cannot clash with the torch-backend Keras tests.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memberscope.data._fashion_mnist import DEBIAN_DIR

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "codelab_tf_privacy_compat.py"

pytestmark = [
    pytest.mark.keras,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                       reason="needs tensorflow (>= 2.16, Keras 3); not a memberscope extra"),
    pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                       reason="needs matplotlib (the report extra)"),
    pytest.mark.skipif(not (Path(DEBIAN_DIR) / "train-images-idx3-ubyte.gz").is_file(),
                       reason="needs Debian's dataset-fashion-mnist package"),
]


def test_codelab_code_runs_and_draws_both_figures(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--train-size", "500", "--test-size", "250",
         "--epochs", "2", "--epochs-per-report", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("Running privacy report for epoch") == 4  # 2 models × 2 epochs
    table = [line.split() for line in out.stdout.splitlines()
             if line.startswith(("2 Layers", "3 Layers"))]
    assert len(table) == 8  # 2 models × 2 reports × 2 attacks, entire dataset
    assert {row[4] for row in table} == {"THRESHOLD_ATTACK", "LOGISTIC_REGRESSION"}
    for row in table:
        assert 0.0 <= float(row[5]) <= 1.0  # AUC
    assert "Best-performing attacks over slice" in out.stdout  # the MIA codelab's summary
    for name in ("epoch_plot.png", "privacy_vs_accuracy.png", "roc_curve.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
