"""The HTML report in a real browser: Debian's chromium driven by playwright, from file://.

Playwright never downloads a browser here: it launches /usr/bin/chromium with a fresh
profile and no network features.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("MEMBERSCOPE_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) "
                "to run the browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package (dev extra) is not installed")
pytest.importorskip("matplotlib")

from tests.helpers import report_synth as synth  # noqa: E402

from memberscope.report.html import write_run_report  # noqa: E402

IMG_LABEL = "<img src=x onerror=alert(2)>"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = synth.write_synthetic_run(tmp_path_factory.mktemp("run") / "run",
                                        models=(synth.XSS_LABEL, IMG_LABEL), epochs=(2, 4, 6),
                                        n_classes=11)
    return write_run_report(run_dir, max_auc=0.7)


@pytest.fixture(scope="module")
def browser_page(report: Path, tmp_path_factory: pytest.TempPathFactory):
    """The loaded page, with every console message, page error and dialog recorded."""
    events: dict[str, list[str]] = {"console_errors": [], "page_errors": [], "dialogs": [],
                                    "requests": []}
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900}, timeout=60_000)
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and events["console_errors"].append(
                m.text))
            page.on("pageerror", lambda e: events["page_errors"].append(str(e)))

            def on_dialog(dialog) -> None:
                events["dialogs"].append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.on("request", lambda r: events["requests"].append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            yield page, events
        finally:
            context.close()


def test_no_console_errors_and_no_network(browser_page):
    _, events = browser_page
    assert events["console_errors"] == []
    assert events["page_errors"] == []
    assert all(url.startswith(("file:", "data:")) for url in events["requests"])


def test_every_figure_is_decoded(browser_page):
    page, _ = browser_page
    widths = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 4  # by epoch, privacy vs accuracy, per slice, DP
    assert all(w > 0 for w in widths)


def test_summary_numbers_equal_the_results_file(browser_page, report):
    page, _ = browser_page
    records = [json.loads(line) for line in
               (report.parent / "results.jsonl").read_text("utf-8").splitlines()]
    rows = [r for r in records if r["kind"] == "row"]
    worst = max(rows, key=lambda r: r["auc"])
    shown = page.locator('[data-key="worst.auc"]')
    assert float(shown.get_attribute("data-v")) == worst["auc"]
    assert shown.inner_text() == f"{worst['auc']:.3f}"
    advantage = page.locator('[data-key="worst.advantage"]')
    assert float(advantage.get_attribute("data-v")) == worst["advantage"]
    assert page.locator("#worst").inner_text().count(worst["slice"]) >= 1
    embedded = json.loads(page.locator("#memberscope-summary").text_content())
    assert embedded["worst"]["auc"] == worst["auc"]


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _column(page, header: str) -> list[str]:
    return page.eval_on_selector(
        "#all-results",
        """(table, header) => {
            const index = Array.from(table.tHead.rows[0].cells)
                .findIndex(th => th.textContent === header);
            return Array.from(table.tBodies[0].rows).map(r => {
                const cell = r.cells[index];
                return cell.getAttribute('data-v') ?? cell.textContent;
            });
        }""", header)


def test_clicking_a_header_sorts_the_rows(browser_page):
    page, _ = browser_page
    before = [float(v) for v in _column(page, "AUC")]
    assert before != sorted(before)
    page.click('#all-results th:text-is("AUC")')
    ascending = [float(v) for v in _column(page, "AUC")]
    assert ascending == sorted(before)
    page.click('#all-results th:text-is("AUC")')
    assert [float(v) for v in _column(page, "AUC")] == sorted(before, reverse=True)
    assert page.get_attribute('#all-results th:text-is("AUC")', "aria-sort") == "descending"
    page.click('#all-results th:text-is("slice")')
    slices = _column(page, "slice")  # natural order: class=2 before class=10
    assert slices == sorted(slices, key=_natural)
    assert slices.index("class=10") > slices.index("class=9")


def test_hostile_labels_show_as_text_and_run_nothing(browser_page):
    page, events = browser_page
    assert events["dialogs"] == []
    trend = page.locator("#trend").inner_text()
    assert synth.XSS_LABEL in trend and IMG_LABEL in trend
    assert page.locator("main img:not(figure img)").count() == 0  # no injected <img>
    assert page.evaluate("document.querySelectorAll('script').length") == 2


def test_filtering_updates_the_row_count_in_the_caption(browser_page):
    page, _ = browser_page
    caption = page.locator("#all-results caption")
    total = page.locator("#all-results tbody tr").count()
    assert caption.inner_text().startswith(f"{total} results")
    page.fill('input[data-filter="all-results"]', "class=3 lr")
    shown = page.locator("#all-results tbody tr:not([hidden])").count()
    assert 0 < shown < total
    assert caption.inner_text().startswith(f"{shown} of {total} results match the filter")
    page.fill('input[data-filter="all-results"]', "")
    assert caption.inner_text().startswith(f"{total} results")
    assert page.locator("#all-results tbody tr:not([hidden])").count() == total


def test_tables_of_a_real_runs_rows_fit_1920_pixels(browser_page, tmp_path_factory):
    from memberscope.store import append_result

    run_dir = tmp_path_factory.mktemp("wide") / "run"
    run_dir.mkdir()
    timings = {"train_loss": 0.4321, "epoch_seconds": 12.3, "inference_seconds": 1.23,
               "audit_seconds": 2.34, "images_per_second": 4567.8}
    for epoch in (1, 2):
        for model, dp in (("2 conv layers", None), ("3 conv layers, DP-Adam", 3.0)):
            result = synth.synthetic_epoch(model, epoch, base=0.55, n_classes=10, dp_epsilon=dp)
            append_result(run_dir / "results.jsonl", result.with_metadata(**timings))
    wide = write_run_report(run_dir, write_figures=False)
    page, _ = browser_page
    page.set_viewport_size({"width": 1920, "height": 1000})
    try:
        page.goto(wide.as_uri(), wait_until="load")
        overflow = page.eval_on_selector_all(
            ".table-wrap", "ws => ws.map(w => [w.querySelector('table').id, "
                           "w.scrollWidth - w.clientWidth])")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.go_back(wait_until="load")
    assert overflow and all(extra == 0 for _, extra in overflow), overflow


def test_screenshot_for_a_human(browser_page, tmp_path_factory):
    page, _ = browser_page
    target = Path(os.environ.get("MEMBERSCOPE_SCREENSHOT_DIR", tmp_path_factory.mktemp("shot")))
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / "report.png"), full_page=True)
    assert (target / "report.png").stat().st_size > 10_000
