"""The README's "Definitions (the contract)" table and the report's glossary say the same for
every field of a result row: both are the text of memberscope.metric_definitions."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from memberscope.metric_definitions import CONTRACT, GLOSSARY, SCALAR_METRICS, contract_table
from memberscope.metrics import EpsilonBound
from memberscope.results import AuditRow

README = Path(__file__).resolve().parents[2] / "README.md"
REGENERATE = ('regenerate it: python -c "from memberscope.metric_definitions import '
              'contract_table; print(contract_table())"')


def readme_table() -> str:
    """The first table under the README's "### Definitions (the contract)"."""
    section = README.read_text("utf-8").split("### Definitions (the contract)", 1)[1]
    return next(block for block in section.split("\n\n") if block.startswith("|"))


def readme_contract() -> dict[str, str]:
    """{field: definition} from the README's table, read as Markdown (in the file's order)."""
    lines = readme_table().splitlines()
    assert lines[:2] == ["| metric | definition |", "|---|---|"], lines[:2]
    rows = {}
    for line in lines[2:]:
        match = re.fullmatch(r"\| `(\w+)` \| (.+) \|", line)
        assert match, f"not a table row of the form | `field` | text |: {line!r}"
        rows[match.group(1)] = match.group(2)
    return rows


def page_glossary() -> dict[str, str]:
    """{term: definition} from the glossary of a rendered report, HTML read back to the
    Markdown of the README (``<code>x</code>`` -> `x`)."""
    pytest.importorskip("jinja2")
    from memberscope.report.page import PageInputs, render_page

    row = AuditRow("entire_dataset", "threshold", 50, 50, 0.6, 0.2, 0.55, {0.1: 0.3},
                   EpsilonBound(0.3, 0.1, 0.05, 0.0), p_value=0.01, significant=True)
    page = render_page(PageInputs("t", "s", [row]))
    section = page.split('<section id="metrics">', 1)[1].split("</section>", 1)[0]
    entries = re.findall(r"<dt>(.*?)</dt><dd>.*?<small>Definition: (.*?)</small></dd>", section)
    return {html.unescape(term): html.unescape(re.sub(r"</?code>", "`", definition))
            for term, definition in entries}


def test_readme_table_is_the_contract_text():
    assert readme_contract() == {d.field: d.text for d in CONTRACT}, REGENERATE
    assert readme_table() == contract_table(), REGENERATE


def test_glossary_and_readme_say_the_same_for_every_field():
    readme = readme_contract()
    glossary = page_glossary()
    terms = {d.field: d.term for d in GLOSSARY}
    assert set(readme) == {d.field for d in CONTRACT}
    for field, text in readme.items():
        assert glossary[terms[field]] == text, field
    assert list(glossary) == [d.term for d in GLOSSARY]  # and nothing the contract lacks


def test_every_metric_is_defined_in_the_contract():
    assert {m.definition.field for m in SCALAR_METRICS} <= {d.field for d in CONTRACT}
    for definition in GLOSSARY:
        assert "|" not in definition.text, f"{definition.field}: a '|' would end a README cell"
        assert definition.text.count("`") % 2 == 0, definition.field
