"""Hypothesis: any user string survives the page as text and never becomes markup or code."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from memberscope.metrics import EpsilonBound
from memberscope.report.page import PageInputs, json_for_script, render_page
from memberscope.results import AuditRow

# Printable text biased towards the characters that matter in HTML, JS and JSON.
hostile = st.text(alphabet=st.sampled_from(list("<>&\"'/=!-[]{}$\\ `ab1")) | st.characters(
    blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _row(model: str, slice_name: str, epoch: int) -> AuditRow:
    return AuditRow(slice=slice_name, attack="threshold", n_members=10, n_nonmembers=10,
                    auc=0.5 + 0.1 * epoch, advantage=0.1, ppv=0.5, tpr_at_fpr={0.01: 0.02},
                    epsilon_lower_bound=EpsilonBound(0.1, 0.0, 0.05, 0.0),
                    metadata={"model": model, "epoch": epoch, "test_accuracy": 0.5,
                              "note": slice_name})


@settings(max_examples=25, deadline=None)
@given(model=hostile, slice_name=hostile, config=hostile)
def test_user_strings_render_as_text_only(model, slice_name, config):
    rows = [_row(model, slice_name, 1), _row(model, slice_name, 2)]
    page = render_page(PageInputs(title=model, source=slice_name, rows=rows,
                                  config_text=config, max_auc=0.65))
    parsed = _Page()
    parsed.feed(page)
    assert parsed.tags.count("script") == 2
    assert parsed.tags.count("img") == 0
    text = "".join(parsed.text)
    assert model.strip() in text and slice_name.strip() in text and config.strip() in text


@settings(max_examples=60, deadline=None)
@given(value=st.recursive(hostile | st.integers() | st.booleans() | st.none(),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(hostile, inner, max_size=3), max_leaves=8))
def test_json_for_script_round_trips_without_breaking_out(value):
    text = json_for_script(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == value
