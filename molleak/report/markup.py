"""The report's HTML pieces: escaping, tables, the `missing` note and plain numbers.

A value with an interval is always written by `molleak.rundir.format_estimate`; `scalar` covers
what has no interval (counts, flags, names, seconds).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from molleak.rundir import format_estimate


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def missing(text: str) -> str:
    """A paragraph saying what is not there (the tests and the CLI count sections made only of these)."""
    return f'<p class="missing">{esc(text)}</p>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (already HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def scalar(x: Any, digits: int = 3) -> str:
    """A number without an interval: integers as they are, floats by `format_estimate`, None as `-`."""
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    if x is None or isinstance(x, bool | float):
        return format_estimate(x, digits=digits)
    return str(x)
