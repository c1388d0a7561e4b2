"""Limits of the store layer, and how to raise them (environment variables).

- ``NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES`` (default 256 MiB): the largest metadata document
  (``zarr.json``, ``.zarray``, ``.zattrs``, ``.zmetadata``...) that is read. It is enforced
  while reading: the size of a local file or the ``Content-Length`` of a response is checked
  before the body is read, and a body without a length is cut off at the limit.
- ``MAX_CODEC_DEPTH`` (8): how deeply codecs may nest (``sharding_indexed`` inside
  ``sharding_indexed``), and ``MAX_JSON_DEPTH`` (128): how deeply a metadata document may
  nest; deeper documents are refused as malformed metadata.
"""

from __future__ import annotations

import os

from napari_zarr_explorer.errors import ExplorerError, MetadataError

__all__ = [
    "MAX_CODEC_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_METADATA_BYTES",
    "METADATA_LIMIT_ENV",
    "max_metadata_bytes",
    "metadata_too_large",
]

#: Default largest metadata document read (consolidated metadata of big hierarchies stays well
#: below).
MAX_METADATA_BYTES = 256 * 1024 * 1024

#: Environment variable that changes :data:`MAX_METADATA_BYTES`.
METADATA_LIMIT_ENV = "NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES"

#: Deepest nesting of codecs accepted (sharding inside sharding ...); real data uses 1 or 2.
MAX_CODEC_DEPTH = 8

#: Deepest nesting of lists and objects in a metadata document (OME metadata needs about 8).
MAX_JSON_DEPTH = 128


def max_metadata_bytes() -> int:
    """Return the largest metadata document read, in bytes.

    ``NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES`` overrides the default of 256 MiB.

    Raises
    ------
    ExplorerError
        When the environment variable is not a positive integer.
    """
    raw = os.environ.get(METADATA_LIMIT_ENV, "").strip()
    if not raw:
        return MAX_METADATA_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ExplorerError(
            f"{METADATA_LIMIT_ENV}={raw!r} is not a positive number of bytes.",
            hint=f"Unset it or give a size in bytes, e.g. "
            f"{METADATA_LIMIT_ENV}={MAX_METADATA_BYTES}.",
        )
    return value


def metadata_too_large(where: str, size: int | None, limit: int) -> MetadataError:
    """Build the error for a metadata document beyond *limit* (*size* None: endless)."""
    what = f"is {size} bytes" if size is not None else "goes on past the limit"
    return MetadataError(
        f"{where}: the metadata document {what}, more than the {limit} bytes allowed; it was "
        "not read.",
        hint=f"This is not a plausible Zarr metadata document. If it really is one, raise the "
        f"limit with {METADATA_LIMIT_ENV}.",
    )
