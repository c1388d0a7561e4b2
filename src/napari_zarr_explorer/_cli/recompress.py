"""``napari-zarr-explorer recompress``: rewrite a dataset with new codecs, chunks and shards."""

from __future__ import annotations

import argparse
from typing import Any

from napari_zarr_explorer._cli._common import CODEC_HELP, add_storage_options, storage_options

__all__ = ["register", "run"]

_EPILOG = """\
examples:
  recompress in.zarr out.zarr --compressor zstd:5 --chunks 1,1,256,256 --shards 1,1,2048,2048
  recompress in.ome.zarr out.ome.zarr --zarr-format 3        (OME 0.4 -> 0.5)
  recompress in.zarr out.zarr --resume                        (continue an interrupted run)
  recompress in.zarr new.zarr --replace                       (swap in; keeps in.zarr.backup-*)
  recompress in.zarr out.zarr --compressor shuffle+zstd:5      (a lossless filter first)
  recompress f.zarr out.zarr --compressor lerc:maxerror=0.001  (lossy: verified within 0.001)
"""


def register(subparsers: Any) -> None:
    """Add the ``recompress`` sub-command."""
    p = subparsers.add_parser(
        "recompress",
        help="rewrite arrays, groups or OME hierarchies with new codecs, chunks and shards",
        description="Rewrite a Zarr array, group or whole OME-Zarr hierarchy (all levels, labels, "
        "plates) into a new store with a new compressor, chunk and shard shape or Zarr format. "
        "Every written object is read back and compared with the source before success is "
        "reported. The source is never modified (except --replace, which renames it to a "
        "backup after a verified run).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", metavar="SRC", help="source path or URL")
    p.add_argument("dst", metavar="DST", help="output path or URL (must not exist)")
    p.add_argument(
        "--compressor",
        default="zstd:3",
        help=CODEC_HELP,
    )
    p.add_argument(
        "--shuffle", choices=("none", "byte", "bit"), help="blosc shuffle (default: byte)"
    )
    p.add_argument("--chunks", help="chunk shape for the full rank, e.g. 1,1,256,256")
    p.add_argument("--shards", help="shard shape for the full rank, e.g. 1,1,2048,2048, or 'none'")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3, help="default: 3")
    p.add_argument(
        "--ome-version",
        choices=("0.6",),
        help="convert OME-NGFF 0.4/0.5 metadata to 0.6 (coordinate systems; Zarr v3). "
        "Default: 0.5 for Zarr v3, 0.4 for Zarr v2; 0.6 sources are copied unchanged",
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler, e.g. tcp://host:8786")
    p.add_argument(
        "--threads",
        type=int,
        help="local worker threads (default: one per CPU, two more with a remote store)",
    )
    p.add_argument(
        "--task-size",
        type=float,
        default=16.0,
        metavar="MIB",
        help="logical MiB one task aims at when shards/chunks are smaller (default: 16)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in DST")
    p.add_argument("--overwrite", action="store_true", help="delete an existing DST first")
    p.add_argument(
        "--replace", action="store_true", help="after verifying, swap DST in for SRC (backup kept)"
    )
    p.add_argument("--no-verify", action="store_true", help="do not read back and compare")
    add_storage_options(p, dst=True)
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan (arrays, layouts) and write nothing"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; return the exit code."""
    from napari_zarr_explorer._cli._common import cancel_on_sigint, err_console, print_report
    from napari_zarr_explorer.recompress import RichProgress, plan_recompress, recompress

    if args.dry_run:
        plan = plan_recompress(
            args.src,
            compressor=args.compressor,
            shuffle=args.shuffle,
            chunks=args.chunks,
            shards=args.shards,
            zarr_format=args.zarr_format,
            storage_options=storage_options(args),
            ome_version=args.ome_version,
        )
        print_report(plan, args.json)
        return 0

    progress_bar = RichProgress(err_console, disable=args.json and not err_console.is_terminal)
    with (
        cancel_on_sigint(
            "[yellow]Stopping after the running tasks (press Ctrl-C again to abort)...[/]"
        ) as cancel,
        progress_bar,
    ):
        report = recompress(
            args.src,
            args.dst,
            compressor=args.compressor,
            shuffle=args.shuffle,
            chunks=args.chunks,
            shards=args.shards,
            zarr_format=args.zarr_format,
            ome_version=args.ome_version,
            resume=args.resume,
            overwrite=args.overwrite,
            verify=not args.no_verify,
            replace=args.replace,
            scheduler=args.scheduler,
            threads=args.threads,
            task_bytes=max(1, int(args.task_size * 1024 * 1024)),
            progress=progress_bar,
            cancel=cancel,
            storage_options=storage_options(args),
            dst_storage_options=storage_options(args, "--dst-storage-options"),
        )
    print_report(report, args.json)
    if report.cancelled:
        err_console.print(
            f"[yellow]Cancelled.[/] The output is marked incomplete; continue with: "
            f"napari-zarr-explorer recompress {args.src} {args.dst} --resume",
            markup=True,
        )
        return 130
    if not report.ok:
        from napari_zarr_explorer._cli._common import print_error

        print_error(
            f"Verification found {len(report.mismatches)} problem(s); the output stays marked "
            "incomplete and the source was not replaced."
        )
        return 1
    return 0
