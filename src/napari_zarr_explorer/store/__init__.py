"""The one I/O layer: every byte this package reads from a store passes through here.

- :mod:`.locate`: what the user typed (a path or URL) -> :class:`Location`;
- :mod:`.keys`: normalisation and confinement of keys found in metadata (:func:`safe_join`);
- :mod:`._localstore`, :mod:`.remote`: read-only stores, confined to their folder or URL prefix;
- :mod:`.meta`: bounded reads of metadata documents and the checks an array must pass;
- :mod:`.decode`: the guarded decoder (no chunk decodes beyond its declared size);
- :mod:`.open`: stores, and zarr arrays and groups opened only from checked metadata;
- :mod:`.n5`: N5 containers presented as Zarr v3 (read only), blocks checked before decoding;
- :mod:`.imaging`: bounded decoding of image codecs, lzw and zfpy, and what each codec is;
- :mod:`.batch`: arrays laid out like a checked template (plate wells), read in one batch;
- :mod:`.bulk`: regions of local arrays read and decoded in bulk (:func:`bulk_read`).

Importing this package does not import zarr; the remote names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer.store.bulk import bulk_read
from napari_zarr_explorer.store.decode import (
    ChunkSizeError,
    bulk_chunk_checker,
    chunk_bound,
    decode_bounded,
    fast_chunk_decoder,
    guard_decoding,
    guarded_v2_compressor,
    v2_expansion,
)
from napari_zarr_explorer.store.keys import is_url, safe_join
from napari_zarr_explorer.store.locate import REMOTE_PROTOCOLS, Location, parse_location
from napari_zarr_explorer.store.meta import (
    MAX_METADATA_BYTES,
    NodeMeta,
    check_array_metadata,
    codec_ids,
    consolidated_nodes,
    join_key,
    parse_json,
    read_json,
    read_node,
    read_nodes,
)
from napari_zarr_explorer.store.open import (
    array_from_metadata,
    open_array,
    open_group,
    open_store,
    open_url,
)
from napari_zarr_explorer.store.read import read_bytes, read_bytes_async, read_limited

# names of .remote, which imports zarr and aiohttp-backed file systems: loaded on first use
_REMOTE = frozenset(
    {
        "ChunkFetchError",
        "RemoteOptions",
        "RemoteStore",
        "fetch_many",
        "open_remote_store",
        "read_region",
    }
)

__all__ = [
    "MAX_METADATA_BYTES",
    "REMOTE_PROTOCOLS",
    "ChunkFetchError",
    "ChunkSizeError",
    "Location",
    "NodeMeta",
    "RemoteOptions",
    "RemoteStore",
    "array_from_metadata",
    "bulk_chunk_checker",
    "bulk_read",
    "check_array_metadata",
    "chunk_bound",
    "codec_ids",
    "consolidated_nodes",
    "decode_bounded",
    "fast_chunk_decoder",
    "fetch_many",
    "guard_decoding",
    "guarded_v2_compressor",
    "is_url",
    "join_key",
    "open_array",
    "open_group",
    "open_remote_store",
    "open_store",
    "open_url",
    "parse_json",
    "parse_location",
    "read_bytes",
    "read_bytes_async",
    "read_json",
    "read_limited",
    "read_node",
    "read_nodes",
    "read_region",
    "safe_join",
    "v2_expansion",
]

if TYPE_CHECKING:  # pragma: no cover
    from napari_zarr_explorer.store.remote import (
        ChunkFetchError,
        RemoteOptions,
        RemoteStore,
        fetch_many,
        open_remote_store,
        read_region,
    )


def __getattr__(name: str) -> Any:
    if name not in _REMOTE:
        raise AttributeError(f"module 'napari_zarr_explorer.store' has no attribute {name!r}")
    value = getattr(importlib.import_module("napari_zarr_explorer.store.remote"), name)
    globals()[name] = value
    return value
