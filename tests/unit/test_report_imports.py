"""``import memberscope`` stays light: no report module, no matplotlib, no jinja2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
SCRIPT = """
import json, sys
import memberscope
first = sorted(sys.modules)
import memberscope.report
from memberscope.cli import build_parser
build_parser()
print(json.dumps([first, sorted(sys.modules)]))
"""


def test_import_memberscope_does_not_import_report_or_matplotlib():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    after_core, after_cli = (set(m) for m in json.loads(out.stdout))
    assert "memberscope" in after_core
    assert not {m for m in after_core if m.startswith(("memberscope.report", "matplotlib"))}
    # The report package itself and the CLI's parser (with `report`) stay light too.
    assert "memberscope.report" in after_cli and "memberscope.cli.report" in after_cli
    assert not {m for m in after_cli if m.startswith(("matplotlib", "jinja2"))}
    assert "memberscope.report.html" not in after_cli
