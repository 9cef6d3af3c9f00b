"""A real tiny ``memberscope run`` on scikit-learn's digits, then ``memberscope report`` on its
run directory: the report shows the ROC curves and the most exposed examples of each
variant's last audit (what the runner writes is what the report reads)."""

from __future__ import annotations

import contextlib
import io
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")
pytest.importorskip("matplotlib")
pytest.importorskip("rich")

from memberscope import rundir
from memberscope.cli import main
from memberscope.report.plots import exposed_indices
from memberscope.results import GUARD_ATTACKS
from memberscope.store import load_results

pytestmark = pytest.mark.torch

CONFIG = """
name = "round trip"
seed = 3
[dataset]
name = "digits"
max_train = 240
max_test = 120
[training]
epochs = 2
epochs_per_report = 1
batch_size = 40
learning_rate = 0.01
threads = 1
[audit]
attacks = ["threshold", "lr"]
slices = ["entire"]
member_sample = "balanced"
[[variants]]
label = "mlp <small>"
model = "mlp"
hidden = [16]
[[variants]]
label = "mlp, wide"
model = "mlp"
hidden = [48]
"""
LABELS = ("mlp <small>", "mlp, wide")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("roundtrip")
    config = base / "tiny.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = base / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    (base / "printed.txt").write_text(printed.getvalue(), encoding="utf-8")
    (out / rundir.REPORT_FILE).unlink()  # the report below comes from `memberscope report`
    assert main(["report", str(out)]) == 0
    return out


def test_the_runner_writes_one_score_file_per_variant_and_audit(run_dir: Path) -> None:
    for label in LABELS:
        for epoch in (1, 2):
            audit = rundir.read_scores(rundir.scores_path(run_dir, label, epoch))
            assert (audit.model, audit.epoch) == (label, epoch)
            assert set(audit.scores) == {"threshold", "lr", "blind"}  # blind: the split check
            assert audit.membership.sum() == 120 and len(audit.membership) == 240
    assert [(a.model, a.epoch) for a in rundir.last_scores(run_dir)] == \
        [(label, 2) for label in sorted(LABELS)]


def test_run_prints_leakage_only_where_distinguishable_from_chance(run_dir: Path) -> None:
    """Each epoch line and the final summary name a worst *significant* AUC or say there is
    none; never the bare maximum over every row."""
    printed = (run_dir.parent / "printed.txt").read_text("utf-8")
    lines = [line for line in printed.splitlines() if "; audit: " in line or ": epoch 2, " in line]
    assert len(lines) == 2 * len(LABELS) + len(LABELS)
    null_aware = re.compile(r"worst significant AUC \d\.\d{3} \(|no leakage distinguishable "
                            r"from chance \(\d+ results tested[,)]")
    assert all(null_aware.search(line) for line in lines), lines
    # The variants' final lines are about the run: they say they count in its family.
    finals = [line for line in lines if ": epoch 2, " in line]
    assert all("over the run's" in line for line in finals), finals
    assert "max attack AUC" not in printed and "max AUC" not in printed


def test_report_shows_the_roc_curves_of_each_variants_last_audit(run_dir: Path) -> None:
    page = rundir.report_path(run_dir).read_text("utf-8")
    assert 'id="fig-roc"' in page
    assert rundir.figure_path(run_dir, "roc").is_file()
    rows = load_results(run_dir).rows
    for label in LABELS:
        last = [r for r in rows if r.metadata["model"] == label and r.metadata["epoch"] == 2
                and r.slice == "entire_dataset"]
        assert {r.attack for r in last if not r.measures_split} == {"threshold", "lr"}


def test_report_lists_the_most_exposed_members_of_each_variants_last_audit(
        run_dir: Path) -> None:
    page = rundir.report_path(run_dir).read_text("utf-8")
    table = page.split('id="exposed"')[1].split("</table>")[0]
    body = table.split("<tbody>")[1]
    cells = [[unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>.*?</td>", r)]
             for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]
    shown = {(c[0], c[1], c[2]): [] for c in cells}
    for c in cells:
        shown[c[0], c[1], c[2]].append(int(c[3]))
    for label in LABELS:
        audit = rundir.read_scores(rundir.scores_path(run_dir, label, 2))
        for attack, scores in audit.scores.items():
            if attack in GUARD_ATTACKS:
                # A split check ranks inputs, not what the model exposes.
                assert (label, "2", attack) not in shown
                continue
            top = exposed_indices(scores, audit.membership, k=10)
            expected = [int(audit.member_index[np.count_nonzero(audit.membership[:i])])
                        for i in top]
            assert shown[label, "2", attack] == expected
