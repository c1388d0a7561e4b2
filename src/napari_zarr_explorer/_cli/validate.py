"""``napari-zarr-explorer validate URL``: OME-NGFF and Zarr metadata checks.

``--json`` prints exactly one JSON object, ``{"valid": true|false, "message": "..."}``, the answer
expected by the OME-NGFF conformance tests. The exit code is 0 whenever a verdict was reached
(valid or not) and 1 when the input could not be read at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer._cli._common import add_storage_options, printable, storage_options
from napari_zarr_explorer._html import plural

if TYPE_CHECKING:
    from rich.table import Table

    from napari_zarr_explorer.ome.validate import ValidationReport

__all__ = ["register", "render", "run"]


def register(subparsers: Any) -> None:
    """Add the ``validate`` sub-command to *subparsers*."""
    parser = subparsers.add_parser(
        "validate",
        help="check OME-NGFF metadata (0.4, 0.5, 0.6) and the Zarr hierarchy it describes",
        description=(
            "Validate a store (its hierarchy is walked through the OME metadata: levels, labels, "
            "plate wells and fields, bioformats2raw series, with Zarr sanity checks) or a single "
            "JSON attributes file (zarr.json, .zattrs or a plain attributes document). Exit code "
            "0 when a verdict was reached, valid or not; 1 when the input could not be read."
        ),
    )
    parser.add_argument("url", metavar="URL", help="store path or URL, or a JSON attributes file")
    add_storage_options(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also apply the strict schemas (names, types, versions) and the recommendations",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"valid": true|false, "message": "..."}',
    )
    parser.add_argument(
        "--max-nodes",
        type=int,
        default=20_000,
        help="stop walking after reading this many nodes (default 20000)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``validate``; return the exit code."""
    from napari_zarr_explorer.ome.validate import validate

    report = validate(
        args.url,
        strict=args.strict,
        max_nodes=args.max_nodes,
        storage_options=storage_options(args),
    )
    if args.json:
        sys.stdout.write(json.dumps({"valid": report.valid, "message": report.summary()}) + "\n")
        sys.stdout.flush()
        return 0
    from napari_zarr_explorer._cli._common import out_console

    out_console.print(_headline(report))
    for note in report.notes:
        out_console.print(f"note: {printable(note)}", markup=False, highlight=False)
    if report.messages:
        out_console.print(render(report))
    return 0


def _headline(report: ValidationReport) -> str:
    from rich.markup import escape

    verdict = "[bold green]valid[/]" if report.valid else "[bold red]invalid[/]"
    what = ""
    if report.version:
        ome = f"{report.version} {report.kind or ''}"
        what = f" OME-NGFF {escape(printable(ome))}"
    elif report.kind and report.notes:  # not OME-NGFF (N5): say what it is
        what = f" {escape(printable(report.kind))}"
    counts = f"{plural(len(report.errors), 'error')}, {plural(len(report.warnings), 'warning')}"
    if report.mode == "store":
        counts += f", {plural(report.nodes_checked, 'node')} checked"
    if report.strict:
        counts += ", strict rules"
    return f"{escape(printable(report.source))}: {verdict}{what} ({counts})"


def render(report: ValidationReport) -> Table:
    """Render the report's messages as a rich table: level, node, JSON location, message."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, expand=False)
    table.add_column("level", no_wrap=True)
    table.add_column("node", overflow="fold")
    table.add_column("where (file#JSON path)", overflow="fold")
    table.add_column("message", overflow="fold")
    for m in report.messages:
        style = "bold red" if m.level == "error" else "yellow"
        table.add_row(
            Text(m.level, style=style),
            Text(printable(m.node or "/")),
            Text(printable(m.location)),
            Text(printable(m.message)),
        )
    return table
