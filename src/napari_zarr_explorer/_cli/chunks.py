"""``napari-zarr-explorer chunks URL``: which chunks are stored, missing or corrupt."""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer._cli._common import (
    add_array_arguments,
    printable,
    storage_options,
)

if TYPE_CHECKING:
    from napari_zarr_explorer.chunks import ChunkMap

__all__ = ["EXIT_CORRUPT", "register", "run"]

EXIT_CORRUPT = 3
"""Exit code when corrupt chunks were found."""


def register(subparsers: Any) -> None:
    """Add the ``chunks`` sub-command to *subparsers*."""
    parser = subparsers.add_parser(
        "chunks",
        help="per-chunk map: present, missing, corrupt, bytes",
        description=(
            "Map the chunks of one array: stored, missing (read as the fill value) or corrupt, "
            "with stored bytes; for sharded arrays from the shard indexes. By default only the "
            "listing and the shard indexes are read; --verify decodes every chunk. Exit code 0 "
            "when nothing is corrupt, 3 when corrupt chunks were found or the store did not "
            "deliver some of them (the map is incomplete), 1 on errors."
        ),
    )
    add_array_arguments(parser)
    parser.add_argument("--verify", action="store_true", help="decode every chunk (slow)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--grid",
        action="store_true",
        help="with --json, include the full state and nbytes grids",
    )
    parser.set_defaults(func=run)


def _default_array(url: str, options: dict[str, Any] | None = None) -> str:
    """Return the path to map when --array is not given."""
    from napari_zarr_explorer.errors import ExplorerError, MetadataError
    from napari_zarr_explorer.report import ArrayReport, GroupReport, inspect

    report = inspect(url, max_nodes=200, storage_options=options)
    root = report.root
    if not isinstance(root, ArrayReport | GroupReport):  # nothing readable at the URL itself
        problems = [*(root.errors if root is not None else ()), *report.errors]
        if problems:
            raise MetadataError(" ".join(problems[:3]))
    if isinstance(root, ArrayReport):
        return ""
    if isinstance(root, GroupReport) and root.ome and root.ome.levels:
        return ""
    arrays = report.arrays
    if len(arrays) == 1:
        return arrays[0].path
    names = ", ".join(a.path for a in arrays[:20]) or (
        f"(none among the first {report.max_nodes} nodes)" if report.truncated else "(none found)"
    )
    if len(arrays) > 20:
        names += f", and {len(arrays) - 20} more (napari-zarr-explorer inspect lists them)"
    raise ExplorerError(
        f"{report.url} is a group with {len(arrays)} arrays.",
        hint=f"Choose one with --array PATH: {names}",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``chunks``; return the exit code."""
    from napari_zarr_explorer._cli._common import err_console, out_console, print_json
    from napari_zarr_explorer.chunks import chunk_map

    options = storage_options(args)
    path = args.array if args.array is not None else _default_array(args.url, options)
    cancel = threading.Event()
    if args.json or not err_console.is_terminal:
        cmap = chunk_map(
            args.url,
            path,
            level=args.level,
            verify=args.verify,
            cancel=cancel,
            storage_options=options,
        )
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("listing", total=None)

            def progress(done: int, total: int, message: str) -> None:
                bar.update(task, completed=done, total=total, description=message)

            try:
                cmap = chunk_map(
                    args.url,
                    path,
                    level=args.level,
                    verify=args.verify,
                    progress=progress,
                    cancel=cancel,
                    storage_options=options,
                )
            except KeyboardInterrupt:
                cancel.set()
                raise
    if args.json:
        print_json(cmap.to_dict(include_grid=args.grid))
    else:
        _print_human(cmap, out_console, verify=bool(args.verify))
    # chunks the store did not deliver were not checked: the map is incomplete, not clean
    return EXIT_CORRUPT if cmap.corrupt_keys or cmap.chunks_corrupt or cmap.unanswered else 0


def _verified_text(cmap: ChunkMap, verify: bool) -> str:
    if cmap.verified or verify:
        return cmap.verified_text()
    return "no (listing only; --verify decodes)"


def _print_human(cmap: ChunkMap, console: Any, *, verify: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from napari_zarr_explorer._html import human_bytes
    from napari_zarr_explorer.chunks import CORRUPT, MISSING, PARTIAL, PRESENT, UNKNOWN
    from napari_zarr_explorer.store.locate import node_where

    where = node_where(cmap.url, cmap.path)
    console.print(f"[bold]{escape(printable(where, one_line=True))}[/]")
    table = Table(show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    stored = cmap.bytes_stored
    rows = [
        ("shape / dtype", f"{list(cmap.shape)} {cmap.dtype}"),
        ("chunk shape", str(list(cmap.chunk_shape))),
        ("shard shape", str(list(cmap.shard_shape)) if cmap.shard_shape else "none"),
        ("chunk grid", str(list(cmap.grid_shape))),
        ("chunks", str(cmap.chunks_total)),
        ("present", f"[green]{cmap.chunks_present}[/]"),
        ("missing (fill value)", str(cmap.chunks_missing)),
        ("corrupt", f"[red]{cmap.chunks_corrupt}[/]" if cmap.chunks_corrupt else "0"),
        ("bytes stored", human_bytes(stored)),
        ("logical bytes", human_bytes(cmap.logical_bytes)),
        ("compression ratio", f"{cmap.logical_bytes / stored:.2f}x" if stored else "-"),
        ("verified", _verified_text(cmap, verify)),
    ]
    if cmap.chunks_unknown:
        rows.insert(8, ("unknown", str(cmap.chunks_unknown)))
    if cmap.shard_nbytes is not None:
        rows.insert(4, ("shards stored", f"{cmap.shards_present} of {cmap.shards_total}"))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    blocks, factor = cmap.aggregated(64)
    styles = {
        MISSING: ("·", "grey50"),
        PRESENT: ("█", "green"),
        CORRUPT: ("X", "bold red"),
        UNKNOWN: ("?", "magenta"),
        PARTIAL: ("▒", "green"),
    }
    grid = blocks if blocks.ndim == 2 else blocks.reshape(1, -1)
    picture = Text()
    for row in grid:
        for value in row:
            char, style = styles.get(int(value), ("?", ""))
            picture.append(char, style=style)
        picture.append("\n")
    note = "chunk grid"
    if cmap.state.ndim > 2:
        note += ", leading axes combined"
    if any(f > 1 for f in factor):
        note += f", each cell {'x'.join(map(str, factor))} chunks"
    console.print(f"[dim]{note}: █ present  · missing  ▒ partly  X corrupt  ? unknown[/]")
    console.print(picture, end="")
    for key in cmap.corrupt_keys[:50]:
        problem = cmap.problems.get(key, "")
        shown = escape(printable(key, one_line=True))
        console.print(f"[red]corrupt[/] {shown}: {escape(printable(problem))}")
    if len(cmap.corrupt_keys) > 50:
        console.print(f"... and {len(cmap.corrupt_keys) - 50} more corrupt keys (see --json)")
    for warn in cmap.warnings:
        console.print(f"[yellow]warning:[/] {escape(printable(warn))}")
