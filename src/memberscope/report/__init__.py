"""Privacy reports: figures (``plots``, ``figures``) and one self-contained HTML page
(``page`` renders Jinja2 templates from ``templates/`` with ``static/`` inlined; ``html``
gathers the inputs and writes the file).

Nothing heavy is imported here: ``matplotlib`` and ``jinja2`` load when first used, and
``import memberscope`` never imports this package. Entry points::

    from memberscope.report import write_audit_report, write_results_report, write_run_report
    from memberscope.report import plots
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_audit_report", "write_results_report", "write_run_report"]


def __getattr__(name: str) -> Any:
    """Lazy access to the page writers, so importing the package stays cheap."""
    if name in __all__:
        from memberscope.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'memberscope.report' has no attribute {name!r}")
