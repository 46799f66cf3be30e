"""How values look on a page: table cells, and the bar charts of the operations pages as
inline SVG (no script, no library: every label escaped, every length computed here)."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

MAX_CELL = 120
BAR_HEIGHT = 18
LABEL_WIDTH = 300
BAR_WIDTH = 420


def cell(value: Any, limit: int = MAX_CELL) -> str:
    """``value`` as text for a table cell, cut to ``limit`` characters."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Decimal):
        return f"{value:f}"
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def json_text(value: Any) -> str:
    """``value`` as the JSON a form field edits, on one line: plain text, escaped by the
    template like any other (Jinja's ``tojson`` is markup that leaves ``"`` as it is, so a
    string value would end the attribute it is written into)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def json_full(value: Any) -> str:
    """A JSON column's value on the record view: as JSON, so the string ``"10"`` does not look
    like the number 10."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def bars(items: list[tuple[str, float, str]], title: str) -> Markup:
    """A horizontal bar chart: one (label, value, shown value) per bar, longest bar = max."""
    if not items:
        return Markup("<p class=dim>nothing to chart</p>")
    top = max(v for _, v, _ in items) or 1.0
    height = BAR_HEIGHT * len(items) + 8
    parts = [f'<svg class="chart" role="img" width="{LABEL_WIDTH + BAR_WIDTH + 120}" '
             f'height="{height}" aria-label="{escape(title)}">']
    for n, (label, value, shown) in enumerate(items):
        y = 4 + n * BAR_HEIGHT
        width = max(1.0, BAR_WIDTH * value / top)
        short = label if len(label) <= 38 else label[:37] + "\u2026"
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{escape(short)}'
            f'<title>{escape(label)}</title></text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{width:.1f}" '
            f'height="{BAR_HEIGHT - 5}" rx="2"></rect>'
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 13}">{escape(shown)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def segment(value: Any) -> str:
    """``value`` as one segment of a path, ``/`` included: Jinja's ``urlencode`` keeps ``/``,
    and a browser resolves the ``..`` of a config key such as ``a/../b`` before sending, so
    that key's delete form would post to ``/w/config/b/delete``."""
    return quote(str(value), safe="")


FILTERS = {"cell": cell, "segment": segment, "json_text": json_text,
           "json_full": json_full}
