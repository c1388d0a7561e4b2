"""The napari reader: cheap checks in ``napari_get_reader``, then ``layers.open_layers``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["napari_get_reader", "read_zarr"]

LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[Any], list[LayerData]]

# the last one is N5's
_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata", "attributes.json")
_REMOTE = ("http://", "https://", "s3://", "gs://", "gcs://")


def _single(path: Any) -> str | None:
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    return path if isinstance(path, str) and path.strip() else None


def _looks_like_zarr(text: str) -> bool:
    text = text.strip()
    low = text.lower()
    if low.startswith(_REMOTE):
        return True  # remote: no network access here; the reader reports problems
    if low.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            return False
        text = unquote(parts.path)
    elif "://" in text:
        return False
    try:
        p = Path(text).expanduser()
        if not p.is_dir():
            return False
        return any((p / m).is_file() for m in _MARKERS)
    except OSError:
        return False


def napari_get_reader(path: str | list[str]) -> ReaderFunction | None:
    """Return :func:`read_zarr` when *path* is a Zarr / OME-Zarr store, else None.

    Only cheap checks are made: a local directory holding Zarr metadata, a ``file://`` URL of
    one, or a remote URL (``http(s)://``, ``s3://``, ``gs://``). Lists of more than one path are
    declined.
    """
    one = _single(path)
    if one is None or not _looks_like_zarr(one):
        return None
    return read_zarr


def read_zarr(path: str | list[str]) -> list[LayerData]:
    """Open *path* (a store path or URL, or a list of one) as napari layer data."""
    fetched_ahead = _prefetch(path)
    one = _single(path)
    if one is None:
        raise ValueError("Open one Zarr store at a time.")
    if fetched_ahead:
        # a plain remote image is shown without waiting for zarr-python's import
        from napari_zarr_explorer.layers import open_first_image

        layers = open_first_image(one)
        if layers is not None:
            return layers
    from napari_zarr_explorer.layers import open_layers

    return open_layers(one)


def _prefetch(path: Any) -> bool:
    """Start the first metadata requests of an ``http(s)://`` store before importing zarr.

    The reader's imports (zarr, numcodecs...) take longer than a few round trips to a distant
    server: the root metadata and its levels' are requested meanwhile, in threads, by the store
    layer's HTTP client, which hands its answers to the store opened next for the same URL.
    Returns whether the requests were started.
    """
    one = _single(path)
    if one is None:
        return False
    try:
        from napari_zarr_explorer.store.limits import max_metadata_bytes
        from napari_zarr_explorer.store.locate import parse_location
        from napari_zarr_explorer.store.remote_options import lean_path_options

        loc = parse_location(one)
        opts = lean_path_options(loc)  # also what layers.open_first_image asks
        if opts is None:
            return False
        from napari_zarr_explorer.store._http import prefetch

        client = prefetch(
            loc.url,
            timeout=opts.timeout,
            max_connections=opts.concurrency,
            limit=max_metadata_bytes(),
        )
    except Exception:  # opening reports every problem; fetching ahead is an optimisation
        return False
    return client is not None
