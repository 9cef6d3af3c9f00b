"""Privacy reports: figures (``plots``) and one self-contained HTML page (``html``).

Nothing heavy is imported here: ``matplotlib`` loads inside the plotting functions, and
``import memberscope`` never imports this package. Entry points::

    from memberscope.report.html import write_audit_report, write_run_report
    from memberscope.report import plots
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_audit_report", "write_run_report"]


def __getattr__(name: str) -> Any:
    """Lazy access to the page writers, so importing the package stays cheap."""
    if name in __all__:
        from memberscope.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'memberscope.report' has no attribute {name!r}")
