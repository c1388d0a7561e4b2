"""``napari-zarr-explorer inspect URL``: the hierarchy, arrays, codecs and bytes of a store."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer._cli._common import (
    add_storage_options,
    printable,
    storage_options,
)
from napari_zarr_explorer._html import plural

if TYPE_CHECKING:
    from rich.tree import Tree

    from napari_zarr_explorer.report import NodeReport, StoreReport

__all__ = ["EXIT_PROBLEMS", "register", "run"]

EXIT_PROBLEMS = 3
"""Exit code when the report was made but some nodes (or the store) have errors."""


def register(subparsers: Any) -> None:
    """Add the ``inspect`` sub-command to *subparsers*."""
    parser = subparsers.add_parser(
        "inspect",
        help="show the hierarchy, arrays, chunks, shards, codecs and bytes of a store",
        description=(
            "Show what a Zarr / OME-Zarr store holds: groups and arrays with shape, dtype, "
            "chunk and shard shapes, codec pipeline, bytes stored and compression ratio, and "
            "the OME metadata. Exit code 0 when every node could be read, 3 when some could "
            "not (they are reported, the others too), 1 when the store could not be opened "
            "(unreachable, no Zarr metadata at the URL, no node at --path)."
        ),
    )
    parser.add_argument("url", metavar="URL", help="path or URL of the store")
    add_storage_options(parser)
    parser.add_argument(
        "--path",
        "--array",
        dest="path",
        default="",
        metavar="PATH",
        help="start at this node (group or array) of the store; default: its root",
    )
    parser.add_argument(
        "--max-nodes",
        type=int,
        default=500,
        help="report at most this many nodes (default 500); go deeper with --path",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--attributes",
        action="store_true",
        help="also print every node's attributes in the tree",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``inspect``; return the exit code."""
    from napari_zarr_explorer._cli._common import out_console, print_json
    from napari_zarr_explorer.report import inspect

    report = inspect(
        args.url,
        max_nodes=args.max_nodes,
        path=args.path,
        storage_options=storage_options(args),
    )
    if args.json:
        print_json(report.to_dict())
    else:
        out_console.print(render_tree(report, attributes=args.attributes))
        out_console.print(_totals(report))
    return EXIT_PROBLEMS if report.problems else 0


def _node_label(node: NodeReport, name: str | None = None) -> str:
    """One line about *node*, starting with *name* (its own by default; ``""``: no name)."""
    from rich.markup import escape

    from napari_zarr_explorer._html import human_bytes
    from napari_zarr_explorer.report import ArrayReport, GroupReport

    name = escape(printable(node.name if name is None else name, one_line=True))
    if isinstance(node, ArrayReport):
        shard = f" shards {_shape(node.shard_shape)}" if node.shard_shape else ""
        ratio = node.ratio
        text = (
            _named(name, "bold cyan") + f"[dim]array v{node.zarr_format}[/] {_shape(node.shape)} "
            f"{escape(printable(node.dtype))} chunks {_shape(node.chunk_shape)}{shard} "
            f"[magenta]{escape(printable(node.codecs_text))}[/] "
            f"stored {human_bytes(node.bytes_stored)}"
        )
        if ratio:
            text += f" [green]compression ratio {ratio:.2f}x[/]"
        return text
    if isinstance(node, GroupReport):
        text = _named(name, "bold") + f"[dim]group v{node.zarr_format}[/]"
        if node.ome:
            text += f" [yellow]{escape(printable(node.ome.summary))}[/]"
        return text
    return _named(name, "bold red") + "[red]unreadable[/]"


def _named(name: str, style: str) -> str:
    return f"[{style}]{name}[/] " if name else ""


def _shape(shape: Any) -> str:
    return "x".join(str(s) for s in shape) if shape else "()"


_MAX_DEPTH = 12
"""Deepest nesting drawn; deeper nodes are listed under their ancestor at this depth."""


def _depth(path: str, start: str) -> int:
    rel = path[len(start) :].strip("/") if start else path
    return rel.count("/") + 1 if rel else 0


def render_tree(report: StoreReport, *, attributes: bool = False) -> Tree:
    """Render the report as a :class:`rich.tree.Tree`."""
    import json

    from rich.markup import escape
    from rich.tree import Tree

    title = f"[bold]{escape(printable(report.url, one_line=True))}[/]" + (
        f"/{escape(printable(report.path, one_line=True))}" if report.path else ""
    )
    tree = Tree(title)
    branches: dict[str, Tree] = {report.path: tree}
    for node in report.nodes:
        if node.path == report.path:
            branch = tree
            tree.label = f"{title}  {_node_label(node, '')}"  # the title names it
        else:
            # Hang the node under its nearest reported ancestor, at most _MAX_DEPTH levels down
            # (deeper trees would not fit the terminal), naming it by its path from there.
            parts = node.path.split("/")
            anchor = report.path
            for n in range(len(parts) - 1, 0, -1):
                candidate = "/".join(parts[:n])
                if candidate in branches and _depth(candidate, report.path) <= _MAX_DEPTH:
                    anchor = candidate
                    break
            name = node.path[len(anchor) + 1 :] if anchor else node.path
            branch = branches.get(anchor, tree).add(_node_label(node, name))
        branches[node.path] = branch
        ome = getattr(node, "ome", None)
        for line in ome.coordinates_lines() if ome is not None else ():
            branch.add(f"[dim]{escape(printable(line, one_line=True))}[/]")
        for err in node.errors:
            branch.add(f"[red]error:[/] {escape(printable(err, one_line=True))}")
        for warn in node.warnings:
            branch.add(f"[yellow]warning:[/] {escape(printable(warn, one_line=True))}")
        if attributes and node.attributes:
            text = json.dumps(node.attributes, indent=1, default=str)
            if len(text) > 2000:
                text = text[:2000] + " ..."
            branch.add(f"[dim]{escape(printable(text))}[/]")
    if report.truncated:
        tree.add(
            f"[yellow]... more than {plural(report.max_nodes, 'node')}; go deeper with --path "
            f"{escape(printable(', '.join(report.more[:10])))}[/]"
        )
    for warn in report.warnings:
        tree.add(f"[yellow]warning:[/] {escape(printable(warn))}")
    for err in report.errors:
        tree.add(f"[red]error:[/] {escape(printable(err))}")
    return tree


def _totals(report: StoreReport) -> str:
    from napari_zarr_explorer._html import human_bytes

    stored = report.bytes_stored
    text = (
        f"{plural(len(report.groups), 'group')}, {plural(len(report.arrays), 'array')}; stored "
        f"{human_bytes(stored)}, logical {human_bytes(report.logical_bytes)}"
    )
    if stored and report.logical_bytes:
        text += f", compression ratio {report.logical_bytes / stored:.2f}x"
    problems = len(report.problems)
    if problems:
        text += f"; [red]{plural(problems, 'problem')}[/]"
    return text
