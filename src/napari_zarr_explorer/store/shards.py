"""Direct decoding of whole stored objects (chunks, or shards with their index) of simple arrays.

zarr-python decodes a shard by scheduling one task per inner chunk and filling the whole shard
shape, also where it lies beyond the array; for a plate overview of hundreds of small wells that
machinery costs more than the bytes. :func:`object_decoder` returns a direct decoder for arrays
with a simple pipeline (the one :func:`~napari_zarr_explorer.store.decode.fast_chunk_decoder`
takes, inside at most one ``sharding_indexed`` codec): the shard index is read and checked
(``crc32c``, offsets inside the object), each inner chunk decoded by the guarded decoder (no
chunk decompresses beyond its declared size), and only the part of the shard inside the array
is built. Anything else is left to zarr-python (None).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.errors import ExplorerError, MetadataError
from napari_zarr_explorer.store.decode import fast_chunk_decoder
from napari_zarr_explorer.store.shardindex import entry_masks, index_layout, parse_whole_shard

__all__ = ["object_decoder"]

ObjectDecoder = Callable[[bytes, Sequence[int]], npt.NDArray[Any]]


def _name(codec: Any) -> str | None:
    if isinstance(codec, str):
        return codec
    return codec.get("name") if isinstance(codec, Mapping) else None


def object_decoder(template: Any) -> ObjectDecoder | None:
    """Return ``decode(stored_bytes, object_coords)`` for the stored objects of *template*.

    Parameters
    ----------
    template
        A zarr array opened from checked metadata (:func:`~napari_zarr_explorer.store.open_array`).

    Returns
    -------
    callable or None
        ``decode(data, coords)`` returns the object at grid position *coords* (a chunk, or a
        shard cut to the array's extent) with missing inner chunks at the fill value; it raises
        (``ExplorerError``, ``ValueError``) for an object that does not decode. None when
        zarr-python must decode this array.
    """
    md = template.metadata.to_dict()
    stored = np.dtype(template.dtype)
    shape = tuple(int(n) for n in template.shape)
    codecs = md.get("codecs")
    sharding = (
        md.get("zarr_format") == 3
        and isinstance(codecs, list | tuple)
        and len(codecs) == 1
        and _name(codecs[0]) == "sharding_indexed"
    )
    if not sharding:
        found = fast_chunk_decoder(md, stored)
        if found is None:
            return None
        decode_chunk, _ = found
        return lambda data, coords: decode_chunk(data)
    conf = codecs[0].get("configuration") or {}
    inner = tuple(int(n) for n in conf.get("chunk_shape") or ())
    outer = tuple(int(n) for n in template.shards)
    if len(inner) != len(outer) or any(i <= 0 or o % i for o, i in zip(outer, inner, strict=True)):
        return None
    grid = tuple(o // i for o, i in zip(outer, inner, strict=True))
    layout = index_layout(conf, math.prod(grid))
    if layout is None:
        return None
    inner_md = {
        "zarr_format": 3,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(inner)}},
        "codecs": conf.get("codecs"),
    }
    found = fast_chunk_decoder(inner_md, stored)
    if found is None:
        return None
    decode_inner = found[0]
    fill = template.fill_value
    native = stored.newbyteorder("=") if stored.byteorder not in ("=", "|") else stored

    def decode(data: bytes, coords: Sequence[int]) -> npt.NDArray[Any]:
        # the index checked whole (length, crc32c, every entry inside the shard's data)
        try:
            flat = parse_whole_shard(data, layout, where="")
        except MetadataError as exc:  # the caller names the shard
            raise ExplorerError(exc.message) from None
        index = flat.reshape((*grid, 2))
        missing = entry_masks(index, layout, None)[0]
        extent = tuple(
            max(0, min(o, size - int(c) * o))
            for o, size, c in zip(outer, shape, coords, strict=True)
        )
        out = np.full(extent, fill, dtype=native)
        for pos in itertools.product(
            *(range(-(-e // i)) for e, i in zip(extent, inner, strict=True))
        ):
            if missing[pos]:
                continue
            offset, nbytes = (int(v) for v in index[pos])
            chunk = decode_inner(data[offset : offset + nbytes])
            dst = tuple(
                slice(p * i, min((p + 1) * i, e))
                for p, i, e in zip(pos, inner, extent, strict=True)
            )
            out[dst] = chunk[tuple(slice(0, d.stop - d.start) for d in dst)]
        return out

    return decode
