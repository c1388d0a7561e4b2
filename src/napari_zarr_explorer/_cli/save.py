"""``napari-zarr-explorer save``: write arrays and stores as one OME-Zarr image with labels.

The command line has no napari layers, so its inputs are data files: any Zarr / OME-Zarr store
the reader opens (its images and labels, with their placement, channels and colours), NumPy
``.npy`` files and TIFF files. They are combined as :func:`napari_zarr_explorer.writer.save`
combines layers: images of the same shape become channels, ``--labels`` inputs become labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_zarr_explorer._cli._common import CODEC_HELP, add_storage_options, storage_options
from napari_zarr_explorer.errors import ExplorerError

__all__ = ["load_input", "register", "run"]

_EPILOG = """\
examples:
  save nuclei.npy membrane.npy cells.ome.zarr --scale 0.5,0.2,0.2 --axes z,y,x
  save image.tif out.ome.zarr --labels seg.npy --ome-version 0.4
  save old.zarr new.ome.zarr --compressor blosc-zstd:5 --shards none
inputs: Zarr / OME-Zarr stores (paths or URLs), .npy files (read lazily), .tif/.tiff files.
Give the options after OUTPUT (argparse cannot tell OUTPUT from an option's value otherwise).
"""


def register(subparsers: Any) -> None:
    """Add the ``save`` sub-command."""
    p = subparsers.add_parser(
        "save",
        help="write arrays and stores as one OME-Zarr image (channels and labels), verified",
        description="Write one OME-Zarr image from data files: images of the same shape become "
        "its channels, --labels inputs its label images. Zarr / OME-Zarr inputs keep their "
        "placement, channel names and colours; .npy and .tif inputs take --scale, --translate, "
        "--axes and --units. Every written object is read back and compared before success is "
        "reported; an existing OUTPUT is replaced only with --overwrite, by writing beside it "
        "and swapping after verification.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="image inputs")
    p.add_argument("output", metavar="OUTPUT", help="output folder (.ome.zarr) or URL")
    p.add_argument(
        "--labels", metavar="INPUT", action="append", default=[], help="a labels input (repeat)"
    )
    p.add_argument("--ome-version", choices=("0.5", "0.4"), default="0.5", help="default: 0.5")
    p.add_argument(
        "--compressor",
        default="zstd:3",
        help=CODEC_HELP,
    )
    p.add_argument("--chunks", help="chunk shape in OME axis order, e.g. 1,1,256,256")
    p.add_argument("--shards", help="shard shape (0.5 only), e.g. 1,1,2048,2048, or 'none'")
    p.add_argument("--scale", help="pixel size per axis of array inputs, e.g. 2,0.5,0.5")
    p.add_argument("--translate", help="origin per axis of array inputs, e.g. 0,10,10")
    p.add_argument("--axes", help="axis names of array inputs, e.g. z,y,x")
    p.add_argument("--units", help="unit of every space axis of array inputs, e.g. micrometer")
    p.add_argument("--overwrite", action="store_true", help="replace an existing Zarr OUTPUT")
    p.add_argument(
        "--threads",
        type=int,
        help="worker threads (default: one per CPU, two more with a remote output)",
    )
    add_storage_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ExplorerError(f"--{what} {text!r}: not a comma-separated list of numbers.") from None


def load_input(
    path: str, kind: str, meta: dict[str, Any], opts: dict[str, Any] | None = None
) -> list[tuple[Any, dict[str, Any], str]]:
    """Open one input as ``(data, kwargs, layer_type)`` tuples (lazily where possible)."""
    low = path.lower().rstrip("/")
    name = Path(low).name.split(".")[0] or kind
    if low.endswith(".npy"):
        import numpy as np

        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ExplorerError(f"{path}: cannot read as a NumPy .npy file: {exc}") from None
        return [(data, {"name": name, **meta}, kind)]
    if low.endswith((".tif", ".tiff")):
        try:
            import tifffile
        except ImportError:  # pragma: no cover - napari installs it
            raise ExplorerError(
                f"{path}: reading TIFF needs tifffile.", hint="pip install tifffile"
            ) from None
        try:
            data = tifffile.imread(path, aszarr=False)
        except Exception as exc:
            raise ExplorerError(f"{path}: cannot read as TIFF: {exc}") from None
        return [(data, {"name": name, **meta}, kind)]
    from napari_zarr_explorer.layers import open_layers

    layers = open_layers(path, storage_options=opts)
    if kind == "labels":
        return [(d, {**k, "channel_axis": None}, "labels") for d, k, _ in layers[:1]]
    return [(d, k, t) for d, k, t in layers]


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; return the exit code."""
    from napari_zarr_explorer._cli._common import cancel_on_sigint, err_console, print_report
    from napari_zarr_explorer.recompress import RichProgress
    from napari_zarr_explorer.writer import save

    if not args.inputs and not args.labels:
        raise ExplorerError("Nothing to save.", hint="Give at least one INPUT before OUTPUT.")
    meta: dict[str, Any] = {}
    scale = _floats(args.scale, "scale")
    translate = _floats(args.translate, "translate")
    if scale:
        meta["scale"] = scale
    if translate:
        meta["translate"] = translate
    if args.axes:
        meta["axis_labels"] = tuple(a.strip() for a in args.axes.split(","))
    if args.units:
        meta["units"] = args.units
    opts = storage_options(args)
    layers: list[tuple[Any, dict[str, Any], str]] = []
    for path in args.inputs:
        layers += load_input(path, "image", meta, opts)
    for path in args.labels:
        layers += load_input(path, "labels", meta, opts)
    # layers read from stores give channels as one multichannel layer; the writer handles both
    bar = RichProgress(err_console, disable=args.json and not err_console.is_terminal, label="save")
    with cancel_on_sigint("[yellow]Stopping after the running tasks...[/]") as cancel, bar:
        report = save(
            layers,
            args.output,
            ome_version=args.ome_version,
            compressor=args.compressor,
            chunks=args.chunks,
            shards=args.shards,
            overwrite=args.overwrite,
            progress=bar,
            cancel=cancel,
            threads=args.threads,
            storage_options=opts,
        )
    print_report(report, args.json)
    if report.cancelled:
        err_console.print("[yellow]Cancelled.[/] Nothing was kept.", markup=True)
        return 130
    return 0 if report.ok else 1
