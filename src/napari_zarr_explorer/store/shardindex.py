"""The one reader of Zarr v3 ``sharding_indexed`` shard indexes.

A shard index is ``n`` pairs of ``uint64`` ``(offset, nbytes)``, one per inner chunk in C order
of the inner grid, encoded by the index codecs and stored at the start or the end of the shard.
Only the standard index codecs are read here: ``bytes`` (little- or big-endian) optionally
followed by ``crc32c``. Everything about the index is checked in this module, vectorised:

* the index is exactly as long as its layout says (the shard can hold it);
* the ``crc32c`` checksum, when the index codecs have one;
* each pair is either both ``2**64 - 1`` (the chunk is not stored) or neither;
* each stored chunk lies inside the shard's data (not in the index, not past the end).

:func:`index_layout` reads the layout from the codec's configuration, :func:`decode_index`
checks the length and checksum, :func:`entry_masks` tells missing and bad entries apart (for
callers that mark single entries), and :func:`parse_shard_index` does all of it, raising for
any bad entry. Callers decide what a failure means for them (an error, a fallback to
zarr-python, a state in a chunk map); the checks are the same for all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.errors import MetadataError

__all__ = [
    "MISSING",
    "IndexLayout",
    "count_chunks",
    "decode_index",
    "entry_masks",
    "index_layout",
    "parse_shard_index",
    "parse_whole_shard",
]

#: Offset and size of an inner chunk that is not stored.
MISSING = 2**64 - 1

_MISSING = np.uint64(MISSING)
_DEFAULT_INDEX_CODECS = (
    {"name": "bytes", "configuration": {"endian": "little"}},
    {"name": "crc32c"},
)


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """Where and how the index of one shard is stored.

    Attributes
    ----------
    n_chunks
        Inner chunks per shard (entries of the index).
    checksum
        The index is followed by its 4-byte ``crc32c``.
    at_end
        The index is at the end of the shard, else at its start.
    byteorder
        ``"<"`` or ``">"``: the byte order of the ``uint64`` values.
    """

    n_chunks: int
    checksum: bool
    at_end: bool
    byteorder: str = "<"

    @property
    def nbytes(self) -> int:
        """Stored size of the index, checksum included."""
        return 16 * self.n_chunks + (4 if self.checksum else 0)

    def cut(self, shard: bytes | memoryview) -> memoryview:
        """Return the index block of the whole *shard* (which must hold :attr:`nbytes`)."""
        mv = memoryview(shard).cast("B")
        return mv[len(mv) - self.nbytes :] if self.at_end else mv[: self.nbytes]


def _at(where: str) -> str:
    return f"{where}: " if where else ""


def _as_dict(codec: Any) -> Mapping[str, Any] | None:
    if isinstance(codec, str):
        return {"name": codec}
    if isinstance(codec, Mapping):
        return codec
    to_dict = getattr(codec, "to_dict", None)  # a zarr-python codec object
    if callable(to_dict):
        found = to_dict()
        return found if isinstance(found, Mapping) else None
    return None


def index_layout(configuration: Mapping[str, Any], n_chunks: int) -> IndexLayout | None:
    """Return the index layout of a ``sharding_indexed`` codec, None when not read here.

    Parameters
    ----------
    configuration
        The codec's ``configuration`` as written in the metadata (``index_codecs`` items may be
        names, mappings or zarr-python codec objects; both keys have their defaults of the
        specification: ``bytes`` + ``crc32c`` at the ``end``).
    n_chunks
        Inner chunks per shard.

    Returns
    -------
    IndexLayout or None
        None unless the index codecs are ``bytes`` (little- or big-endian) optionally followed
        by ``crc32c``, and ``index_location`` is ``start`` or ``end``.
    """
    codecs = configuration.get("index_codecs", _DEFAULT_INDEX_CODECS)
    location = configuration.get("index_location", "end")
    location = getattr(location, "value", location)  # zarr-python may hold an enum
    if location not in ("start", "end") or not isinstance(codecs, list | tuple):
        return None
    if n_chunks < 0 or not 1 <= len(codecs) <= 2:
        return None
    items = [_as_dict(c) for c in codecs]
    if any(c is None for c in items):
        return None
    first, *rest = (c for c in items if c is not None)
    if first.get("name") != "bytes" or [c.get("name") for c in rest] not in ([], ["crc32c"]):
        return None
    conf = first.get("configuration") or {}
    endian = conf.get("endian", "little") if isinstance(conf, Mapping) else None
    endian = getattr(endian, "value", endian)
    if endian not in ("little", "big"):
        return None
    return IndexLayout(
        n_chunks=int(n_chunks),
        checksum=bool(rest),
        at_end=location == "end",
        byteorder="<" if endian == "little" else ">",
    )


def decode_index(
    block: bytes | memoryview, layout: IndexLayout, *, where: str
) -> npt.NDArray[np.uint64]:
    """Check the length and checksum of an index *block* and return its entries.

    Parameters
    ----------
    block
        The stored index (:attr:`IndexLayout.nbytes` bytes, checksum included).
    layout
        From :func:`index_layout`.
    where
        The shard's key, named in errors (an empty string: not named).

    Returns
    -------
    numpy.ndarray
        Native ``uint64`` array of shape ``(n_chunks, 2)``: offset and size of each inner chunk.

    Raises
    ------
    MetadataError
        The block is not exactly the index's size, or the checksum does not match.
    """
    mv = memoryview(block).cast("B")
    body = 16 * layout.n_chunks
    if len(mv) != layout.nbytes:
        raise MetadataError(
            f"{_at(where)}the shard index has {len(mv)} bytes, expected {layout.nbytes}; the shard "
            "is damaged or truncated."
        )
    if layout.checksum:
        import crc32c

        if crc32c.crc32c(mv[:body]) != int.from_bytes(mv[body:], "little"):
            raise MetadataError(
                f"{_at(where)}the shard index failed its crc32c checksum; the index is damaged or "
                "the shard truncated."
            )
    raw = np.frombuffer(mv[:body], dtype=f"{layout.byteorder}u8")
    return raw.astype(np.uint64).reshape(layout.n_chunks, 2)


def entry_masks(
    index: npt.NDArray[np.uint64], layout: IndexLayout, shard_nbytes: int | None
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Return ``(missing, bad)`` masks over the entries of *index* (any leading shape).

    Parameters
    ----------
    index
        Entries from :func:`decode_index`, shape ``(..., 2)``.
    layout
        The index layout (where the index lies, so that chunks may not overlap it).
    shard_nbytes
        The whole shard's size; None when not known (then only half-missing entries are bad).

    Returns
    -------
    missing, bad
        ``missing``: both values are :data:`MISSING` (the chunk is not stored). ``bad``: one of
        them only is, or the chunk does not lie inside the shard's data.
    """
    offsets = index[..., 0]
    sizes = index[..., 1]
    off_missing = offsets == _MISSING
    size_missing = sizes == _MISSING
    missing = off_missing & size_missing
    bad = off_missing != size_missing
    if shard_nbytes is not None:
        lo = 0 if layout.at_end else layout.nbytes
        hi = shard_nbytes - layout.nbytes if layout.at_end else shard_nbytes
        if hi < lo:
            return missing, bad | ~missing
        top = np.uint64(hi)
        # offset + size <= hi, written so that nothing overflows
        outside = (
            (offsets < np.uint64(lo)) | (offsets > top) | (sizes > top - np.minimum(offsets, top))
        )
        bad |= ~missing & outside
    return missing, bad


def parse_shard_index(
    block: bytes | memoryview, layout: IndexLayout, *, shard_nbytes: int, where: str
) -> npt.NDArray[np.uint64]:
    """Check an index *block* fully and return its entries (see the module's list of checks).

    Parameters
    ----------
    block
        The stored index, read alone (a byte range) or cut by :meth:`IndexLayout.cut`.
    layout
        From :func:`index_layout`.
    shard_nbytes
        The whole shard's size.
    where
        The shard's key, named in errors (an empty string: not named).

    Returns
    -------
    numpy.ndarray
        ``uint64`` array of shape ``(n_chunks, 2)``, both values :data:`MISSING` for a chunk
        that is not stored (:func:`entry_masks` tells them apart).

    Raises
    ------
    MetadataError
        Naming *where*: the shard cannot hold its index, the index has the wrong size or fails
        its checksum, an entry is half missing or points outside the shard.
    """
    if shard_nbytes < layout.nbytes:
        raise MetadataError(
            f"{_at(where)}the shard is {shard_nbytes} bytes, too short: it cannot hold its index "
            f"of {layout.n_chunks} inner chunks ({layout.nbytes} bytes); it is truncated."
        )
    index = decode_index(block, layout, where=where)
    bad = entry_masks(index, layout, shard_nbytes)[1]
    if bool(bad.any()):
        half = bool(((index[:, 0] == _MISSING) != (index[:, 1] == _MISSING)).any())
        raise MetadataError(
            f"{_at(where)}the shard index has a half-missing entry."
            if half
            else f"{_at(where)}the shard index points outside the shard (past the end of its "
            f"data, or into the index); {int(bad.sum())} inner chunk(s) are affected."
        )
    return index


def parse_whole_shard(
    data: bytes | memoryview, layout: IndexLayout, *, where: str
) -> npt.NDArray[np.uint64]:
    """:func:`parse_shard_index` for a shard read whole (*data*), its index cut from it."""
    n = len(memoryview(data).cast("B"))
    if n < layout.nbytes:
        return parse_shard_index(b"", layout, shard_nbytes=n, where=where)  # raises: too short
    return parse_shard_index(layout.cut(data), layout, shard_nbytes=n, where=where)


def count_chunks(shard_shape: Sequence[int], chunk_shape: Sequence[int]) -> int:
    """Inner chunks per shard (the grid rounds up, as zarr-python's does)."""
    n = 1
    for s, c in zip(shard_shape, chunk_shape, strict=True):
        n *= -(-int(s) // int(c))
    return n
