"""``napari-zarr-explorer estimate URL``: preview candidate encodings on sampled chunks."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer._cli._common import (
    add_array_arguments,
    printable,
    storage_options,
)

if TYPE_CHECKING:
    from napari_zarr_explorer.estimate import EstimateReport

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``estimate`` sub-command to *subparsers*."""
    parser = subparsers.add_parser(
        "estimate",
        help="ratio and speed of candidate encodings on sampled chunks (writes nothing)",
        description=(
            "Encode a random sample of chunks of one array with each candidate compressor and "
            "report the compression ratio (logical size / projected stored size), encode and "
            "decode speed, and the projected stored size and object count of the whole array. "
            "Nothing is written."
        ),
    )
    add_array_arguments(parser)
    parser.add_argument(
        "--compressor",
        action="append",
        metavar="SPEC",
        help="candidate compressor, repeatable: zstd:5, blosc-zstd:5, blosc-lz4, "
        "blosc-lz4hc, gzip:6, none, zfp:rate=8, bitround:7+zstd:3 (default: zstd:3)",
    )
    parser.add_argument(
        "--shuffle", choices=("none", "byte", "bit"), default=None, help="blosc shuffle"
    )
    parser.add_argument(
        "--chunks",
        default=None,
        help="candidate chunk shape, e.g. 1,1,256,256 (default: the array's own chunks)",
    )
    parser.add_argument(
        "--shards",
        default=None,
        help="candidate shard shape, e.g. 1,1,2048,2048, or 'none' (default: the array's own "
        "sharding)",
    )
    parser.add_argument("--sample", type=int, default=16, help="chunks to sample (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sample")
    parser.add_argument(
        "--all-arrays",
        action="store_true",
        help="estimate every array that `recompress` of the node would write (every level, "
        "labels, the images of a group), each at its output chunks and shards, and the total",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``estimate``; return the exit code."""
    from rich.markup import escape
    from rich.table import Table

    from napari_zarr_explorer._cli._common import (
        out_console,
        print_json,
    )
    from napari_zarr_explorer._cli.chunks import _default_array
    from napari_zarr_explorer._html import human_bytes, plural
    from napari_zarr_explorer.estimate import CANDIDATE_COLUMNS, NOTHING_TO_SAMPLE, estimate

    options = storage_options(args)
    if args.all_arrays:
        return _run_all(args, options)
    path = args.array if args.array is not None else _default_array(args.url, options)
    candidates = _candidates(args, args.compressor or ["zstd:3"])
    report = estimate(
        args.url,
        path,
        candidates,
        sample=args.sample,
        seed=args.seed,
        level=args.level,
        storage_options=options,
    )
    if args.json:
        print_json(report.to_dict())
        return 0
    ratio = report.ratio
    from napari_zarr_explorer.store.locate import node_where

    where = node_where(report.url, report.path)
    out_console.print(
        f"[bold]{escape(printable(where, one_line=True))}[/]: "
        f"{list(report.shape)} {report.dtype}, chunks {list(report.chunk_shape)}"
        + (f", shards {list(report.shard_shape)}" if report.shard_shape else "")
        + (
            "; stored size now unknown"
            if report.bytes_stored is None
            else f"; now {human_bytes(report.bytes_stored)} in {report.objects_text}"
        )
        + (f", compression ratio {ratio:.2f}x" if ratio else "")
    )
    warnings = [w for w in report.warnings if w != NOTHING_TO_SAMPLE]
    if NOTHING_TO_SAMPLE in report.warnings:  # no table of numbers measured on nothing
        out_console.print(escape(NOTHING_TO_SAMPLE))
        _print_problems(report, warnings)
        return 0
    measured = any(not c.problems and c.projected_bytes is not None for c in report.candidates)
    if not measured and not all(c.problems for c in report.candidates):
        # no sampled chunk could be read (the warnings say why): no table of nothing measured
        _print_problems(report, warnings)
        return 0
    if measured:
        n = report.chunks_sampled
        asked = f", {report.sample} asked" if n < report.sample else ""
        title = f"sample of {plural(n, 'chunk')}{asked} (seed {report.seed})"
    else:  # every candidate is "not possible": none was tried on a chunk
        title = "no candidate is possible: nothing sampled"
    table = Table(title=title)
    for col in CANDIDATE_COLUMNS:
        table.add_column(col, justify="left" if col == "candidate" else "right")
    table.add_column("max error", justify="right")
    best = report.best
    for c in report.candidates:
        if c.problems:  # the reasons follow the table, whole: a cell would stretch every column
            table.add_row(escape(printable(c.label)), "[red]not possible[/]")
            continue
        style = "bold green" if best is not None and c is best else ""
        table.add_row(
            escape(printable(c.label)),
            f"{c.projected_ratio:.2f}x" if c.projected_ratio else "-",
            f"{c.encode_mbps:.0f}" if c.encode_mbps else "-",
            f"{c.decode_mbps:.0f}" if c.decode_mbps else "-",
            human_bytes(c.projected_bytes) if c.projected_bytes is not None else "-",
            str(c.projected_objects) if c.projected_objects is not None else "-",
            f"{c.error.max_abs:.3g}" if c.error is not None else "-",
            style=style,
        )
    out_console.print(table)
    _print_problems(report, warnings)
    return 0


def _candidates(args: argparse.Namespace, compressors: list[str]) -> list[dict[str, Any]]:
    """Return the command line's candidates: each compressor with the layout and shuffle given."""
    any_blosc = any(c.strip().lower().startswith("blosc") for c in compressors)
    return [
        {
            "compressor": c,
            # --shuffle is a blosc option: it applies to the blosc candidates among several.
            "shuffle": args.shuffle
            if (not any_blosc or c.strip().lower().startswith("blosc"))
            else None,
            "chunks": args.chunks,
            "shards": args.shards,
        }
        for c in compressors
    ]


def _run_all(args: argparse.Namespace, options: dict[str, Any] | None) -> int:
    """``estimate --all-arrays``: every array a recompression of the node writes, and the total.

    The run is planned as ``recompress`` would plan it with the first candidate (so a choice it
    refuses is refused here, with its message); each array is sampled at its output layout.
    """
    from rich.markup import escape
    from rich.table import Table

    from napari_zarr_explorer._cli._common import out_console, print_json
    from napari_zarr_explorer._html import human_bytes, plural
    from napari_zarr_explorer.errors import ExplorerError
    from napari_zarr_explorer.estimate import estimate_run, growth_warning
    from napari_zarr_explorer.store import parse_location

    if args.level is not None:
        raise ExplorerError(
            "--level picks one level; --all-arrays estimates every level.",
            hint="Drop one of them.",
        )
    path = (args.array or "").strip("/")
    source = parse_location(args.url, options).child(path) if path else args.url
    compressors = args.compressor or ["zstd:3"]
    candidates = _candidates(args, compressors)
    first = candidates[0]
    plan_kwargs = {k: first[k] for k in ("compressor", "shuffle", "chunks", "shards")}
    run = estimate_run(
        args.url,
        path,
        str(source.url) if not isinstance(source, str) else source,
        candidates,
        plan_kwargs,
        args.sample,
        seed=args.seed,
        storage_options=options,
        fallback=False,
    )
    if args.json:
        print_json(run.to_dict())
        return 0
    now = run.bytes_now

    def known(size: int | None) -> str:  # a size a store cannot tell is said in words
        return "unknown" if size is None else human_bytes(size)

    count = len(run.arrays) + run.unsampled
    out_console.print(
        f"[bold]{escape(printable(str(parse_location(run.source)), one_line=True))}[/]: "
        f"recompress writes {plural(count, 'array')}; "
        + ("stored size now unknown" if now is None else f"now {human_bytes(now)}")
        + f" (logical {human_bytes(run.nbytes)})"
    )
    table = Table()
    table.add_column("array")
    table.add_column("now", justify="right")
    for name in run.compressors:
        table.add_column(escape(printable(name)), justify="right")
    for a in run.arrays:
        cells = []
        for i in range(len(run.compressors)):
            size = run.projected_of(a, i)
            cells.append(
                "[red]not possible[/]"
                if a.report.candidates[i].problems
                else human_bytes(size)
                if size is not None
                else "-"
            )
        table.add_row(escape(printable(a.path or "/")), known(a.bytes_now), *cells)
    if run.unsampled:
        table.add_row(f"{run.unsampled} more, not sampled", "-", *("-" for _ in run.compressors))
    best = run.best
    totals = []
    for i in range(len(run.compressors)):
        text = run.total_text(i)
        if text is None:
            totals.append("[red]not possible[/]")
            continue
        totals.append(f"[bold green]{text}[/]" if i == best else text)
    table.add_row("[bold]total[/]", known(now), *totals, end_section=True)
    out_console.print(table)
    out_console.print(escape(run.sampled_text()))
    if run.unsampled_text:
        out_console.print(escape(run.unsampled_text))
    for i, name in enumerate(run.compressors):
        for problem in run.problems(i):
            out_console.print(f"[red]{escape(printable(name))}:[/] {escape(printable(problem))}")
    for warn in run.warnings():  # each names its array
        out_console.print(f"[yellow]warning:[/] {escape(printable(warn))}")
    growth = growth_warning(run, 0, pick="a column of the table with a smaller total")
    if growth:
        out_console.print(f"[bold yellow]{escape(printable(growth))}[/]")
    return 0


def _print_problems(report: EstimateReport, warnings: list[str]) -> None:
    """Print each candidate's problems (whole, one a line), then *warnings*.

    The header names the array: a message that starts with its location is printed without it.
    """
    from rich.markup import escape

    from napari_zarr_explorer._cli._common import out_console
    from napari_zarr_explorer.store.locate import node_where

    prefix = node_where(report.url, report.path) + ": "

    def local(text: str) -> str:
        return escape(printable(text.removeprefix(prefix)))

    for c in report.candidates:
        for problem in c.problems:
            out_console.print(f"[red]{escape(printable(c.label))}:[/] {local(problem)}")
    for warn in warnings:
        out_console.print(f"[yellow]warning:[/] {local(warn)}")
