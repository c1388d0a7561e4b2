"""Small helpers for the text and HTML renderings of reports.

:func:`human_bytes` and :func:`plural` are shared by the reports and the command line; the rest
serve the ``_repr_html_`` of reports (Jupyter). Everything is escaped; pictures are capped
(chunk maps are aggregated to at most a few thousand cells) so that huge hierarchies and grids
render at once in a notebook.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "STATE_COLORS",
    "chunk_svg",
    "esc",
    "human_bytes",
    "plural",
    "table",
]

STATE_COLORS = {
    0: "#d9d9d9",  # missing
    1: "#2ca02c",  # present
    2: "#d62728",  # corrupt
    3: "#9467bd",  # unknown
    4: "#98df8a",  # partial
}

_STYLE = (
    "<style>.nze-table{border-collapse:collapse;font-size:12px;margin:4px 0}"
    ".nze-table th,.nze-table td{border:1px solid #ccc;padding:2px 6px;text-align:left;"
    "vertical-align:top}.nze-table th{background:#f3f3f3}.nze-warn{color:#b35900}"
    ".nze-err{color:#c00}</style>"
)


def esc(value: Any) -> str:
    """HTML-escape ``str(value)``."""
    return html.escape(str(value), quote=True)


def human_bytes(n: int | float | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; None -> ``"?"``."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def plural(n: int, word: str) -> str:
    """``"1 array"``, ``"2 arrays"``, ``"0 arrays"``: a count and its noun."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, raw_columns: Sequence[int] = ()
) -> str:
    """Return an HTML table; cells are escaped except in *raw_columns* (already HTML)."""
    raw = set(raw_columns)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f"<td>{cell if i in raw else esc(cell)}</td>" for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"{_STYLE}<table class='nze-table'><tr>{head}</tr>{''.join(body)}</table>"


def json_block(value: Any, *, limit: int = 4000) -> str:
    """Return a collapsed ``<details>`` block showing *value* as indented JSON (truncated)."""
    text = json.dumps(value, indent=2, default=str)
    if len(text) > limit:
        text = text[:limit] + "\n..."
    return f"<details><summary>JSON</summary><pre>{esc(text)}</pre></details>"


def chunk_svg(state: Any, *, cell: int = 0, max_px: int = 320) -> str:
    """Draw a 2-D (or 1-D) state grid as SVG, one rectangle per cell.

    Runs of equal cells in a row are merged into one rectangle so that the picture stays small.
    """
    import numpy as np

    grid = np.asarray(state)
    if grid.ndim == 0:
        grid = grid.reshape(1, 1)
    elif grid.ndim == 1:
        grid = grid.reshape(1, -1)
    rows, cols = grid.shape[-2], grid.shape[-1]
    if cell <= 0:
        cell = max(2, min(24, max_px // max(rows, cols, 1)))
    width, height = cols * cell, rows * cell
    rects: list[str] = []
    for r in range(rows):
        row = grid[r]
        start = 0
        for c in range(1, cols + 1):
            if c == cols or row[c] != row[start]:
                color = STATE_COLORS.get(int(row[start]), "#000")
                rects.append(
                    f"<rect x='{start * cell}' y='{r * cell}' width='{(c - start) * cell}' "
                    f"height='{cell}' fill='{color}'/>"
                )
                start = c
    grid_lines = ""
    if cell >= 6:
        grid_lines = (
            f"<pattern id='g' width='{cell}' height='{cell}' patternUnits='userSpaceOnUse'>"
            f"<path d='M {cell} 0 L 0 0 0 {cell}' fill='none' stroke='white' "
            "stroke-width='1'/></pattern>"
            f"<rect width='{width}' height='{height}' fill='url(#g)'/>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>{''.join(rects)}{grid_lines}</svg>"
    )


def legend() -> str:
    """Return the colour legend of chunk states."""
    names = {0: "missing", 1: "present", 2: "corrupt", 3: "unknown", 4: "partial"}
    items = "".join(
        f"<span style='display:inline-block;width:10px;height:10px;background:{STATE_COLORS[k]};"
        f"margin:0 3px 0 8px'></span>{names[k]}"
        for k in names
    )
    return f"<div style='font-size:11px'>{items}</div>"


def coordinates_html(ome: Any) -> str:
    """Return the OME-NGFF 0.6 coordinate systems and transformations of an ``OmeReport``."""
    parts = []
    if ome.coordinate_systems:
        rows = [
            (
                cs.get("name"),
                cs.get("where"),
                ", ".join(
                    str(a.get("name")) + (f" ({a['unit']})" if a.get("unit") else "")
                    for a in cs.get("axes", ())
                ),
            )
            for cs in ome.coordinate_systems
        ]
        parts.append("<h4>Coordinate systems</h4>" + table(("name", "defined in", "axes"), rows))
    if ome.transforms:
        trows = [
            (
                t.source,
                t.target,
                t.description,
                "yes" if t.applied else "no: shown only",
                t.where,
            )
            for t in ome.transforms
        ]
        parts.append(
            "<h4>Coordinate transformations</h4>"
            + table(("from", "to", "transformation", "applied", "defined in"), trows)
        )
    return "".join(parts)
