"""Figures of the report: each function returns axes holding the expected lines and labels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from tests.helpers import report_synth as synth

from memberscope.errors import InputError
from memberscope.report import plots
from memberscope.results import ResultsCollection
from memberscope.store import load_results


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ResultsCollection:
    run_dir = synth.write_synthetic_run(tmp_path_factory.mktemp("run") / "run",
                                        models=("small", "$big_1$"), epochs=(1, 2, 3, 4, 5),
                                        n_classes=10)
    return load_results(run_dir)


def _labelled_lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def _fresh_axes():
    from matplotlib.figure import Figure

    return Figure().add_subplot()


def test_metric_by_epoch_plots_worst_slice_per_variant_and_attack(run):
    ax = plots.plot_metric_by_epoch(run, "auc")
    lines = _labelled_lines(ax)
    for model in ("small", "$big_1$", "DP-Adam"):
        for attack in ("threshold", "lr"):
            label = plots.text_for_matplotlib(f"{model} · {attack}")
            assert label in lines
            x, y = lines[label].get_data()
            expected = [max(r.auc for r in run.filter(model=model, attack=attack, epoch=e))
                        for e in (1, 2, 3, 4, 5)]
            np.testing.assert_array_equal(x, [1, 2, 3, 4, 5])
            np.testing.assert_allclose(y, expected)
    assert "chance (0.5)" in lines
    star = next(line for label, line in lines.items() if label.startswith("worst: "))
    worst = max(run, key=lambda r: r.auc)
    assert star.get_ydata()[0] == pytest.approx(worst.auc)
    assert star.get_label() == f"worst: {worst.slice}"
    assert any(text.get_text() == f"{worst.slice}\n({worst.attack})" for text in ax.texts)
    assert ax.get_ylabel() == "attack AUC"


def test_metric_by_epoch_on_one_slice_and_given_axes(run):
    ax = _fresh_axes()
    returned = plots.plot_metric_by_epoch(run, "tpr@0.01", slice="entire_dataset",
                                          mark_worst=False, ax=ax)
    assert returned is ax
    line = _labelled_lines(ax)["small · lr"]
    expected = [run.filter(model="small", attack="lr", epoch=e, slice="entire_dataset")
                .rows[0].tpr_at_fpr[0.01] for e in (1, 2, 3, 4, 5)]
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert not any(label.startswith("worst") for label in _labelled_lines(ax))
    assert "chance (0.5)" not in _labelled_lines(ax)


def test_dollar_labels_are_drawn_literally(run):
    assert plots.text_for_matplotlib("$big_1$") == r"\$big_1\$"
    assert plots.text_for_matplotlib("_hidden") == " _hidden"
    ax = plots.plot_metric_by_epoch(run, "auc")
    ax.figure.savefig(__import__("io").BytesIO(), format="png")  # mathtext would fail here


def test_privacy_vs_utility_one_line_per_variant_labelled_by_epoch(run):
    ax = plots.plot_privacy_vs_utility(run, "auc", limit=0.7, max_labels=3,
                                       highlight=("small", 3))
    lines = _labelled_lines(ax)
    small = lines["small"]
    rows = [run.filter(model="small", epoch=e).rows for e in (1, 2, 3, 4, 5)]
    np.testing.assert_allclose(small.get_xdata(), [g[0].metadata["test_accuracy"] for g in rows])
    np.testing.assert_allclose(small.get_ydata(), [max(r.auc for r in g) for g in rows])
    assert set(lines) >= {"small", r"\$big_1\$", "DP-Adam", "privacy limit 0.7",
                          "suggested checkpoint"}
    assert lines["privacy limit 0.7"].get_ydata()[0] == 0.7
    ring = lines["suggested checkpoint"]
    assert ring.get_xdata()[0] == pytest.approx(rows[2][0].metadata["test_accuracy"])
    epoch_labels = [t.get_text() for t in ax.texts]
    assert epoch_labels.count("1") == 3 and epoch_labels.count("5") == 3  # first and last
    assert len(epoch_labels) == 9  # 3 labels per line (max_labels)
    assert ax.get_xlabel() == "test accuracy"


def test_privacy_vs_train_accuracy(run):
    ax = plots.plot_privacy_vs_utility(run, "advantage", accuracy_key="train_accuracy")
    x = _labelled_lines(ax)["DP-Adam"].get_xdata()
    assert list(x) == sorted(x)
    assert ax.get_xlabel() == "train accuracy"


def test_roc_curves_log_log_with_diagonal():
    curve = synth.roc_points()
    ax = plots.plot_roc_curves({"threshold": curve,
                                "lr": (np.array([0.0, 0.01, 1.0]), np.array([0.0, 0.2, 1.0]))})
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = _labelled_lines(ax)
    diagonal = lines["guessing (TPR = FPR)"]
    np.testing.assert_allclose(diagonal.get_xdata(), diagonal.get_ydata())
    assert ax.get_xlim()[0] == pytest.approx(1e-3)
    assert (lines["threshold"].get_xdata() > 0).all()  # the (0, 0) point cannot be drawn
    np.testing.assert_allclose(lines["lr"].get_xdata(), [0.01, 1.0])


def test_roc_curves_reject_mismatched_points():
    with pytest.raises(InputError, match="equal"):
        plots.plot_roc_curves({"bad": (np.zeros(3), np.zeros(4))})


def test_slice_heatmap_is_slices_by_epochs_in_natural_order(run):
    ax = plots.plot_slice_heatmap(run, "auc", model="small")
    grid = ax.images[0].get_array()
    assert grid.shape == (11, 5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "entire_dataset" and labels[1:3] == ["class=0", "class=1"]
    assert labels[-1] == "class=9"
    cell = max(r.auc for r in run.filter(model="small", epoch=3, slice="class=4"))
    assert grid[labels.index("class=4"), 2] == pytest.approx(cell)
    outline = ax.patches[0]
    assert outline.get_xy() == (4 - 0.5, 10 - 0.5)  # epoch 5, class=9: the worst cell


def test_slice_heatmap_outlines_only_a_significant_result(run):
    """A variant whose results are all chance gets no outlined "worst" cell; a larger
    non-significant cell never takes the outline from a significant one."""
    tested = [replace(r, p_value=1e-12, significant=True) for r in run]
    quiet = ResultsCollection([replace(r, significant=False, p_value=0.5)
                               if r.metadata["model"] == "small" else r for r in tested])
    ax = plots.plot_slice_heatmap(quiet, "auc", model="small")
    assert not [p for p in ax.patches if p.get_gid() == plots.WORST_CELL_GID]
    top = max((r for r in tested if r.metadata["model"] == "small"), key=lambda r: r.auc)
    noisy = ResultsCollection([replace(r, p_value=0.5) if r is top else r for r in tested])
    ax = plots.plot_slice_heatmap(noisy, "auc", model="small")
    outline = next(p for p in ax.patches if p.get_gid() == plots.WORST_CELL_GID)
    assert outline.get_xy() == (4 - 0.5, 9 - 0.5)  # epoch 5, class=8: the top cell is chance


def test_slice_heatmap_shares_a_colour_scale_when_given(run):
    ax = plots.plot_slice_heatmap(run, model="DP-Adam", vmin=0.4, vmax=0.9, colorbar=False)
    assert ax.images[0].get_clim() == (0.4, 0.9)
    own = plots.plot_slice_heatmap(run, model="DP-Adam", colorbar=False).images[0].get_clim()
    values = [r.auc for r in run.filter(model="DP-Adam")]
    assert own == (pytest.approx(min(0.5, min(values))), pytest.approx(max(values)))


def test_slice_heatmap_natural_sort_puts_class_10_last(tmp_path):
    run = load_results(synth.write_synthetic_run(tmp_path / "r", models=("m",), epochs=(1, 2),
                                                 n_classes=12, dp_model=None))
    labels = [t.get_text() for t in plots.plot_slice_heatmap(run).get_yticklabels()]
    assert labels[-3:] == ["class=9", "class=10", "class=11"]


def test_slice_heatmap_by_attack_for_a_single_audit(tmp_path):
    result = synth.write_synthetic_audit(tmp_path)
    ax = plots.plot_slice_heatmap(result, by="attack", colorbar=False)
    assert ax.images[0].get_array().shape == (4, 1)
    with pytest.raises(InputError, match="model='nope'"):
        plots.plot_slice_heatmap(result, by="attack", model="nope")


def test_epsilon_by_epoch_shows_accountant_and_empirical(run):
    ax = plots.plot_epsilon_by_epoch(run)
    lines = _labelled_lines(ax)
    accountant = lines["DP-Adam · accountant ε"]
    empirical = lines["DP-Adam · attacks' ε lower bound (largest of 22 results, 95% with the "
                      "canaries)"]
    dp_rows = [run.filter(model="DP-Adam", epoch=e).rows for e in (1, 2, 3, 4, 5)]
    np.testing.assert_allclose(accountant.get_ydata(), [g[0].metadata["epsilon"] for g in dp_rows])
    # each audit's largest result, every result at 95%/22 (Bonferroni over the audit's rows)
    np.testing.assert_allclose(empirical.get_ydata(), [
        max(r.epsilon_lower_bound.confident_at(0.05 / len(g)) for r in g) for g in dp_rows])
    assert len(lines) == 2  # non-DP variants have no ε


def test_epsilon_by_epoch_shows_the_final_canary_audit_with_what_it_assumes(run):
    from memberscope.one_run import epsilon_audit_record, recorded_bounds

    rng = np.random.default_rng(4)
    included = rng.random(1000) < 0.5
    records = {epoch: epsilon_audit_record(
        {"white_box": (rng.normal(size=1000) + 0.5 * epoch * included, included)}, delta=1e-5)
        for epoch in (1, 2, 3, 4, 5)}
    audited = [replace(r, metadata={**r.metadata, "epsilon_audit": records[r.metadata["epoch"]]})
               if r.metadata.get("model") == "DP-Adam" else r for r in run.rows]
    lines = _labelled_lines(plots.plot_epsilon_by_epoch(audited))
    free = lines["DP-Adam · canary ε̂, white-box, final epoch (any DP mechanism)"]
    gaussian = lines["DP-Adam · canary ε̂, white-box, final epoch (assumes Gaussian curve)"]
    # only the final epoch, each at 95%/2: the attacks and the canaries share the 5%
    final = recorded_bounds(records[5], 0.025)
    assert list(free.get_xdata()) == list(gaussian.get_xdata()) == [5]
    assert free.get_ydata()[0] == final[0].white_box > 0 and final[0].method == "approx_dp"
    assert gaussian.get_ydata()[0] == final[2].white_box > final[0].white_box
    assert gaussian.get_markerfacecolor() == "none"
    assert len(lines) == 4  # no black-box canaries, no black-box markers


def test_epsilon_by_epoch_without_dp_says_so(run):
    with pytest.raises(InputError, match="epsilon"):
        plots.plot_epsilon_by_epoch(run.filter(model="small"))
    infinite = [replace(r, metadata={**r.metadata, "epsilon": float("inf")})
                for r in run.filter(model="small")]
    with pytest.raises(InputError, match="epsilon"):  # an unbounded ε is not a DP run
        plots.plot_epsilon_by_epoch(infinite)


def test_exposed_examples_gallery_shows_top_members_in_order():
    n = 30
    scores = np.linspace(0, 1, n)
    membership = np.arange(n) % 2 == 0  # the top score (index 29) is a non-member
    images = np.repeat(np.arange(n, dtype=float)[:, None, None], 4, axis=1).repeat(4, axis=2)
    np.testing.assert_array_equal(plots.exposed_indices(scores, membership, 3), [28, 26, 24])
    ax = plots.plot_exposed_examples(scores, images, membership=membership,
                                     labels=np.arange(n) % 10, k=5, columns=5)
    mosaic = ax.images[0].get_array()
    pad = 1
    tile_values = [mosaic[pad + 1, pad + i * (4 + pad) + 1] for i in range(5)]
    expected = (np.array([28, 26, 24, 22, 20]) - 20) / 8
    np.testing.assert_allclose(tile_values, expected)  # normalised over the shown tiles
    assert ax.texts[0].get_text() == "#1 0.97\ny=8"
    assert len(ax.texts) == 5


def test_exposed_examples_accepts_channels_first_and_rejects_bad_shapes():
    scores = np.arange(6.0)
    ax = plots.plot_exposed_examples(scores, np.zeros((6, 3, 5, 5)), k=2)
    assert ax.images[0].get_array().shape[-1] == 3
    with pytest.raises(InputError, match="one example per score"):
        plots.plot_exposed_examples(scores, np.zeros((5, 4, 4)))
    with pytest.raises(InputError, match="channels"):
        plots.plot_exposed_examples(scores, np.zeros((6, 4, 4, 7)))


def _renderer(figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def _inside(inner, outer, slack: float = 1.0) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack
            and inner.y0 >= outer.y0 - slack and inner.y1 <= outer.y1 + slack)


def test_a_single_epoch_gets_one_integer_tick(run):
    one = [r for r in run if r.metadata["epoch"] == 3]
    for ax in (plots.plot_metric_by_epoch(one, "auc", ax=_fresh_axes()),
               plots.plot_epsilon_by_epoch(one, ax=_fresh_axes())):
        _renderer(ax.figure)
        assert list(ax.get_xticks()) == [3.0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["3"]


@pytest.mark.parametrize("worst_epoch", [1, 3, 5])
def test_the_worst_points_label_stays_inside_the_axes(worst_epoch):
    rows = [synth.synthetic_row(model="m", epoch=e, attack="threshold_entropy",
                                slice_name="correctly_classified=False",
                                base=0.9 - 0.05 * abs(e - worst_epoch)) for e in range(1, 6)]
    ax = plots.plot_metric_by_epoch(rows, "auc", ax=_fresh_axes())
    renderer = _renderer(ax.figure)
    label = next(t for t in ax.texts if "correctly_classified" in t.get_text())
    assert _inside(label.get_window_extent(renderer), ax.get_window_extent(renderer))


def test_heatmap_slice_labels_fit_in_the_figure(run):
    from memberscope.report import figures

    rows = [replace(r, slice=name) for r, name in zip(
        list(run)[:4], ["correctly_classified=False", "loss_percentile=90-100",
                        "custom:a rather long slice name", "class=3"], strict=True)]
    figure, _ = figures.heatmaps(rows)
    renderer = _renderer(figure)
    for ax in figure.axes[:1]:
        for label in ax.get_yticklabels():
            assert label.get_window_extent(renderer).x0 >= 0, label.get_text()


def test_the_star_marks_only_a_significant_result(run):
    rows = [replace(r, p_value=1e-12, significant=True) for r in run]
    top = max(rows, key=lambda r: r.auc)
    quiet = ResultsCollection([replace(r, significant=False, p_value=0.5) for r in rows])
    assert not any(label.startswith("worst: ")
                   for label in _labelled_lines(plots.plot_metric_by_epoch(quiet, "auc")))
    # The highest point is chance; the star goes to the highest significant one.
    mixed = ResultsCollection([replace(r, significant=False, p_value=0.5) if r is top
                               else r for r in rows])
    star = next(line for label, line in
                _labelled_lines(plots.plot_metric_by_epoch(mixed, "auc")).items()
                if label.startswith("worst: "))
    expected = max((r for r in mixed if r.significant), key=lambda r: r.auc)
    assert expected.auc < top.auc
    assert star.get_ydata()[0] == pytest.approx(expected.auc)


def test_a_tpr_star_needs_that_tpr_to_beat_chance_by_its_own_test(run):
    # Every row is significant by AUC; their TPRs at 1% FPR sit at chance but one.
    at_chance = [replace(r, p_value=1e-12, significant=True,
                         tpr_at_fpr={**r.tpr_at_fpr, 0.01: 0.012}) for r in run]
    quiet = ResultsCollection(at_chance)
    assert not any(label.startswith("worst: ") for label in
                   _labelled_lines(plots.plot_metric_by_epoch(quiet, "tpr@0.01")))
    # The same rows with one TPR far beyond what 5 false positives in 500 allow.
    leaky = replace(at_chance[3], tpr_at_fpr={**at_chance[3].tpr_at_fpr, 0.01: 0.3})
    mixed = ResultsCollection([leaky if i == 3 else r for i, r in enumerate(at_chance)])
    star = next(line for label, line in
                _labelled_lines(plots.plot_metric_by_epoch(mixed, "tpr@0.01")).items()
                if label.startswith("worst: "))
    assert star.get_ydata()[0] == pytest.approx(0.3)
    # The AUC panel of the same rows still stars by the rows' own (AUC) tests.
    assert any(label.startswith("worst: ") for label in
               _labelled_lines(plots.plot_metric_by_epoch(quiet, "auc")))


def test_privacy_vs_utility_leaves_split_checks_out(run):
    # A blind check that separates the split perfectly is the data, not the model's leakage.
    model_rows = list(run.filter(model="small").rows)
    blind = [replace(r, attack="blind", auc=0.99) for r in model_rows if r.attack == "threshold"]
    ax = plots.plot_privacy_vs_utility(ResultsCollection(model_rows + blind), "auc")
    rows = [[r for r in model_rows if r.metadata["epoch"] == e] for e in (1, 2, 3, 4, 5)]
    np.testing.assert_allclose(_labelled_lines(ax)["small"].get_ydata(),
                               [max(r.auc for r in g) for g in rows])


def test_slice_heatmap_cells_leave_split_checks_out(run):
    model_rows = list(run.filter(model="small").rows)
    blind = [replace(r, attack="blind", auc=0.99) for r in model_rows if r.attack == "threshold"]
    ax = plots.plot_slice_heatmap(ResultsCollection(model_rows + blind), "auc", by="epoch")
    grid = ax.images[0].get_array()
    assert float(np.nanmax(grid)) == pytest.approx(max(r.auc for r in model_rows))
    # Where the columns are attacks, the check keeps a column of its own.
    by_attack = plots.plot_slice_heatmap(ResultsCollection(model_rows + blind), "auc",
                                         by="attack")
    assert "blind" in [t.get_text() for t in by_attack.get_xticklabels()]


def test_on_a_shifted_split_figures_mark_only_results_beyond_the_split(run, monkeypatch):
    from memberscope.report import figures
    from memberscope.results import distinguishable_rows
    from memberscope.summary import marking_family

    # Every row beats chance, none beats the split guard's bars.
    rows = [replace(r, p_value=1e-12, significant=True, beyond_split_p_value=0.5,
                    beyond_split_significant=False) for r in run]
    assert distinguishable_rows(rows, marking_family(rows, "auc", beyond_split=False))
    assert distinguishable_rows(rows, marking_family(rows, "auc", beyond_split=True)) == []
    passed = []
    draw = plots.plot_metric_by_epoch

    def recording(*args, **kwargs):
        passed.append(kwargs["family"])
        return draw(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_metric_by_epoch", recording)
    figures.epoch_figure(rows, ["auc", "advantage"], beyond_split=True)
    assert len(passed) == 2 and all(family.beyond_split for family in passed)
    assert not any(label.startswith("worst: ") for label in _labelled_lines(
        draw(rows, "auc", family=passed[0])))
