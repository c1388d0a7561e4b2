"""``napari-zarr-explorer transform PATH SOURCE TARGET COORDINATES``: OME-NGFF 0.6 points.

The command follows the CLI contract of the ``ome-zarr-transformations-conformance`` package (its
"dingus"): it reads the ``scene`` (and ``multiscales``) of the OME-Zarr at ``PATH``, finds the
transformation from the coordinate system ``SOURCE`` to ``TARGET`` (inverting transformations
where needed), applies it to ``COORDINATES`` (a JSON list of points) and prints
``{"coordinates": [[...], ...]}``. When it cannot (unknown system, no path, a transformation that
cannot be applied or inverted) it prints ``{"message": "..."}`` and exits with 1.

A coordinate system is named by its name, by ``GROUP#NAME`` for a system of an image below the
scene, or by the path of a level's array (its array coordinates).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from napari_zarr_explorer._cli._common import add_storage_options, storage_options

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``transform`` sub-command to *subparsers*."""
    parser = subparsers.add_parser(
        "transform",
        help="map points between two OME-NGFF 0.6 coordinate systems (JSON in, JSON out)",
        description=(
            "Transform points from the coordinate system SOURCE to TARGET of the OME-Zarr 0.6 "
            'scene or image at PATH. Prints {"coordinates": [...]}; on failure prints '
            '{"message": "..."} and exits with 1.'
        ),
    )
    parser.add_argument("path", metavar="PATH", help="OME-Zarr scene or image (path or URL)")
    parser.add_argument("source", metavar="SOURCE", help="source coordinate system name")
    parser.add_argument("target", metavar="TARGET", help="target coordinate system name")
    parser.add_argument(
        "coordinates", metavar="COORDINATES", help="JSON list of points, e.g. '[[1, 2], [3, 4]]'"
    )
    add_storage_options(parser)
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    sys.stdout.write(json.dumps({"message": message}) + "\n")
    sys.stdout.flush()
    return 1


def _parse_points(text: str) -> list[list[float]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"COORDINATES is not JSON ({exc.msg}).") from None
    if (
        not isinstance(value, list)
        or not all(isinstance(p, list) and p for p in value)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for p in value
            for v in p
        )
        or len({len(p) for p in value}) > 1
    ):
        raise ValueError("COORDINATES must be a JSON list of points of equal length.")
    return [[float(v) for v in p] for p in value]


def run(args: argparse.Namespace) -> int:
    """Run ``transform``; return the exit code."""
    from napari_zarr_explorer.errors import ExplorerError
    from napari_zarr_explorer.ome.scene import load_graph
    from napari_zarr_explorer.ome.transforms import transform_points
    from napari_zarr_explorer.store import open_store, parse_location

    try:
        points = _parse_points(args.coordinates)
        location = parse_location(args.path, storage_options(args))
        scene = load_graph(open_store(location), "", where=location.shown)
        src = scene.graph.resolve(args.source, default_path=scene.root)
        dst = scene.graph.resolve(args.target, default_path=scene.root)
        transform = scene.graph.find(src, dst)
        if not points:
            result: list[list[float]] = []
        else:
            ndim = scene.graph.ndim(src)
            if ndim is not None and len(points[0]) != ndim:
                return _fail(
                    f"the points have {len(points[0])} coordinates, the coordinate system "
                    f"{args.source!r} has {ndim} axes."
                )
            result = transform_points(transform, points)
    except (ExplorerError, ValueError) as exc:
        return _fail(getattr(exc, "message", None) or str(exc))
    if not all(math.isfinite(v) for p in result for v in p):
        return _fail("the transformation gives non-finite coordinates.")
    out: dict[str, Any] = {"coordinates": result}
    if transform.type != "identity" or transform.name:
        out["message"] = transform.describe()
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0
